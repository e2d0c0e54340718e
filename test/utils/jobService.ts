/**
 * JobService for tests, composed as createJobs composes it for ROLE=all in memory: the limits are the settings'
 * defaults (src/config.ts) unless a test overrides them, and the in-process worker is started. A test may swap the
 * store or the queue for a double; otherwise createJobs builds everything.
 */
import { loadConfig } from '../../src/config.js';
import { jobsLimitsFromConfig } from '../../src/roles/index.js';
import {
  createJobs,
  JobService,
  JobWorker,
  MemoryJobEvents,
  MemoryJobQueue,
  MemoryJobStore,
  type FetchImageUrl,
  type JobClassifier,
  type JobQueue,
  type JobRunner,
  type JobServiceLimits,
  type JobsLimits,
  type JobStore,
} from '../../src/jobs/index.js';
import { silentLogger } from '../../src/logger.js';

/** The jobs layer's limits at the settings' defaults, with `overrides`. */
export function testJobLimits(overrides: Partial<JobsLimits> = {}): JobsLimits {
  return { ...jobsLimitsFromConfig(loadConfig([], {})), ...overrides };
}

/** The JobService part of `testJobLimits` (the worker's and the store's settings left out). */
export function testServiceLimits(overrides: Partial<JobsLimits> = {}): JobServiceLimits {
  const { maxConcurrentJobs: _worker, maxRetainedJobBytes: _store, ...limits } = testJobLimits(overrides);
  return limits;
}

export interface MemoryJobServiceOptions extends Partial<JobsLimits> {
  clip: JobClassifier & JobRunner;
  fetchImageUrl?: FetchImageUrl;
  /** A store double instead of the memory store. */
  store?: JobStore;
  /** A queue double instead of the memory queue. */
  queue?: JobQueue;
}

/** A started in-memory JobService with its worker (ROLE=all without Redis). */
export function memoryJobService(options: MemoryJobServiceOptions): JobService {
  const { clip, fetchImageUrl, store, queue, ...overrides } = options;
  const limits = testJobLimits(overrides);
  const logger = silentLogger();
  if (store === undefined && queue === undefined) {
    const jobs = createJobs({ role: 'all', redis: undefined, clip, logger, limits, fetchImageUrl });
    jobs.startWorker();
    return jobs.service;
  }
  const backend = {
    store: store ?? new MemoryJobStore({ maxRetainedBytes: limits.maxRetainedJobBytes }),
    events: new MemoryJobEvents(),
    queue: queue ?? new MemoryJobQueue(),
  };
  const worker = new JobWorker({
    clip,
    ...backend,
    logger,
    maxConcurrentJobs: limits.maxConcurrentJobs,
    ttlSeconds: limits.ttlSeconds,
  });
  const service = new JobService({
    clip,
    logger,
    ...backend,
    worker,
    fetchImageUrl,
    limits: testServiceLimits(overrides),
  });
  worker.start();
  return service;
}
