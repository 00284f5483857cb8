/**
 * The start-up frame every entry point shares: load the config (a bad value
 * prints one line and exits 1), and turn SIGTERM/SIGINT/SIGHUP into one graceful stop.
 */
import { ConfigError, loadConfig, type Config } from './config.ts';
import type { Logger } from './logger.ts';

export function loadConfigOrExit(env: NodeJS.ProcessEnv): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`agentq: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/**
 * Runs `stop` once on the first SIGTERM/SIGINT/SIGHUP. A second signal forces an
 * exit, unless it comes within a second of the first: under `npm start` one
 * Ctrl-C arrives twice (from the terminal, and relayed by npm), and that must
 * not cut the graceful stop short.
 */
export function onShutdownSignal(stop: (signal: string) => Promise<void>): void {
  let firstAt: number | undefined;
  const handler = (signal: NodeJS.Signals) => {
    if (firstAt !== undefined) {
      if (Date.now() - firstAt > 1000) process.exit(1);
      return;
    }
    firstAt = Date.now();
    stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`agentq: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  // A closed terminal: without a handler node dies at once, skipping the stop
  // (and leaving `npm start`'s Postgres, in its own session, running).
  process.on('SIGHUP', handler);
}

/**
 * graphile-worker batches its job-completion writes in promises nobody awaits;
 * when the database connection drops under one (pg_terminate_backend, a
 * restart) the rejection would otherwise kill the worker and every task it
 * runs. Task rows are safe either way (our writes are retried and fenced), so
 * log it and keep running.
 */
export function keepRunningOnUnhandledRejection(logger: Logger): void {
  process.on('unhandledRejection', (err) => {
    logger.error({ err }, 'unhandled rejection (kept running)');
  });
}
