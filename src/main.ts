import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './bootstrap';
import { ConfigError, loadConfig, type AppConfig } from './config/app-config';
import { LifecycleService } from './lifecycle/lifecycle.service';

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  const app = await createApp(config);
  const logger = new Logger('Main');
  await app.listen(config.port, config.host);
  logger.log({ msg: 'listening', url: `http://${config.host}:${config.port}`, pairs: config.pairs, sources: config.priceSources });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    // Readiness goes down first; closing the app completes every stream, then the server closes.
    app.get(LifecycleService).beginShutdown(signal);
    const deadline = setTimeout(() => {
      logger.error({ msg: 'shutdown overran SHUTDOWN_TIMEOUT_MS, exiting', timeoutMs: config.shutdownTimeoutMs });
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    app.close().then(
      () => {
        logger.log({ msg: 'stopped', signal });
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ msg: 'error while shutting down', err });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

void main();
