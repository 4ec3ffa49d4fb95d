import type { ConnectionEnv } from './connection';

type OnlineTarget = {
  navigator?: { onLine?: boolean };
  addEventListener?(type: 'online' | 'offline', listener: () => void): void;
  removeEventListener?(type: 'online' | 'offline', listener: () => void): void;
};

/**
 * The platform's clock, randomness and network state. A browser says when it goes offline (no
 * attempt until it is back); Node has no such signal, so there it is always online.
 */
export function platformEnv(target: OnlineTarget = globalThis as OnlineTarget): ConnectionEnv {
  return {
    now: () => Date.now(),
    random: () => Math.random(),
    isOnline: () => target.navigator?.onLine ?? true,
    watchOnline(cb) {
      if (!target.addEventListener || !target.removeEventListener) return () => undefined;
      const online = (): void => cb(true);
      const offline = (): void => cb(false);
      target.addEventListener('online', online);
      target.addEventListener('offline', offline);
      return () => {
        target.removeEventListener?.('online', online);
        target.removeEventListener?.('offline', offline);
      };
    },
  };
}
