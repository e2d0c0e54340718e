/**
 * The stored classifiers of a role. In one process (no REDIS_URL): a memory store whose records and weights persist
 * under MODEL_CACHE_DIR/classifiers, and a bus inside the process. On Redis: the records, weights, changes and build
 * claims in Redis, so the API creates and watches while a worker builds and scores. The roles that run models (all,
 * worker) give the models as the runner; the api role gives none and asks the workers to build.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import {
  CLAIM_MS,
  ClassifierService,
  MemoryClassifierBus,
  MemoryClassifierStore,
  RedisClassifierBus,
  RedisClassifierStore,
  type ClassifierModels,
  type ClassifierRunner,
} from '../classifiers/index.js';
import type { Config } from '../config.js';
import { closeConnection, createCommandConnection, createWaitingConnection, whenReady } from '../jobs/index.js';
import type { Logger } from '../logger.js';

/** The folder under MODEL_CACHE_DIR that keeps classifier records and weights (one process). */
const CLASSIFIERS_DIR = 'classifiers';

export interface Classifiers {
  readonly service: ClassifierService;
  /** Once the models are loaded: reads the kept records, stores the presets, resumes builds (CLASSIFIER_PRESETS). */
  start(): Promise<void>;
  /** Before the models are released: stops the builds under way (they resume at the next start), then the store. */
  stop(): Promise<void>;
}

export function classifiersFromConfig(
  config: Config,
  models: ClassifierModels,
  runner: ClassifierRunner | undefined,
  logger: Logger,
): Classifiers {
  const log = logger.child({ component: 'classifiers' });
  const settings = {
    clip: models,
    runner,
    logger: log,
    claimMs: CLAIM_MS,
    maxClassifierPrompts: config.maxClassifierPrompts,
    maxClassLength: config.maxClassLength,
    maxClassifiers: config.maxClassifiers,
    presetsAtStart: config.classifierPresets,
  };
  if (config.redisUrl === undefined) {
    const store = new MemoryClassifierStore({ dir: path.join(config.modelCacheDir, CLASSIFIERS_DIR) });
    const service = new ClassifierService({ ...settings, store, bus: new MemoryClassifierBus() });
    return {
      service,
      async start() {
        await store.open((file, error) => log.warn({ file, err: error }, 'skipped an unreadable classifier record'));
        await service.start();
      },
      stop: () => service.stop(),
    };
  }
  // The jobs layer's connections log an outage once; these two fail with them, and an error event without a listener
  // would be printed by ioredis on every reconnect attempt.
  const redis = createCommandConnection({ url: config.redisUrl });
  redis.on('error', () => undefined);
  const subscriber = createWaitingConnection({ url: config.redisUrl });
  subscriber.on('error', () => undefined);
  const bus = new RedisClassifierBus({
    redis,
    subscriber,
    keyPrefix: config.redisKeyPrefix,
    processId: randomUUID(),
  });
  const store = new RedisClassifierStore({ redis, keyPrefix: config.redisKeyPrefix });
  const service = new ClassifierService({ ...settings, store, bus });
  return {
    service,
    async start() {
      // The subscription is made (or made again) whenever its connection is up, without holding the start.
      bus.open().catch((error: unknown) => log.warn({ err: error }, 'classifier events: subscription failed'));
      // Redis may be away at start (the process serves SERVICE_UNAVAILABLE meanwhile): the presets and resumed builds
      // then start once it is back.
      const startService = async (): Promise<void> => {
        try {
          await service.start();
        } catch (error) {
          log.warn({ err: error }, 'classifiers did not start; trying again when Redis is back');
          redis.once('ready', () => void startService());
        }
      };
      if (await whenReady(redis, config.redisConnectTimeoutMs)) await startService();
      else redis.once('ready', () => void startService());
    },
    async stop() {
      await service.stop();
      await closeConnection(redis);
    },
  };
}
