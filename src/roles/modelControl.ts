/**
 * Model control for the APIs (REST's FES routes, GraphQL's startModel / stopModel) over this process's ClipService:
 * start and stop return once the change is under way, never waiting for a load or for running jobs; status adds
 * the model's unfinished jobs from the job store.
 */
import type { ClipService, ModelCatalogue, ModelInfo } from '../clip/index.js';
import { AppError, ErrorCode } from '../errors.js';
import { canAccess, type Caller, type JobService, type ModelControl } from '../jobs/index.js';
import type { Logger } from '../logger.js';

export interface LocalModelControlOptions {
  clip: Pick<ClipService, 'modelInfo' | 'startModel' | 'stopModel'>;
  jobs: JobService;
  logger: Logger;
  /** Throws FORBIDDEN when a caller may not start or stop models. */
  authorize: (caller: Caller) => void;
}

export function createLocalModelControl({ clip, jobs, logger, authorize }: LocalModelControlOptions): ModelControl {
  /** Begins `change` after checking the name (NOT_FOUND is thrown here), and answers the model as it then is. */
  const begin = (name: string, change: 'start' | 'stop'): ModelInfo => {
    const { name: model } = clip.modelInfo(name);
    const done = change === 'start' ? clip.startModel(model) : clip.stopModel(model);
    // A failed start is the model's FAILED status, not an error of this request; anything else is only logged.
    done.catch((error: unknown) => logger.warn({ model, change, err: error }, 'model control did not complete'));
    return clip.modelInfo(model);
  };
  return {
    start: async (name) => begin(name, 'start'),
    stop: async (name) => begin(name, 'stop'),
    status: async (name, caller) => {
      const info = clip.modelInfo(name);
      return {
        status: info.status,
        jobs: (await jobs.unfinishedOn(info.name)).filter((job) => canAccess(caller, job)),
      };
    },
    authorize,
  };
}

export interface ClusterModelControlOptions {
  /** Resolves model names (ROLE=api loads none). */
  clip: Pick<ModelCatalogue, 'resolveModelName'>;
  jobs: JobService;
  /** Every worker's view merged (see mergeModelViews), as last read from Redis. */
  models: () => ModelInfo[];
  /** Sends the change to every worker. */
  publish: (message: { model: string; change: 'start' | 'stop' }) => Promise<void>;
  authorize: (caller: Caller) => void;
}

/**
 * ROLE=api: a start or stop is published to every worker, and the status is the cluster's (running where any worker
 * runs the model; the jobs of every process, from the shared store). The answer shows the model as last read from
 * Redis: the change shows up there within the registry's refresh.
 */
export function createClusterModelControl({
  clip,
  jobs,
  models,
  publish,
  authorize,
}: ClusterModelControlOptions): ModelControl {
  const infoOf = (name: string): ModelInfo => {
    const resolved = clip.resolveModelName(name);
    const info = resolved === undefined ? undefined : models().find((model) => model.name === resolved);
    if (info === undefined) throw new AppError(ErrorCode.NotFound, `Unknown model "${name.slice(0, 100)}"`);
    return info;
  };
  const begin = async (name: string, change: 'start' | 'stop'): Promise<ModelInfo> => {
    const info = infoOf(name);
    await publish({ model: info.name, change });
    return info;
  };
  return {
    start: (name) => begin(name, 'start'),
    stop: (name) => begin(name, 'stop'),
    status: async (name, caller) => {
      const info = infoOf(name);
      return {
        status: info.status,
        jobs: (await jobs.unfinishedOn(info.name)).filter((job) => canAccess(caller, job)),
      };
    },
    authorize,
  };
}
