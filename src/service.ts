import { flushCompileCache } from './compile-cache';
import 'reflect-metadata';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cluster from 'node:cluster';
import { ConfigError, loadConfig, type AppConfig } from './config/app-config';
import { InheritedSocketError, openPort } from './http/accept-sockets';

/**
 * The app's modules (Nest and everything it builds: most of a start's CPU), loaded once the
 * port is taken: a restarted process' subscribers then wait in the kernel's queue while it
 * starts, instead of being refused (see runAlone). In the bundle (scripts/bundle.mjs) their code
 * is read with the rest of the file, but each module still runs on its first import, here.
 */
async function loadApp() {
  const { Logger } = await import('@nestjs/common');
  const { createApp } = await import('./bootstrap');
  const { LifecycleService } = await import('./lifecycle/lifecycle.service');
  const { SourceRegistry } = await import('./sources/source-registry');
  const { StreamHub } = await import('./stream/stream-hub');
  const { exitAfterLogs } = await import('./logging/stdout-log');
  return { Logger, createApp, LifecycleService, SourceRegistry, StreamHub, exitAfterLogs };
}
type App = Awaited<ReturnType<typeof loadApp>>;

/**
 * Connections the kernel may queue before the event loop accepts them. Node's default (511) is
 * met at once when thousands of subscribers reconnect together (a restart, a network blip) while
 * a fan-out holds the loop: SYNs beyond it are dropped and clients wait 1 s, 3 s, ... to retry.
 * The kernel caps it at net.core.somaxconn (4096 on current Linux).
 */
const LISTEN_BACKLOG = 4096;
/** What a worker keeps of SHUTDOWN_TIMEOUT_MS for its exit after waiting for the connections it relays. */
const SHUTDOWN_MARGIN_MS = 500;

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  if (cluster.isWorker) return runWorker(config);
  if (config.workers > 1) {
    const { Primary } = await import('./cluster/primary');
    return new Primary(config).start();
  }
  return runAlone(config);
}

/**
 * One process that listens and serves (WORKERS=1). It takes the port first (http/accept-sockets.ts
 * `openPort`), then loads and builds the app: connections made while it starts are served once
 * it is up (in a restart, its subscribers' reconnects complete in the kernel and wait, where they
 * were refused and retried on their own backoff, taking CPU the start needed).
 */
async function runAlone(config: AppConfig): Promise<void> {
  let acceptFailed = (err: Error): void => void process.stderr.write(`accepting a connection failed: ${err.message}\n`);
  const port = await openPort(
    { port: config.port, host: config.host, backlog: LISTEN_BACKLOG, sockets: config.listenSockets, inherited: config.inheritedFds },
    (err) => acceptFailed(err),
  ).catch((err: unknown) => {
    if (!(err instanceof InheritedSocketError)) throw err;
    // Sockets a supervisor got wrong are its configuration: not restarted (systemd's RestartPreventExitStatus=78).
    process.stderr.write(`${err.message}\n`);
    process.exit(78); // EX_CONFIG
  });
  const mods = await loadApp();
  const logger = new mods.Logger('Main');
  // accept() failing (EMFILE past the limit) must not stop the process: the next accept may succeed.
  acceptFailed = (err) => logger.warn({ msg: 'accepting a connection failed', err: err.message });
  const app = await mods.createApp(config);
  await app.init();
  await port.serve(app.getHttpServer());
  // The port stops accepting when the shutdown begins, before the streams end: a subscriber that
  // comes back meanwhile is refused at once instead of waiting in a queue the exit resets (with
  // inherited sockets, it waits in the supervisor's queue for the next process).
  app.get(mods.LifecycleService).whenShutdownBegins(() => port.close());
  flushCompileCache();
  // The chain as built: a source PRICE_SOURCES names may have been left out (coindesk without its key).
  const registry = app.get(mods.SourceRegistry);
  const sources = registry.sources.map((s) => s.name);
  logger.log({
    msg: 'listening',
    url: port.url,
    ...(config.inheritedFds.length > 0 ? { inheritedSockets: config.inheritedFds.length } : {}),
    pairs: config.pairs,
    sources,
    pushFeeds: [...registry.feeds.keys()],
    ...(sources.includes('simulated') ? { simulatedSeed: config.simulatedSeed } : {}),
  });
  stopOnSignals(mods, app, config);
}

/** A worker of WORKERS > 1: it accepts on the port the workers share; without Redis its ticks come from the primary. */
async function runWorker(config: AppConfig): Promise<void> {
  const mods = await loadApp();
  const { createApp, LifecycleService } = mods;
  const { WorkerLink } = await import('./cluster/worker-link');
  const { PendingConnections } = await import('./cluster/routing');
  const { setServedBy } = await import('./http/request-id');
  const link = new WorkerLink();
  if (config.workerIndex !== undefined) setServedBy(config.workerIndex);
  const replica = config.redis ? undefined : await link.replicaLog(config);
  const app = await createApp(config, { worker: { link, replica } });
  await app.init();
  await link.serve(app.getHttpServer(), config.port, config.host, LISTEN_BACKLOG, {
    headTimeoutMs: config.requestHeadTimeoutMs,
    // Behind proxies (TRUST_PROXY) every client shares their addresses: only the deadline applies.
    pending: new PendingConnections(config.trustProxy === false ? config.maxStreamConnectionsPerIp : Infinity),
  });
  flushCompileCache();
  app.get(LifecycleService).whenShutdownBegins(() => link.stopAccepting());
  // A signal of its own (the terminal's Ctrl-C, systemd's to the whole group) is a first stop
  // request; the primary numbers the ones it passes on, so the same signal is not taken twice.
  const stop = stopOnSignals(mods, app, config, 1, (withinMs) => link.relaysClosed(withinMs));
  link.onStop(stop);
}

/**
 * SIGTERM and SIGINT: the bounded shutdown, with SHUTDOWN_DELAY_MS of readiness down first on
 * SIGTERM; a later stop request cuts the delay short. Each signal is the next request, or
 * `signalLevel` when set (a worker). `beforeExit` runs once the app is closed, given what is
 * left of SHUTDOWN_TIMEOUT_MS (a worker: the connections it relays). Returns the function that
 * takes a numbered request.
 */
function stopOnSignals(
  { Logger, LifecycleService, StreamHub, exitAfterLogs }: App,
  app: NestExpressApplication,
  config: AppConfig,
  signalLevel?: number,
  beforeExit?: (withinMs: number) => Promise<void>,
): (signal: NodeJS.Signals, level: number) => void {
  const logger = new Logger('Main');
  const lifecycle = app.get(LifecycleService);
  let stopping = false;
  let delay: { timer: NodeJS.Timeout; skip: () => void } | undefined;
  const shutdown = (signal: NodeJS.Signals): void => {
    delay = undefined;
    // The shutdown begins: the port stops accepting, new streams are refused, and what this
    // instance holds for the others goes back to Redis (the leader lease, the shared slots).
    lifecycle.beginShutdown(signal);
    const deadline = setTimeout(() => {
      logger.error({ msg: 'shutdown overran SHUTDOWN_TIMEOUT_MS, exiting', timeoutMs: config.shutdownTimeoutMs });
      exitAfterLogs(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    const started = Date.now();
    // Closing the app stops the polls and writes the candles (Nest runs those modules' hooks
    // before the stream module's), then the hub ends every stream with its reconnect hint. The
    // process exits as soon as the streams have ended, once the log lines before it are written
    // (exitAfterLogs: at most 100 ms; in the same turn when none is in flight, as at
    // LOG_LEVEL=warn): their last frames are with the kernel, which delivers them and closes the
    // sockets at the exit. The rest of the close (the clients' FINs, destroying each socket, the
    // Redis connections' QUIT) only kept the subscribers away longer (docs/benchmarks.md, "Issue
    // 26, fifth round"); what must happen before the exit is done by then (above, and
    // sse-shutdown.e2e checks it with Redis).
    Promise.race([app.close(), app.get(StreamHub).streamsEnded])
      .then(() => beforeExit?.(config.shutdownTimeoutMs - (Date.now() - started) - SHUTDOWN_MARGIN_MS))
      .then(
        () => {
          logger.log({ msg: 'stopped', signal });
          exitAfterLogs(0);
        },
        (err: unknown) => {
          logger.error({ msg: 'error while shutting down', err });
          exitAfterLogs(1);
        },
      );
  };
  let level = 0;
  const stop = (signal: NodeJS.Signals, requested: number): void => {
    if (stopping) {
      // A second request (Ctrl-C again) cuts the delay short.
      if (requested > level) {
        level = requested;
        delay?.skip();
      }
      return;
    }
    stopping = true;
    level = requested;
    // SIGTERM (the orchestrator) first takes readiness down for SHUTDOWN_DELAY_MS, so that no
    // new client is routed here while this instance still serves; SIGINT (a terminal) stops at once.
    if (signal === 'SIGTERM' && config.shutdownDelayMs > 0) {
      lifecycle.announceStop(signal, config.shutdownDelayMs);
      const timer = setTimeout(() => shutdown(signal), config.shutdownDelayMs);
      delay = {
        timer,
        skip: () => {
          clearTimeout(timer);
          shutdown(signal);
        },
      };
      return;
    }
    shutdown(signal);
  };
  const onSignal = (signal: NodeJS.Signals) => stop(signal, signalLevel ?? level + 1);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return stop;
}

void main();
