/**
 * The stored classifiers of a process that runs models in the API's process (ROLE=all): a memory store whose records
 * and weights persist under MODEL_CACHE_DIR/classifiers, the service the jobs and GraphQL share, and the models as
 * the lifecycle sees them with the classifiers started after the models load and stopped before they are released.
 */
import path from 'node:path';
import { ClassifierService, MemoryClassifierStore } from '../classifiers/index.js';
import type { ClipService } from '../clip/index.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { ProcessModels } from './lifecycle.js';

/** The folder under MODEL_CACHE_DIR that keeps classifier records and weights. */
const CLASSIFIERS_DIR = 'classifiers';

export interface Classifiers {
  readonly service: ClassifierService;
  /** Reads the kept records, then starts the service (resumed builds, CLASSIFIER_PRESETS). */
  start(): Promise<void>;
}

export function classifiersFromConfig(config: Config, clip: ClipService, logger: Logger): Classifiers {
  const log = logger.child({ component: 'classifiers' });
  const store = new MemoryClassifierStore({ dir: path.join(config.modelCacheDir, CLASSIFIERS_DIR) });
  const service = new ClassifierService({
    clip,
    store,
    logger: log,
    maxClassifierPrompts: config.maxClassifierPrompts,
    maxClassLength: config.maxClassLength,
    maxClassifiers: config.maxClassifiers,
    presetsAtStart: config.classifierPresets,
  });
  return {
    service,
    async start() {
      await store.open((file, error) => log.warn({ file, err: error }, 'skipped an unreadable classifier record'));
      await service.start();
    },
  };
}

/**
 * The models with the classifiers beside them: builds need a loaded model, so the classifiers start once the models
 * did, and their builds stop before the sessions are released.
 */
export function modelsWithClassifiers(clip: ClipService, classifiers: Classifiers): ProcessModels {
  return {
    defaultModelName: clip.defaultModelName,
    start: async () => {
      await clip.start();
      await classifiers.start();
    },
    stop: async () => {
      await classifiers.service.stop();
      await clip.stop();
    },
    abort: () => clip.abort(),
    readiness: () => clip.readiness(),
  };
}
