/**
 * The per-operation context every resolver receives, over HTTP and websocket alike.
 */
import type { ModelInfo } from '../clip/types.js';
import type { JobService } from '../jobs/index.js';
import type { Logger } from '../logger.js';
import type { ModelControl } from '../rest/router.js';

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
  /** The API key the request (or websocket connection) carried, for rules finer than "has a valid key". */
  apiKey: string | undefined;
  /** Starting and stopping models; absent where this process cannot. */
  modelControl: ModelControl | undefined;
}

/** The services a context is built from (fixed for the server's life). */
export interface GraphqlServices {
  jobs: JobService;
  clip: GraphqlModels;
  logger: Logger;
  modelControl?: ModelControl | undefined;
}

export function createContext(services: GraphqlServices, requestId: string, apiKey?: string): GraphqlContext {
  return { jobs: services.jobs, clip: services.clip, logger: services.logger.child({ requestId }), requestId, apiKey, modelControl: services.modelControl };
}
