import { loadTransport, saveTransport, TRANSPORT_KEY, type KeyValueStore } from './transport-choice';

const memory = (): KeyValueStore & { data: Map<string, string> } => {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
};

describe('transport choice', () => {
  it('remembers the chosen transport across loads', () => {
    const store = memory();
    saveTransport(store, 'websocket');
    expect(store.data.get(TRANSPORT_KEY)).toBe('websocket');
    expect(loadTransport(store)).toBe('websocket');
  });

  it('falls back to SSE when nothing or something unknown is stored', () => {
    const store = memory();
    expect(loadTransport(store)).toBe('sse');
    store.data.set(TRANSPORT_KEY, 'carrier-pigeon');
    expect(loadTransport(store)).toBe('sse');
  });

  it('falls back without throwing when storage is disabled', () => {
    const broken: KeyValueStore = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
    };
    expect(loadTransport(broken)).toBe('sse');
    expect(() => saveTransport(broken, 'socketio')).not.toThrow();
  });
});
