/**
 * Composes the jobs layer for a role: in memory (ROLE=all without REDIS_URL: one process, as before), or on
 * Redis (ROLE=all with REDIS_URL, api, worker), with a JobWorker wherever models run (all, worker).
 */
import type { Logger } from '../logger.js';
import { JobService, type FetchImageUrl, type JobClassifier, type JobServiceOptions } from './JobService.js';
import type { JobClassifiers } from './classifierPort.js';
import { JobWorker, type JobRunner } from './JobWorker.js';
import { createRedisBackend, type RedisModelRegistry, type StallSettings } from './redis/index.js';

export type JobsRole = 'all' | 'api' | 'worker';

export interface CreateJobsOptions {
  role: JobsRole;
  /** The Redis backend's settings; undefined = in memory (ROLE=all only). */
  redis: { url: string; keyPrefix: string; stall: StallSettings } | undefined;
  /** Validation for the API side; also the runner where a worker runs (all, worker). */
  clip: JobClassifier & JobRunner;
  logger: Logger;
  limits: Omit<
    JobServiceOptions,
    'clip' | 'logger' | 'store' | 'events' | 'queue' | 'worker' | 'fetchImageUrl' | 'classifiers'
  > & {
    maxConcurrentJobs: number;
    ttlSeconds: number;
  };
  /** Fetches images given as URLs, in the API process; without it URLs are refused. */
  fetchImageUrl?: FetchImageUrl;
  /** Stored classifiers, where this process keeps them (see classifierPort.ts). */
  classifiers?: JobClassifiers | undefined;
}

export interface Jobs {
  readonly service: JobService;
  /** This process's worker (all, worker), or undefined (api). */
  readonly worker: JobWorker | undefined;
  /** Where workers register their models and APIs read them (Redis only). */
  readonly models: RedisModelRegistry | undefined;
  /** Whether the backend is reachable (always true in memory). */
  reachable(): Promise<boolean>;
  /** Connects (bounded: an unreachable Redis is survivable) and, where models run, starts consuming once they are warm. */
  startWorker(): void;
  connect(timeoutMs: number): Promise<boolean>;
  /** Closes the service and the backend's connections. Call after `service.drain`. Idempotent. */
  close(): Promise<void>;
}

export function createJobs(options: CreateJobsOptions): Jobs {
  const { role, clip, logger, limits } = options;
  const urls = options.fetchImageUrl === undefined ? {} : { fetchImageUrl: options.fetchImageUrl };
  const { classifiers } = options;
  if (options.redis === undefined) {
    if (role !== 'all') throw new TypeError(`createJobs: ROLE=${role} needs Redis`);
    const service = new JobService({ clip, logger, ...limits, ...urls, classifiers });
    return {
      service,
      worker: undefined,
      models: undefined,
      reachable: async () => true,
      startWorker: () => undefined,
      connect: async () => true,
      close: () => service.close(),
    };
  }
  const backend = createRedisBackend({
    ...options.redis,
    logger,
    ...(limits.maxRetainedJobBytes === undefined ? {} : { maxRetainedJobBytes: limits.maxRetainedJobBytes }),
  });
  const worker =
    role === 'api'
      ? undefined
      : new JobWorker({
          clip,
          store: backend.store,
          events: backend.events,
          queue: backend.queue,
          logger,
          maxConcurrentJobs: limits.maxConcurrentJobs,
          ttlSeconds: limits.ttlSeconds,
          classifiers,
        });
  const service = new JobService({
    clip,
    logger,
    ...limits,
    ...urls,
    classifiers,
    store: backend.store,
    events: backend.events,
    queue: backend.queue,
    ...(worker === undefined ? {} : { worker }),
  });
  let closed: Promise<void> | null = null;
  return {
    service,
    worker,
    models: backend.models,
    reachable: () => backend.reachable(),
    startWorker: () => worker?.start(),
    connect: (timeoutMs) => backend.connected(timeoutMs),
    close: () => {
      closed ??= service.close().then(() => backend.close());
      return closed;
    },
  };
}
