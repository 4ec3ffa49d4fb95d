import type { ConnectionStatus } from '@price-stream/client';

/**
 * Tells a resume after a lost connection from the reconnection a transport switch makes: the
 * client library resumes from the last id in both cases, but only the first is news (a banner,
 * a count). A switch is pending from `switched()` until its resume arrives; a connection lost
 * meanwhile (reconnecting, offline) ends it, so that the resume after that outage is reported.
 */
export class ResumeFilter {
  private switching = false;

  switched(): void {
    this.switching = true;
  }

  status(status: ConnectionStatus): void {
    if (status.state === 'reconnecting' || status.state === 'offline') this.switching = false;
  }

  /** Whether this `resumed` is a resume to report (false: the switch's own). */
  isResume(): boolean {
    if (!this.switching) return true;
    this.switching = false;
    return false;
  }
}
