import { Injectable, Logger } from '@nestjs/common';
import { BehaviorSubject } from 'rxjs';

/**
 * Knows whether the process is shutting down. Readiness reads it; transports refuse new
 * streams while it is set. Streams themselves end when the price channels complete.
 */
@Injectable()
export class LifecycleService {
  private readonly logger = new Logger(LifecycleService.name);
  private readonly draining = new BehaviorSubject(false);
  readonly draining$ = this.draining.asObservable();

  get isShuttingDown(): boolean {
    return this.draining.value;
  }

  beginShutdown(reason: string): void {
    if (this.draining.value) return;
    this.logger.log({ msg: 'shutting down', reason });
    this.draining.next(true);
  }
}
