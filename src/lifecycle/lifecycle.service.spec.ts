import { LifecycleService } from './lifecycle.service';

describe('LifecycleService.whenShutdownBegins', () => {
  it('runs each hook once when the shutdown begins, and not one unsubscribed before', () => {
    const lifecycle = new LifecycleService();
    const ran: string[] = [];
    lifecycle.whenShutdownBegins(() => ran.push('lease'));
    const cancelled = lifecycle.whenShutdownBegins(() => ran.push('cancelled'));
    lifecycle.announceStop('SIGTERM', 1000);
    expect(ran).toEqual([]);
    cancelled.unsubscribe();
    lifecycle.beginShutdown('SIGTERM');
    lifecycle.beginShutdown('SIGTERM');
    expect(ran).toEqual(['lease']);
    expect(lifecycle.isShuttingDown).toBe(true);
  });

  it('runs a hook at once when the shutdown has already begun', () => {
    const lifecycle = new LifecycleService();
    lifecycle.beginShutdown('SIGINT');
    const ran: string[] = [];
    lifecycle.whenShutdownBegins(() => ran.push('slots'));
    expect(ran).toEqual(['slots']);
  });
});
