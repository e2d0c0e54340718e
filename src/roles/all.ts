/**
 * ROLE=all: the API and the models in one process; jobs in memory, or on Redis with REDIS_URL (then other workers
 * may take them too). `npm start` with no settings runs this.
 */
import type { Config } from '../config.js';
import { createLogger } from '../logger.js';
import { API_MESSAGES, authorizeModelControl, createApiSide } from './apiSide.js';
import { classifiersFromConfig } from './classifiers.js';
import { createLifecycle, serverOf, type CreateServerOptions, type ModelServer } from './lifecycle.js';
import { createLocalModelControl } from './modelControl.js';
import { createClip, jobsFromConfig } from './settings.js';

/** Builds the process; nothing listens or loads until `start()`. */
export function createAllServer(config: Config, options: CreateServerOptions = {}): ModelServer {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clip = createClip(config, logger);
  const classifiers = classifiersFromConfig(config, clip, clip, logger);
  const jobs = jobsFromConfig(config, { role: 'all', clip }, logger, classifiers.service);
  const modelControl = createLocalModelControl({
    clip,
    jobs: jobs.service,
    logger: logger.child({ component: 'models' }),
    authorize: authorizeModelControl,
  });
  const api = createApiSide({
    config,
    logger,
    jobs,
    graphqlModels: clip,
    restModels: clip,
    openAiModels: clip,
    modelControl,
    classifiers: classifiers.service,
    metricsClip: clip,
    readiness: () => lifecycle.readiness(),
  });
  const lifecycle = createLifecycle({
    config,
    httpServer: api.httpServer,
    jobs,
    logger,
    defaultModelName: clip.defaultModelName,
    models: clip,
    metrics: api.metrics,
    steps: { ...api.steps, afterModels: () => classifiers.start(), beforeModelsStop: () => classifiers.stop() },
    messages: API_MESSAGES,
  });
  return serverOf(lifecycle, { clip, jobs, httpServer: api.httpServer, logger });
}
