import { Server } from 'socket.io';
import { withoutOwnRooms } from './hub-adapter';

describe('withoutOwnRooms', () => {
  let server: Server;
  beforeEach(() => {
    server = new Server(); // attached to no HTTP server: nothing to close
    withoutOwnRooms(server);
  });

  it('keeps no room for a socket joining its own id, on namespaces made before and after', () => {
    for (const nsp of [server.of('/'), server.of('/prices')]) {
      void nsp.adapter.addAll('abc', new Set(['abc']));
      expect(nsp.adapter.rooms.size).toBe(0);
      expect(nsp.adapter.sids.size).toBe(0);
      nsp.adapter.delAll('abc');
      expect(nsp.adapter.sids.size).toBe(0);
    }
  });

  it('keeps named rooms as socket.io does', () => {
    const nsp = server.of('/prices');
    void nsp.adapter.addAll('abc', new Set(['room']));
    expect([...(nsp.adapter.rooms.get('room') ?? [])]).toEqual(['abc']);
    nsp.adapter.delAll('abc');
    expect(nsp.adapter.rooms.has('room')).toBe(false);
  });
});
