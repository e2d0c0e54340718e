/**
 * What ROLE=all and ROLE=api share: the API app (GraphQL over HTTP and websocket, REST, OpenAI, health, metrics,
 * GraphiQL, the page) on one HTTP server, and the API's part of the stop: once the jobs drained, subscribers receive
 * their terminal states, then the websockets and Apollo close. The roles differ in the models behind it.
 */
import type http from 'node:http';
import type { ClassifierService } from '../classifiers/index.js';
import { allowedHostNames, type Config } from '../config.js';
import type { GraphqlModels } from '../graphql/index.js';
import {
  createApiApp,
  createAuth,
  createGraphqlTransport,
  createHostCheck,
  createHttpServer,
  createMetrics,
  type Metrics,
  type MetricsSources,
  type Readiness,
} from '../http/index.js';
import { assertOperator, type Caller, type Jobs, type ModelControl } from '../jobs/index.js';
import type { Logger } from '../logger.js';
import type { OpenAiModels } from '../openai/index.js';
import type { RestDeps } from '../rest/index.js';
import type { RoleSteps } from './lifecycle.js';

/** Longest wait, after the drain, for subscribers to be sent their jobs' terminal states, in ms. */
const SUBSCRIBER_FLUSH_MS = 2_000;

/** The log lines of an API process's start and stop. */
export const API_MESSAGES = {
  listening: 'listening; loading models',
  redisUnreachable: 'Redis is unreachable at start; answering SERVICE_UNAVAILABLE until it is back',
  ready: 'ready',
  stopped: 'stopped',
} as const;

export interface ApiSideOptions {
  config: Config;
  logger: Logger;
  jobs: Jobs;
  /** The models GraphQL lists. */
  graphqlModels: GraphqlModels;
  /** The models REST lists and resolves names with. */
  restModels: RestDeps['clip'];
  /** The models the OpenAI routes list and resolve names with. */
  openAiModels: OpenAiModels;
  modelControl: ModelControl;
  /** Stored zero-shot classifiers, where this process keeps them. */
  classifiers?: ClassifierService | undefined;
  /** The inference service feeding the batch and cache metrics; undefined where no model runs. */
  metricsClip: MetricsSources['clip'];
  /** What /ready answers (the lifecycle's). */
  readiness: () => Promise<Readiness>;
}

export interface ApiSide {
  readonly httpServer: http.Server;
  readonly metrics: Metrics;
  readonly steps: Required<Pick<RoleSteps, 'beforeListen' | 'afterDrain'>>;
}

/** Model control changes the service for everyone: an operator action (an admin key, or anyone with auth off). */
export function authorizeModelControl(caller: Caller): void {
  assertOperator(caller, 'Starting and stopping models');
}

export function createApiSide(options: ApiSideOptions): ApiSide {
  const { config, logger, jobs } = options;
  const auth = createAuth(config.apiKeys, config.adminApiKeys);
  const allowAnyOrigin = config.corsOrigins.includes('*');
  const isAllowedOrigin = (origin: string): boolean => allowAnyOrigin || config.corsOrigins.includes(origin);
  const isAllowedHost = createHostCheck(allowedHostNames(config));
  const metrics = createMetrics({
    clip: options.metricsClip,
    jobs: jobs.service,
    logger,
    websocketConnections: () => graphql.connections(),
  });
  const app = createApiApp({
    config,
    logger,
    auth,
    isAllowedHost,
    readiness: options.readiness,
    metrics,
    jobs: jobs.service,
    restModels: options.restModels,
    openAiModels: options.openAiModels,
    modelControl: options.modelControl,
    graphqlHandler: () => graphql.handler(),
  });
  const httpServer = createHttpServer(config, app);
  const graphql = createGraphqlTransport({
    config,
    httpServer,
    services: {
      jobs: jobs.service,
      clip: options.graphqlModels,
      logger,
      maxResponseBytes: config.maxResponseBytes,
      modelControl: options.modelControl,
      classifiers: options.classifiers,
    },
    auth,
    isAllowedHost,
    isAllowedOrigin,
    logger,
  });

  return {
    httpServer,
    metrics,
    steps: {
      beforeListen: () => graphql.start(),
      afterDrain: async () => {
        // Subscribers end right after their terminal state; give graphql-ws the moment it needs to send it.
        await jobs.service.whenWatchersGone(SUBSCRIBER_FLUSH_MS);
        await new Promise((resolve) => setImmediate(resolve));
        await graphql.stop();
      },
    },
  };
}
