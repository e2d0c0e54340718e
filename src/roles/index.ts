/** The roles folder's public surface: each role composed from the settings (main.ts picks one; tests start them). */
import type { Config } from '../config.js';
import { createAllServer } from './all.js';
import { createApiServer } from './api.js';
import type { CreateServerOptions, Server } from './lifecycle.js';
import { createWorkerServer } from './worker.js';

export { createAllServer } from './all.js';
export { createApiServer } from './api.js';
export { createWorkerServer } from './worker.js';
export { jobsLimitsFromConfig } from './settings.js';
export type { CreateServerOptions, ModelServer, Server, ServerState } from './lifecycle.js';
export type { ServerAddress } from '../http/index.js';

/** The API roles: ROLE=all (with its models) or ROLE=api (none; needs REDIS_URL). */
export function createServer(config: Config, options: CreateServerOptions = {}): Server {
  return config.role === 'api' ? createApiServer(config, options) : createAllServer(config, options);
}

/** The process ROLE names. */
export function createRole(config: Config, options: CreateServerOptions = {}): Server {
  return config.role === 'worker' ? createWorkerServer(config, options) : createServer(config, options);
}
