/**
 * ROLE=api: GraphQL, REST, OpenAI and websockets on Redis, with no model loaded. Names and inputs are checked with
 * the model catalogue; each model's status and metadata are what the workers registered in Redis, and a model start
 * or stop goes to every worker through Redis.
 */
import type { ModelInfo } from '../clip/index.js';
import type { Config } from '../config.js';
import { mergeModelViews } from '../jobs/index.js';
import { createLogger } from '../logger.js';
import { API_MESSAGES, authorizeModelControl, createApiSide } from './apiSide.js';
import { classifiersFromConfig } from './classifiers.js';
import { createLifecycle, serverOf, type CreateServerOptions, type Server } from './lifecycle.js';
import { createClusterModelControl } from './modelControl.js';
import { catalogueFromConfig, jobsFromConfig } from './settings.js';

/** Builds the process; nothing listens until `start()`. */
export function createApiServer(config: Config, options: CreateServerOptions = {}): Server {
  const logger = options.logger ?? createLogger(config.logLevel);
  const catalogue = catalogueFromConfig(config);
  // The api role runs no model: its classifiers are built and scored by the workers.
  const classifiers = classifiersFromConfig(config, catalogue, undefined, logger);
  const jobs = jobsFromConfig(config, { role: 'api', clip: catalogue }, logger, classifiers.service);
  const registry = jobs.models;
  if (registry === undefined) throw new TypeError('ROLE=api needs REDIS_URL');
  // What the workers registered, pushed by the registry when it changes (from the start of the process to its stop).
  let workerModels: ModelInfo[][] = [];
  let stopWatching: (() => void) | undefined;
  const models = (): ModelInfo[] => mergeModelViews(catalogue.models(), workerModels);
  const modelControl = createClusterModelControl({
    clip: catalogue,
    jobs: jobs.service,
    models,
    publish: (message) => registry.publishControl(message),
    authorize: authorizeModelControl,
  });
  const api = createApiSide({
    config,
    logger,
    jobs,
    graphqlModels: { defaultModelName: catalogue.defaultModelName, models },
    restModels: catalogue,
    openAiModels: { models, resolveModelName: (name) => catalogue.resolveModelName(name) },
    modelControl,
    classifiers: classifiers.service,
    metricsClip: undefined,
    readiness: () => lifecycle.readiness(),
  });
  const lifecycle = createLifecycle({
    config,
    httpServer: api.httpServer,
    jobs,
    logger,
    defaultModelName: catalogue.defaultModelName,
    models: undefined,
    metrics: api.metrics,
    steps: {
      ...api.steps,
      beforeModels: () => {
        stopWatching = registry.watch((views) => {
          workerModels = views;
        });
      },
      afterClose: () => stopWatching?.(),
      afterModels: () => classifiers.start(),
      beforeModelsStop: () => classifiers.stop(),
    },
    messages: API_MESSAGES,
  });
  return serverOf(lifecycle, { clip: undefined, jobs, httpServer: api.httpServer, logger });
}
