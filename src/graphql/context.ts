/**
 * The per-operation context every resolver receives, over HTTP and websocket alike.
 */
import type { ClassifierService } from '../classifiers/index.js';
import type { ModelInfo } from '../clip/index.js';
import type { Caller, JobService, ModelControl } from '../jobs/index.js';
import type { Logger } from '../logger.js';
import { ResponseBudget } from './responseBudget.js';

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
  /** What the answer may still carry (MAX_RESPONSE_BYTES); fields returning job data charge it. */
  response: ResponseBudget;
  /** Who asks (from the API key); every job read and write acts as this caller. */
  caller: Caller;
  /** Starting and stopping models; absent where this process cannot. */
  modelControl: ModelControl | undefined;
  /** Stored zero-shot classifiers; absent where this process keeps none. */
  classifiers?: ClassifierService | undefined;
}

/** The services a context is built from (fixed for the server's life). */
export interface GraphqlServices {
  jobs: JobService;
  clip: GraphqlModels;
  logger: Logger;
  /** MAX_RESPONSE_BYTES. */
  maxResponseBytes: number;
  modelControl?: ModelControl | undefined;
  classifiers?: ClassifierService | undefined;
}

export function createContext(services: GraphqlServices, requestId: string, caller: Caller): GraphqlContext {
  return {
    jobs: services.jobs,
    clip: services.clip,
    logger: services.logger.child({ requestId }),
    requestId,
    response: new ResponseBudget(services.maxResponseBytes),
    caller,
    modelControl: services.modelControl,
    classifiers: services.classifiers,
  };
}
