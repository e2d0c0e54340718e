/**
 * The per-operation context every resolver receives, over HTTP and websocket alike.
 */
import type { ModelInfo } from '../clip/types.js';
import type { Caller, JobService } from '../jobs/index.js';
import type { Logger } from '../logger.js';

/** What resolvers need from the clip layer: only model listing. */
export interface GraphqlModels {
  readonly defaultModelName: string;
  models(): ModelInfo[];
}

export interface GraphqlContext {
  jobs: JobService;
  clip: GraphqlModels;
  /** A child logger carrying `requestId`. */
  logger: Logger;
  requestId: string;
  /** Who asks (from the API key); every job read and write acts as this caller. */
  caller: Caller;
}

/** The services a context is built from (fixed for the server's life). */
export interface GraphqlServices {
  jobs: JobService;
  clip: GraphqlModels;
  logger: Logger;
}

export function createContext(services: GraphqlServices, requestId: string, caller: Caller): GraphqlContext {
  return { jobs: services.jobs, clip: services.clip, logger: services.logger.child({ requestId }), requestId, caller };
}
