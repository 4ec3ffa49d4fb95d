import { TRANSPORTS, type Transport as TransportKind } from '../../src/shared/wire';

export const TRANSPORT_KEY = 'price-stream.transport';

/** The part of Storage used here; localStorage can throw (storage disabled), so every call is guarded. */
export type KeyValueStore = Pick<Storage, 'getItem' | 'setItem'>;

export function isTransportKind(v: string | null): v is TransportKind {
  return (TRANSPORTS as readonly (string | null)[]).includes(v);
}

export function loadTransport(store: KeyValueStore | null, fallback: TransportKind = 'sse'): TransportKind {
  try {
    const v = store?.getItem(TRANSPORT_KEY) ?? null;
    return isTransportKind(v) ? v : fallback;
  } catch {
    return fallback;
  }
}

export function saveTransport(store: KeyValueStore | null, kind: TransportKind): void {
  try {
    store?.setItem(TRANSPORT_KEY, kind);
  } catch {
    // Not remembered; the choice still applies to this page.
  }
}
