/**
 * The one lifecycle of every process kind (all, api, worker), a discriminated union as Apollo's ServerState:
 * initialized → starting → started → stopping → stopped.
 *
 * `start()` listens first (so /health and /ready answer while the models load), tries Redis (bounded by
 * REDIS_CONNECT_TIMEOUT_MS: an unreachable Redis is survivable), loads the models where the role runs them, then lets
 * the worker take jobs; it resolves once the default model is ready, or rejects naming why it could not load.
 * `stop()` is ordered and idempotent (a second call awaits the first); a stop during start waits for the listening
 * part only, never for a model download:
 *   1. stop accepting jobs (SHUTTING_DOWN; /ready turns 503) and drain queued and running jobs, bounded by
 *      DRAIN_TIMEOUT_MS (stragglers FAIL with SHUTTING_DOWN, or on Redis are left to another worker),
 *   2. the role's `afterDrain` (the API: subscribers get their terminal states, websockets and Apollo close),
 *   3. the HTTP server closes, then the role's `afterClose`,
 *   4. the role's `beforeModelsStop` (the classifiers' builds), the ONNX sessions are released, then the jobs
 *      backend's connections and the metrics.
 */
import type http from 'node:http';
import type { ClipService } from '../clip/index.js';
import type { Config } from '../config.js';
import { UnreachableCaseError } from '../errors.js';
import { closeHttpServer, listen, type Readiness, type ServerAddress } from '../http/index.js';
import type { JobService, Jobs } from '../jobs/index.js';
import type { Logger } from '../logger.js';

export type ServerState =
  | { phase: 'initialized' }
  | { phase: 'starting'; started: Promise<ServerAddress> }
  | { phase: 'started'; address: ServerAddress }
  | { phase: 'stopping'; stopped: Promise<void> }
  | { phase: 'stopped' };

/** A process of any role, as main.ts and the tests drive it. */
export interface Server {
  /** Listens, then resolves once the default model is loaded and warmed; rejects if it cannot load. */
  start(): Promise<ServerAddress>;
  /** Ordered, idempotent shutdown (see lifecycle.ts). Safe after a failed start. */
  stop(): Promise<void>;
  /** The emergency stop (a second signal): queued inference is abandoned; resolves once the ONNX runs returned. */
  abort(): Promise<void>;
  readonly jobs: JobService;
  readonly httpServer: http.Server;
  readonly logger: Logger;
  /** The inference service where this process runs models (all, worker); ROLE=api runs none. */
  readonly clip: ClipService | undefined;
}

/** A process that runs models (all, worker). */
export interface ModelServer extends Server {
  readonly clip: ClipService;
}

export interface CreateServerOptions {
  /** Default: a pino logger at `config.logLevel`. */
  logger?: Logger;
}

/** The models a process runs, as the lifecycle starts, stops and asks them. */
export type ProcessModels = Pick<ClipService, 'defaultModelName' | 'start' | 'stop' | 'abort' | 'readiness'>;

/** What one role adds to the common order; each step runs once. */
export interface RoleSteps {
  /** Before the port opens: what every request needs (GraphQL). Never waits for models. */
  beforeListen?: () => Promise<void>;
  /** Once Redis was tried, before the models load (a worker registers them). */
  beforeModels?: () => void;
  /** Once the models loaded, before the worker takes jobs (the stored classifiers start). */
  afterModels?: () => Promise<void>;
  /** Before the models stop (the classifiers' builds end while their model still runs). */
  beforeModelsStop?: () => Promise<void>;
  /** After the drain: what serves requests finishes (subscribers, websockets, Apollo). Must not throw. */
  afterDrain?: () => Promise<void>;
  /** After the HTTP server closed, before the models stop. */
  afterClose?: () => void;
}

/** The log lines of a role's start and stop (operators and tests look for them). */
export interface LifecycleMessages {
  listening: string;
  redisUnreachable: string;
  ready: string;
  stopped: string;
}

export interface LifecycleOptions {
  config: Pick<Config, 'host' | 'port' | 'drainTimeoutMs' | 'redisConnectTimeoutMs'>;
  httpServer: http.Server;
  jobs: Jobs;
  logger: Logger;
  /** The default model's name, logged once listening. */
  defaultModelName: string;
  /** The models this process runs (all, worker); undefined on ROLE=api. */
  models: ProcessModels | undefined;
  metrics: { dispose(): void };
  steps: RoleSteps;
  messages: LifecycleMessages;
}

export interface Lifecycle {
  start(): Promise<ServerAddress>;
  stop(): Promise<void>;
  abort(): Promise<void>;
  /** What /ready answers: not while stopping, nor before the default model loads, nor while Redis is unreachable. */
  readiness(): Promise<Readiness>;
}

/** The Server a role returns: its lifecycle's start, stop and abort, with the parts tests and main.ts reach for. */
export function serverOf<C extends ClipService | undefined>(
  lifecycle: Lifecycle,
  parts: { clip: C; jobs: Jobs; httpServer: http.Server; logger: Logger },
): Server & { readonly clip: C } {
  return {
    start: () => lifecycle.start(),
    stop: () => lifecycle.stop(),
    abort: () => lifecycle.abort(),
    clip: parts.clip,
    jobs: parts.jobs.service,
    httpServer: parts.httpServer,
    logger: parts.logger,
  };
}

export function createLifecycle(options: LifecycleOptions): Lifecycle {
  const { config, httpServer, jobs, logger, models, steps, messages } = options;
  let state: ServerState = { phase: 'initialized' };
  let listening: Promise<ServerAddress> | null = null;

  /** A stop during start closes the jobs layer and the models: nothing registers or takes jobs on them after it. */
  function throwIfStopped(): void {
    if (state.phase !== 'starting') throw new Error('The server was stopped before it was ready');
  }

  async function listenFirst(): Promise<ServerAddress> {
    await steps.beforeListen?.();
    const address = await listen(httpServer, config);
    logger.info({ url: address.url, model: options.defaultModelName }, messages.listening);
    return address;
  }

  async function doStart(): Promise<ServerAddress> {
    listening = listenFirst();
    const address = await listening;
    if (!(await jobs.connect(config.redisConnectTimeoutMs))) logger.warn(messages.redisUnreachable);
    throwIfStopped();
    steps.beforeModels?.();
    const loadStarted = performance.now();
    await models?.start();
    throwIfStopped();
    await steps.afterModels?.();
    throwIfStopped();
    jobs.startWorker();
    logger.info({ url: address.url, loadMs: Math.round(performance.now() - loadStarted) }, messages.ready);
    return address;
  }

  async function doStop(): Promise<void> {
    const started = performance.now();
    // A stop during start waits for the listening part (never for model loading) so nothing opens after it.
    await listening?.catch(() => undefined);
    const failedJobs = await jobs.service.drain(config.drainTimeoutMs);
    if (failedJobs > 0)
      logger.warn({ failedJobs, drainTimeoutMs: config.drainTimeoutMs }, 'drain timed out; unfinished jobs failed');
    await steps.afterDrain?.();
    await closeHttpServer(httpServer);
    steps.afterClose?.();
    await steps.beforeModelsStop?.();
    await models?.stop();
    await jobs.close();
    options.metrics.dispose();
    logger.info({ ms: Math.round(performance.now() - started) }, messages.stopped);
  }

  return {
    start() {
      switch (state.phase) {
        case 'initialized': {
          const started = doStart();
          state = { phase: 'starting', started };
          started.then(
            (address) => {
              if (state.phase === 'starting') state = { phase: 'started', address };
            },
            () => {},
          );
          return started;
        }
        case 'starting':
          return state.started;
        case 'started':
          return Promise.resolve(state.address);
        case 'stopping':
        case 'stopped':
          return Promise.reject(new Error('the server has been stopped; create a new one'));
        default:
          throw new UnreachableCaseError(state);
      }
    },
    stop() {
      switch (state.phase) {
        case 'stopping':
          return state.stopped;
        case 'stopped':
          return Promise.resolve();
        case 'initialized':
        case 'starting':
        case 'started': {
          // A start still under way (model loading) is not awaited: stop releases what exists.
          const stopped = doStop().finally(() => {
            state = { phase: 'stopped' };
          });
          state = { phase: 'stopping', stopped };
          return stopped;
        }
        default:
          throw new UnreachableCaseError(state);
      }
    },
    abort: async () => {
      await models?.abort();
    },
    async readiness() {
      if (state.phase === 'stopping' || state.phase === 'stopped' || jobs.service.draining)
        return { ready: false, reason: 'shutting down' };
      const modelsReadiness: Readiness = models?.readiness() ?? { ready: true, reason: null };
      if (!modelsReadiness.ready) return modelsReadiness;
      if (!(await jobs.reachable())) return { ready: false, reason: 'Redis is unreachable' };
      return modelsReadiness;
    },
  };
}
