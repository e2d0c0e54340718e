/**
 * Model control for the APIs (REST's FES routes, GraphQL's startModel / stopModel) over this process's ClipService:
 * start and stop return once the change is under way, never waiting for a load or for running jobs; status adds
 * the model's unfinished jobs from the job store.
 */
import type { ClipService, ModelInfo } from '../clip/index.js';
import type { JobService } from '../jobs/index.js';
import type { Logger } from '../logger.js';
import type { ModelControl } from '../rest/router.js';

export interface LocalModelControlOptions {
  clip: ClipService;
  jobs: JobService;
  logger: Logger;
  /** Throws when a caller's key may not start or stop models (see createModelControlAuthorizer). */
  authorize: (apiKey: string | undefined) => void;
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
    status: async (name) => {
      const info = clip.modelInfo(name);
      return { status: info.status, jobs: await jobs.unfinishedOn(info.name) };
    },
    authorize,
  };
}
