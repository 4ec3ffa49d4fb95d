import { Injectable, Logger } from '@nestjs/common';
import { BehaviorSubject, filter, take, type Subscription } from 'rxjs';

/**
 * Knows whether the process is shutting down. Readiness reads it; transports refuse new
 * streams while it is set. Streams themselves end when the price channels complete.
 */
@Injectable()
export class LifecycleService {
  private readonly logger = new Logger(LifecycleService.name);
  private readonly draining = new BehaviorSubject(false);

  private unready = false;

  get isShuttingDown(): boolean {
    return this.draining.value;
  }

  /** Readiness is down from the stop signal on, through SHUTDOWN_DELAY_MS and the shutdown itself. */
  get isReady(): boolean {
    return !this.unready && !this.draining.value;
  }

  /**
   * The stop signal came and SHUTDOWN_DELAY_MS runs: readiness answers 503 so that the
   * orchestrator takes this instance out of rotation, while REST, streams (new ones too, from
   * clients routed here before it noticed) and probes keep serving.
   */
  announceStop(reason: string, delayMs: number): void {
    if (this.unready) return;
    this.unready = true;
    this.logger.log({ msg: 'stop requested, readiness down', reason, delayMs });
  }

  /**
   * Runs `begin` once when the shutdown begins (at once if it has begun), before the streams
   * end: the port stops accepting, and what this instance holds for the others (the leader
   * lease, the shared slots) goes back then, not when the process is gone (service.ts exits as
   * soon as the streams have ended). Unsubscribe to cancel it.
   */
  whenShutdownBegins(begin: () => unknown): Subscription {
    return this.draining.pipe(filter(Boolean), take(1)).subscribe(() => void begin());
  }

  beginShutdown(reason: string): void {
    if (this.draining.value) return;
    this.unready = true;
    this.logger.log({ msg: 'shutting down', reason });
    this.draining.next(true);
  }
}
