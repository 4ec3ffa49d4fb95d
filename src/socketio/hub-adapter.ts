import type { Namespace, Server } from 'socket.io';

type Adapter = Namespace['adapter'];
type AdapterClass = new (nsp: Namespace) => Adapter;

/**
 * socket.io's adapter without the room every socket joins by itself (its own id): two Sets and
 * two map entries per connection that nothing here reads. The hub does the fan-out (one shared
 * packet per tick, stream-hub.ts); no code of ours joins, leaves or broadcasts to rooms, and a
 * socket is reached through its own `emit`. Rooms a socket joins by name still work as in
 * socket.io; a broadcast to no room (`nsp.emit`) reaches only sockets that joined one.
 */
export function withoutOwnRooms(server: Server): void {
  // The server's adapter class (socket.io's in-memory adapter unless one was set).
  const Base = server.adapter() as unknown as AdapterClass;
  class HubAdapter extends Base {
    override addAll(id: string, rooms: Set<string>): Promise<void> | void {
      if (rooms.size === 1 && rooms.has(id)) return;
      return super.addAll(id, rooms);
    }
  }
  server.adapter(HubAdapter as unknown as Parameters<Server['adapter']>[0]);
}
