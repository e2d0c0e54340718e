/**
 * Process entry: load the configuration, start the server, and stop it cleanly on SIGTERM/SIGINT
 * (exit 0). A configuration error or a default model that cannot load is logged clearly and exits 1.
 */
import 'reflect-metadata';
import { ConfigError, HelpRequested, loadConfig, type Config } from './config.js';
import { createServer } from './http/server.js';
import { createLogger } from './logger.js';

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
const logger = createLogger(config.logLevel);
const server = createServer(config, { logger });
let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) {
    logger.warn({ signal }, 'second signal while stopping: exiting now, abandoning unfinished jobs');
    // Exiting while a worker is inside onnxruntime can abort in native code: let the runs in flight end first (bounded).
    await Promise.race([server.clip.abort(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    process.exit(1);
  }
  stopping = true;
  logger.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, 'shutting down');
  try {
    await server.stop();
    process.exit(0);
  } catch (error) {
    logger.fatal({ err: error }, 'shutdown failed');
    process.exit(1);
  }
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
// Last line of defence: a stray rejection is a bug to log, not a reason to drop every client's jobs.
process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

try {
  const { url } = await server.start();
  logger.info({ url, graphql: `${url}/graphql`, rest: `${url}/api` }, `clip-server ready at ${url}/graphql`);
} catch (error) {
  if (!stopping) {
    logger.fatal({ err: error }, `clip-server failed to start: ${error instanceof Error ? error.message : String(error)}`);
    await server.stop().catch(() => undefined);
    process.exit(1);
  }
}
