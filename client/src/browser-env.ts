import type { ConnectionEnv } from './connection';

export const browserEnv: ConnectionEnv = {
  now: () => Date.now(),
  random: () => Math.random(),
  isOnline: () => navigator.onLine,
  watchOnline(cb) {
    const online = (): void => cb(true);
    const offline = (): void => cb(false);
    window.addEventListener('online', online);
    window.addEventListener('offline', offline);
    return () => {
      window.removeEventListener('online', online);
      window.removeEventListener('offline', offline);
    };
  },
};
