/**
 * ROLE=worker: loads the models, consumes the Redis queue with a JobWorker, publishes job changes, and registers its
 * models in Redis (their status for the APIs; starts and stops sent to any API are applied here). Serves only
 * GET /health, GET /ready (models warm and Redis reachable) and GET /metrics.
 *
 * Its drain stops taking jobs and finishes the running batch (bounded by DRAIN_TIMEOUT_MS; past it, the jobs are
 * left to BullMQ's stalled-job recovery on the other workers) and hands unstarted jobs back (they never left Redis).
 */
import { randomUUID } from 'node:crypto';
import type { ClipService } from '../clip/index.js';
import { allowedHostNames, type Config } from '../config.js';
import { createHostCheck, createHttpServer, createMetrics, createWorkerApp } from '../http/index.js';
import type { Jobs } from '../jobs/index.js';
import { createLogger, type Logger } from '../logger.js';
import { classifiersFromConfig } from './classifiers.js';
import { createLifecycle, serverOf, type CreateServerOptions, type ModelServer } from './lifecycle.js';
import { createClip, jobsFromConfig } from './settings.js';

/** The log lines of a worker's start and stop. */
export const WORKER_MESSAGES = {
  listening: 'worker listening; loading models',
  redisUnreachable: 'Redis is unreachable at start; the worker takes jobs once it is back',
  ready: 'worker ready',
  stopped: 'worker stopped',
} as const;

/** APIs load no model: they learn each model's status and metadata from what the workers register. */
function registerModels(jobs: Jobs, clip: ClipService, logger: Logger): void {
  const registry = jobs.models;
  if (registry === undefined) return;
  registry.register(randomUUID(), () => clip.models());
  clip.events.on('modelStatusChanged', () => registry.refresh());
  // A start or stop sent to any API: applied here, to this worker's copy of the model.
  registry.onControl(({ model, change }) => {
    if (clip.resolveModelName(model) === undefined) return;
    const done = change === 'start' ? clip.startModel(model) : clip.stopModel(model);
    done.catch((error: unknown) => logger.warn({ model, change, err: error }, 'model control did not complete'));
  });
}

/** Builds the process; nothing listens or loads until `start()`. */
export function createWorkerServer(config: Config, options: CreateServerOptions = {}): ModelServer {
  const logger = options.logger ?? createLogger(config.logLevel);
  if (config.redisUrl === undefined) throw new TypeError('ROLE=worker needs REDIS_URL');
  const clip = createClip(config, logger);
  const classifiers = classifiersFromConfig(config, clip, clip, logger);
  const jobs = jobsFromConfig(config, { role: 'worker', clip }, logger, classifiers.service);
  const metrics = createMetrics({ clip, jobs: jobs.service, logger });
  const app = createWorkerApp({
    isAllowedHost: createHostCheck(allowedHostNames(config)),
    readiness: () => lifecycle.readiness(),
    metrics,
  });
  const httpServer = createHttpServer(config, app);
  const lifecycle = createLifecycle({
    config,
    httpServer,
    jobs,
    logger,
    defaultModelName: clip.defaultModelName,
    models: clip,
    metrics,
    steps: {
      beforeModels: () => registerModels(jobs, clip, logger),
      afterModels: () => classifiers.start(),
      beforeModelsStop: () => classifiers.stop(),
    },
    messages: WORKER_MESSAGES,
  });
  return serverOf(lifecycle, { clip, jobs, httpServer: httpServer, logger });
}
