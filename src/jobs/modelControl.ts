/**
 * What the APIs (REST's FES routes, GraphQL's startModel / stopModel) ask of model control: one contract, so both
 * API folders depend on the jobs layer, never on each other. The server implements it over this process's
 * ClipService, or over the workers of a cluster.
 */
import type { ModelInfo, ModelStatus } from '../clip/index.js';
import type { Caller } from './caller.js';
import type { Job } from './types.js';

/**
 * Starting and stopping models (FES's `/api/models/{model}/start|stop|status`). Names are users' strings (kebab or
 * snake case, catalogue names); an unknown one throws NOT_FOUND.
 */
export interface ModelControl {
  /** Begins starting the model (idempotent); resolves, once that is under way, with the model as it then is. */
  start(name: string): Promise<ModelInfo>;
  /** Begins stopping the model (idempotent); resolves, once that is under way, with the model as it then is. */
  stop(name: string): Promise<ModelInfo>;
  /** The model's status and the unfinished jobs on it that `caller` may see (the cluster's, with Redis). */
  status(name: string, caller: Caller): Promise<{ status: ModelStatus; jobs: Job[] }>;
  /** Throws FORBIDDEN when `caller` may not start or stop models (an operator action). */
  authorize(caller: Caller): void;
}
