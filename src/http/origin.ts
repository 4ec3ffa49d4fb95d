/**
 * Whether a browser page from `origin` may open a stream. WebSocket upgrades are not subject
 * to CORS, so the socket transports check the Origin header themselves (cross-site WebSocket
 * hijacking). No Origin header: not a browser, allowed. The service's own origin (the Origin's
 * host equals the Host header: the bundled web client) always; other origins when CORS_ORIGINS
 * lists them, any with `*`.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined || origin === '') return true;
  if (allowed.includes('*') || allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
