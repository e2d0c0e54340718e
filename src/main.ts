/**
 * Process entry: load the configuration, start the server, and stop it cleanly on SIGTERM/SIGINT
 * (exit 0; see processShutdown.ts for the second signal and the hard deadline). A configuration error or
 * a default model that cannot load is explained in one paragraph and exits 1.
 */
import 'reflect-metadata';
import { isatty } from 'node:tty';
import { ConfigError, HelpRequested, loadConfig, type Config } from './config.js';
// Imported directly, not through clip/index.ts, which loads ONNX Runtime: this must run before it is evaluated.
// eslint-disable-next-line no-restricted-imports -- the one import that must not go through the folder's index.ts
import { applyOrtTelemetry } from './clip/runtime/telemetry.js';

function readConfig(): Config {
  try {
    return loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof HelpRequested) {
      process.stdout.write(error.message);
      process.exit(0);
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`clip-server: invalid configuration: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

const config = readConfig();
// Before the server's modules load (hence the dynamic imports below): ONNX Runtime reads it once, at its start.
applyOrtTelemetry(config.ortTelemetry);
const [{ createRole }, { createLogger, resolveLogFormat }, { installProcessShutdown }, { explainStartFailure }] =
  await Promise.all([
    import('./roles/index.js'),
    import('./logger.js'),
    import('./processShutdown.js'),
    import('./startupFailure.js'),
  ]);
// isatty(1) rather than process.stdout.isTTY: the logger writes to fd 1 itself and needs no stream on it.
const logger = createLogger(config.logLevel, { format: resolveLogFormat(config.logFormat, isatty(1)) });
// ROLE=all and ROLE=api serve the API (api without models); ROLE=worker runs jobs and serves only health and metrics.
const server = createRole(config, { logger });
const shutdown = installProcessShutdown({
  logger,
  stop: () => server.stop(),
  abort: () => server.abort(),
  drainTimeoutMs: config.drainTimeoutMs,
  graceMs: config.shutdownGraceMs,
  describePending: () => {
    const { queued, running, watchers } = server.jobs.stats();
    return { jobs: { queued, running, watchers } };
  },
});
// Last line of defence: a stray rejection is a bug to log, not a reason to drop every client's jobs.
process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

try {
  const { url } = await server.start();
  if (config.role === 'worker') {
    logger.info({ url, role: config.role }, `clip-server ready (worker) at ${url}`);
  } else {
    const page = config.webUi ? `${url}/` : undefined;
    logger.info(
      { url, role: config.role, graphql: `${url}/graphql`, rest: `${url}/api`, page },
      `clip-server ready at ${url}/graphql${page ? ` (page for people: ${page})` : ''}`,
    );
  }
} catch (error) {
  if (!shutdown.stopping) {
    const withStack = config.logLevel === 'debug' || config.logLevel === 'trace';
    logger.fatal(withStack ? { err: error } : {}, explainStartFailure(error, config));
    await shutdown.stopAndExit(1);
  }
}
