import { formatAge, formatDelay, plural } from './format';
import { TRANSPORT_LABELS, type ConnectionStatus, type Transport as TransportKind } from '@price-stream/client';

const label = (kind: TransportKind): string => TRANSPORT_LABELS[kind];

export function statusText(status: ConnectionStatus, kind: TransportKind): string {
  switch (status.state) {
    case 'connecting':
      return status.attempt === 0 ? `Connecting over ${label(kind)}…` : `Reconnecting over ${label(kind)} (attempt ${status.attempt})…`;
    case 'live':
      return `Live over ${label(kind)}`;
    case 'reconnecting':
      return `Connection lost; reconnecting in ${formatDelay(status.delayMs)} (attempt ${status.attempt})`;
    case 'offline':
      return 'Offline: waiting for the network to come back';
    case 'failed':
      return `Refused by the server: ${status.reason}`;
  }
}

/**
 * How old the newest price was when it arrived, by the server's clock (so a wrong clock on this
 * machine does not show), and how many reconnections resumed.
 */
export function freshnessText(ageAtArrivalMs: number, resumes: number): string {
  return `Price ${formatDelay(Math.max(0, ageAtArrivalMs))} old on arrival (server clock) · ${plural(resumes, 'resume', 'resumes')}`;
}

/**
 * The connection status (an aria-live region, so it is announced when it changes) and the age of
 * the last tick (updated every second, deliberately outside the live region).
 */
export function setupStatus(statusEl: HTMLElement, ageEl: HTMLElement, freshnessEl: HTMLElement, now: () => number = Date.now) {
  let lastTickAt: number | null = null;
  const renderAge = (): void => {
    ageEl.textContent = lastTickAt === null ? 'No ticks yet' : `Last tick ${formatAge(now() - lastTickAt)}`;
  };
  const timer = setInterval(renderAge, 1000);
  renderAge();
  return {
    show(status: ConnectionStatus, kind: TransportKind): void {
      statusEl.dataset.state = status.state;
      statusEl.textContent = statusText(status, kind);
    },
    tickAt(at: number, id: string): void {
      lastTickAt = at;
      // The resume point, for the curious and for the end-to-end test.
      ageEl.dataset.lastId = id;
      renderAge();
    },
    freshness(ageAtArrivalMs: number, resumes: number): void {
      freshnessEl.hidden = false;
      freshnessEl.dataset.ageMs = String(Math.round(ageAtArrivalMs));
      freshnessEl.dataset.resumes = String(resumes);
      freshnessEl.textContent = freshnessText(ageAtArrivalMs, resumes);
    },
    dispose(): void {
      clearInterval(timer);
    },
  };
}
