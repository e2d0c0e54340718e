/**
 * The one factory of the jobs layer: it builds the backend of a role and composes the API side (JobService) and,
 * wherever models run (all, worker), this process's JobWorker on the same backend. In memory for ROLE=all without
 * REDIS_URL (one self-contained process), on Redis otherwise (ROLE=all with REDIS_URL, api, worker). Every backend
 * is built here, so a role's jobs layer differs only in where its state lives, never in how it is composed.
 */
import type { Role } from '../config.js';
import type { Logger } from '../logger.js';
import type { JobClassifiers } from './classifierPort.js';
import type { JobEvents } from './JobEvents.js';
import type { JobQueue } from './JobQueue.js';
import { JobService, type JobServiceLimits } from './JobService.js';
import type { JobStore } from './JobStore.js';
import { JobWorker, type JobRunner } from './JobWorker.js';
import { MemoryJobEvents } from './memory/MemoryJobEvents.js';
import { MemoryJobQueue } from './memory/MemoryJobQueue.js';
import { MemoryJobStore } from './memory/MemoryJobStore.js';
import { createRedisBackend, type RedisModelRegistry, type StallSettings } from './redis/index.js';
import type { FetchImageUrl, JobClassifier } from './validation.js';

/** Every setting of the jobs layer (each names its setting in src/config.ts). */
export interface JobsLimits extends JobServiceLimits {
  /** Jobs this process's worker runs at once (MAX_CONCURRENT_JOBS). */
  maxConcurrentJobs: number;
  /** What finished jobs may hold before the oldest are forgotten early (MAX_RETAINED_JOB_BYTES). */
  maxRetainedJobBytes: number;
}

interface CommonJobsOptions {
  /** The Redis backend's settings; undefined = in memory (ROLE=all only). */
  redis: { url: string; keyPrefix: string; stall: StallSettings } | undefined;
  logger: Logger;
  limits: JobsLimits;
  /** Fetches images given as URLs, in the API process; without it URLs are refused. */
  fetchImageUrl?: FetchImageUrl | undefined;
  /** Stored classifiers, where this process keeps them (see classifierPort.ts). */
  classifiers?: JobClassifiers | undefined;
}

/**
 * `clip` checks names and inputs for the API side; where a worker runs (all, worker) it also runs the jobs, so it
 * must be a JobRunner there.
 */
export type CreateJobsOptions = CommonJobsOptions &
  (
    | { role: Extract<Role, 'api'>; clip: JobClassifier }
    | { role: Exclude<Role, 'api'>; clip: JobClassifier & JobRunner }
  );

export interface Jobs {
  readonly service: JobService;
  /** This process's worker (all, worker), or undefined (api). */
  readonly worker: JobWorker | undefined;
  /** Where workers register their models and APIs read them (Redis only). */
  readonly models: RedisModelRegistry | undefined;
  /** Whether the backend is reachable (always true in memory). */
  reachable(): Promise<boolean>;
  /** Starts this process's worker taking jobs (call once a model can run them); nothing where no worker runs. */
  startWorker(): void;
  /** Resolves once the backend is connected, or to false after `timeoutMs` (an unreachable Redis is survivable). */
  connect(timeoutMs: number): Promise<boolean>;
  /** Closes the service and the backend's connections. Call after `service.drain`. Idempotent. */
  close(): Promise<void>;
}

/** The parts every backend provides. */
interface Backend {
  store: JobStore;
  events: JobEvents;
  queue: JobQueue;
  models: RedisModelRegistry | undefined;
  reachable(): Promise<boolean>;
  connected(timeoutMs: number): Promise<boolean>;
  /** Releases what the service's close does not (shared connections). */
  close(): Promise<void>;
}

export function createJobs(options: CreateJobsOptions): Jobs {
  const { logger, limits } = options;
  const backend =
    options.redis === undefined
      ? memoryBackend(options.role, logger, limits)
      : redisBackend(options.redis, logger, limits);
  const worker =
    options.role === 'api'
      ? undefined
      : new JobWorker({
          clip: options.clip,
          store: backend.store,
          events: backend.events,
          queue: backend.queue,
          logger,
          maxConcurrentJobs: limits.maxConcurrentJobs,
          ttlSeconds: limits.ttlSeconds,
          classifiers: options.classifiers,
        });
  const { maxConcurrentJobs: _worker, maxRetainedJobBytes: _store, ...serviceLimits } = limits;
  const service = new JobService({
    clip: options.clip,
    logger,
    store: backend.store,
    events: backend.events,
    queue: backend.queue,
    worker,
    fetchImageUrl: options.fetchImageUrl,
    classifiers: options.classifiers,
    limits: serviceLimits,
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

/** One process: nothing to connect to, nothing shared. */
function memoryBackend(role: Role, logger: Logger, limits: JobsLimits): Backend {
  if (role !== 'all') throw new TypeError(`createJobs: ROLE=${role} needs Redis`);
  return {
    store: new MemoryJobStore({ maxRetainedBytes: limits.maxRetainedJobBytes }),
    events: new MemoryJobEvents((error) => logger.error({ err: error }, 'job event listener threw')),
    queue: new MemoryJobQueue(),
    models: undefined,
    reachable: async () => true,
    connected: async () => true,
    close: async () => undefined,
  };
}

function redisBackend(redis: NonNullable<CreateJobsOptions['redis']>, logger: Logger, limits: JobsLimits): Backend {
  const backend = createRedisBackend({ ...redis, logger, maxRetainedJobBytes: limits.maxRetainedJobBytes });
  return {
    store: backend.store,
    events: backend.events,
    queue: backend.queue,
    models: backend.models,
    reachable: () => backend.reachable(),
    connected: (timeoutMs) => backend.connected(timeoutMs),
    close: () => backend.close(),
  };
}
