/**
 * The stored classifiers of a process that runs models (ROLE=all): a memory store whose records and weights persist
 * under MODEL_CACHE_DIR/classifiers, and the service the jobs and GraphQL share.
 */
import path from 'node:path';
import { ClassifierService, MemoryClassifierStore } from '../classifiers/index.js';
import type { ClipService } from '../clip/index.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

export interface Classifiers {
  readonly service: ClassifierService;
  /** Reads the kept records, then starts the service (resumed builds, CLASSIFIER_PRESETS). */
  start(): Promise<void>;
}

export function classifiersFromConfig(config: Config, clip: ClipService, logger: Logger): Classifiers {
  const log = logger.child({ component: 'classifiers' });
  const store = new MemoryClassifierStore({ dir: path.join(config.modelCacheDir, 'classifiers') });
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
