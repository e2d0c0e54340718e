/**
 * Composes the server: CLIP service, jobs, GraphQL (HTTP + websocket), the REST API, GraphiQL,
 * health and metrics on one Express app and one HTTP server; owns start and the stop order.
 *
 * Every route and the websocket first check that the request names this server (`Host`, ALLOWED_HOSTS: 403
 * FORBIDDEN_HOST), and every request has a deadline for its headers and its body (HEADERS_TIMEOUT_MS,
 * REQUEST_TIMEOUT_MS: 408).
 *
 * Routes: GET /health, GET /ready, GET /metrics (open); GET / the classification page (open, static; WEB_UI);
 * GET /graphql for browsers (Accept: text/html)
 * → GraphiQL (open: a static page; its requests carry the key); /graphql → Apollo and graphql-ws;
 * /api → the feature-extraction-server REST API; /v1 → the OpenAI-compatible embeddings API. /graphql, /api
 * and /v1 need an API key when API_KEYS is set.
 *
 * Lifecycle (a discriminated union, as in Apollo's ServerState): initialized → starting → started →
 * stopping → stopped. `start()` listens first (so /health and /ready answer while the model loads),
 * then resolves once the default model is ready, or rejects naming why it could not load.
 * `stop()` is ordered and idempotent (a second call awaits the first):
 *   1. stop accepting jobs (SHUTTING_DOWN; /ready turns 503),
 *   2. drain queued and running jobs, bounded by DRAIN_TIMEOUT_MS (stragglers FAIL with SHUTTING_DOWN),
 *   3. let subscribers receive those terminal states, then close websockets (1001; peers that do not answer
 *      the close handshake within WEBSOCKET_CLOSE_MS are cut),
 *   4. stop Apollo (the drain plugin closes the HTTP server once in-flight requests end),
 *   5. release the ONNX sessions.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import { ClipService, type ModelInfo } from '../clip/index.js';
import { allowedHostNames, type Config } from '../config.js';
import { AppError, ErrorCode, UnreachableCaseError } from '../errors.js';
import {
  buildGraphqlSchema,
  createApolloServer,
  documentSizeMiddleware,
  createUploadMiddleware,
  UploadRequestError,
  createContext,
  startGraphqlWs,
  type DocumentLimits,
  type GraphqlWs,
  type OperationLimits,
} from '../graphql/index.js';
import {
  assertOperator,
  createJobs,
  mergeModelViews,
  type Caller,
  type JobClassifiers,
  type JobService,
} from '../jobs/index.js';
import { JsonShapeError, jsonShapeVerifier, type JsonShapeLimits } from '../jsonShape.js';
import { createLogger, type Logger } from '../logger.js';
import { createImageUrlFetcher, type ImageUrlFetcher } from '../imageUrls/index.js';
import { createRestRouter, sendRestError, toRestError, type RestDeps } from '../rest/index.js';
import { createOpenAiRouter, sendOpenAiError, toOpenAiError, type OpenAiDeps } from '../openai/index.js';
import { createHostCheck, foreignHostMessage, refuseForeignHosts } from './allowedHosts.js';
import { AUTH_MESSAGES, callerOf, createAuth, keyFromConnectionParams, keyFromRequest, setCaller } from './auth.js';
import { createClusterModelControl, createLocalModelControl } from './modelControl.js';
import { createGraphiqlHandler } from './graphiql.js';
import { createWebUiHandler } from './webUi.js';
import { createHealthRouter, type Readiness } from './health.js';
import { createMetrics } from './metrics.js';
import { classifiersFromConfig } from './classifiers.js';

export interface CreateServerOptions {
  /** Default: a pino logger at `config.logLevel`. */
  logger?: Logger;
}

export interface ServerAddress {
  /** `http://host:port`. */
  url: string;
  port: number;
}

export interface Server {
  /** Listens, then resolves once the default model is loaded and warmed; rejects if it cannot load. */
  start(): Promise<ServerAddress>;
  /** Ordered, idempotent shutdown (see the module comment). Safe after a failed start. */
  stop(): Promise<void>;
  readonly clip: ClipService;
  readonly jobs: JobService;
  readonly httpServer: http.Server;
  readonly logger: Logger;
}

type ServerState =
  | { phase: 'initialized' }
  | { phase: 'starting'; started: Promise<ServerAddress> }
  | { phase: 'started'; address: ServerAddress }
  | { phase: 'stopping'; stopped: Promise<void> }
  | { phase: 'stopped' };

/** Names this server to the hosts it fetches image URLs from. */
const IMAGE_URL_USER_AGENT = 'clip-classify-server (image URL fetcher)';

/** Longest wait, after the drain, for subscribers to be sent their jobs' terminal states, in ms. */
const SUBSCRIBER_FLUSH_MS = 2_000;
/** Longest wait for websocket peers to answer the close handshake on stop, in ms; the rest are cut. */
const WEBSOCKET_CLOSE_MS = 1_000;

// ---- small HTTP helpers ----

function requestIdOf(req: Request): string {
  const given = req.get('x-request-id');
  return given !== undefined && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}

function graphqlErrorBody(
  message: string,
  code: string,
): { errors: { message: string; extensions: { code: string } }[] } {
  return { errors: [{ message, extensions: { code } }] };
}

/**
 * Node answers a request it cannot parse (a request line or headers over its 16 KiB limit, malformed
 * HTTP) with an empty 4xx; ours carries a JSON `error.code` like every other refusal.
 */
function answerUnparsableRequest(error: NodeJS.ErrnoException, socket: Duplex): void {
  // As Node's own handler: nothing can be written once a response has started or the peer is gone.
  const response = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || response?.headersSent === true) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [
          431,
          'Request Header Fields Too Large',
          ErrorCode.PayloadTooLarge,
          'The request line and headers are over the size limit',
        ]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', ErrorCode.BadUserInput, 'The request did not arrive in time']
        : [400, 'Bad Request', ErrorCode.BadUserInput, 'Malformed HTTP request'];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * How often Node looks for requests past their deadline, in ms. Its default (30 s) would let a request overstay
 * HEADERS_TIMEOUT_MS or REQUEST_TIMEOUT_MS by that much; the check only walks the open connections.
 */
const DEADLINE_CHECK_INTERVAL_MS = 1_000;

/** Node's HTTP server with the request deadlines of `config` (answered 408 by `answerUnparsableRequest`). */
export function createHttpServer(
  config: Pick<Config, 'headersTimeoutMs' | 'requestTimeoutMs'>,
  app: http.RequestListener,
): http.Server {
  const server = http.createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(DEADLINE_CHECK_INTERVAL_MS, config.headersTimeoutMs),
    },
    app,
  );
  server.on('clientError', answerUnparsableRequest);
  return server;
}

function formatUrl(host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
}

/** The CLIP service from the settings (shared by the all, api and worker compositions). */
/** The jobs layer of a role, with the settings of `config`: in memory, or on Redis when REDIS_URL is set. */
export function jobsFromConfig(
  config: Config,
  role: Config['role'],
  clip: ClipService,
  logger: Logger,
  classifiers?: JobClassifiers,
): ReturnType<typeof createJobs> {
  return createJobs({
    role,
    classifiers,
    redis:
      config.redisUrl === undefined
        ? undefined
        : {
            url: config.redisUrl,
            keyPrefix: config.redisKeyPrefix,
            stall: {
              lockDurationMs: config.lockDurationMs,
              stalledIntervalMs: config.stalledIntervalMs,
              maxStalledCount: config.maxStalledCount,
            },
          },
    clip,
    logger: logger.child({ component: 'jobs' }),
    // Only the API side submits jobs: a worker process never fetches URLs.
    ...(role === 'worker' ? {} : { fetchImageUrl: imageUrlFetcherFromConfig(config).fetch }),
    limits: {
      maxImagesPerJob: config.maxImagesPerJob,
      maxClassesPerJob: config.maxClassesPerJob,
      maxClassLength: config.maxClassLength,
      maxTextsPerJob: config.maxTextsPerJob,
      maxTextLength: config.maxTextLength,
      maxPromptsPerJob: config.maxPromptsPerJob,
      maxQueuedJobs: config.maxQueuedJobs,
      maxQueuedImages: config.maxQueuedImages,
      maxPendingImageBytes: config.maxPendingImageBytes,
      maxQueuedJobsPerKey: config.maxQueuedJobsPerKey,
      maxQueuedImagesPerKey: config.maxQueuedImagesPerKey,
      maxConcurrentJobs: config.maxConcurrentJobs,
      ttlSeconds: config.jobTtlSeconds,
      maxRetainedJobBytes: config.maxRetainedJobBytes,
    },
  });
}

/** The guarded image-URL fetcher of this process (src/imageUrls/), from the IMAGE_URL* settings. */
export function imageUrlFetcherFromConfig(config: Config): ImageUrlFetcher {
  return createImageUrlFetcher({
    mode: config.imageUrls,
    allowedNetworks: config.imageUrlAllowedNetworks,
    maxRedirects: config.imageUrlMaxRedirects,
    timeoutMs: config.imageUrlTimeoutMs,
    maxBytes: config.maxImageBytes,
    concurrency: config.imageUrlConcurrency,
    userAgent: IMAGE_URL_USER_AGENT,
  });
}

export function createClip(config: Config, logger: Logger): ClipService {
  return new ClipService({
    defaultModel: config.clipModel,
    extraModels: config.clipModels.map((model) => ({ name: model.name, source: model.source })),
    precision: config.clipPrecision,
    hub: {
      cacheDir: config.modelCacheDir,
      endpoint: config.hfEndpoint,
      token: config.hfToken,
      offline: config.hfHubOffline,
      progress: config.downloadProgress,
    },
    inference: {
      maxBatchSize: config.maxBatchSize,
      maxBatchWaitMs: config.maxBatchWaitMs,
      maxTextBatchSize: config.maxTextBatchSize,
      maxQueuedImages: config.maxQueuedImages,
      intraOpThreads: config.ortIntraOpThreads,
      visionReplicas: config.visionReplicas,
      graphOptimizationLevel: config.ortGraphOptimization,
      allowSpinning: config.ortAllowSpinning,
      executionProviders: config.ortExecutionProviders,
      ortTelemetry: config.ortTelemetry,
      logitScale: config.logitScale,
      preprocessConcurrency: config.preprocessConcurrency,
      preprocessWorkers: config.preprocessWorkers,
      exactResizeMaxPixels: config.exactResizeMaxPixels,
    },
    caches: { textEmbeddings: config.textCacheSize, imageEmbeddings: config.imageCacheSize },
    imageLimits: { maxBytes: config.maxImageBytes, maxPixels: config.maxImagePixels },
    logger: logger.child({ component: 'clip' }),
    idleStopSeconds: config.modelIdleStopSeconds,
  });
}

/** Builds the server; nothing listens or loads until `start()`. */
export function createServer(config: Config, options: CreateServerOptions = {}): Server {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clip = createClip(config, logger);
  // ROLE=api runs no model here: ClipService only resolves names and checks inputs, and is never started.
  const runsModels = config.role !== 'api';
  // Stored classifiers live where models run in the API's process (ROLE=all).
  const classifiers = config.role === 'all' ? classifiersFromConfig(config, clip, logger) : undefined;
  const jobsLayer = jobsFromConfig(config, config.role, clip, logger, classifiers?.service);
  const jobs = jobsLayer.service;
  const limits: OperationLimits = {
    maxDepth: config.maxQueryDepth,
    maxAliases: config.maxAliases,
    maxComplexity: config.maxQueryComplexity,
  };
  const documentLimits: DocumentLimits = { maxBytes: config.maxDocumentBytes, maxTokens: config.maxDocumentTokens };
  // ROLE=api: `models` shows the configured models with the status and metadata the workers registered in Redis.
  let workerModels: ModelInfo[][] = [];
  const registry = runsModels ? undefined : jobsLayer.models;
  const modelsRefresh =
    registry === undefined
      ? null
      : setInterval(() => {
          registry.read().then(
            (views) => {
              workerModels = views;
            },
            () => undefined,
          );
        }, 1_000);
  modelsRefresh?.unref();
  const graphqlModels =
    registry === undefined
      ? clip
      : { defaultModelName: clip.defaultModelName, models: () => mergeModelViews(clip.models(), workerModels) };
  const auth = createAuth(config.apiKeys, config.adminApiKeys);
  // Model control changes the service for everyone: an operator action (an admin key, or anyone with auth off).
  const authorizeModelControl = (caller: Caller): void => assertOperator(caller, 'Starting and stopping models');
  // ROLE=api holds no model: a start or stop goes to every worker through Redis.
  const modelControl =
    registry === undefined
      ? createLocalModelControl({
          clip,
          jobs,
          logger: logger.child({ component: 'models' }),
          authorize: authorizeModelControl,
        })
      : createClusterModelControl({
          clip,
          jobs,
          models: () => graphqlModels.models(),
          publish: (message) => registry.publishControl(message),
          authorize: authorizeModelControl,
        });
  const services = {
    jobs,
    clip: graphqlModels,
    logger,
    maxResponseBytes: config.maxResponseBytes,
    modelControl,
    classifiers: classifiers?.service,
  };
  const allowAnyOrigin = config.corsOrigins.includes('*');
  const isAllowedOrigin = (origin: string): boolean => allowAnyOrigin || config.corsOrigins.includes(origin);
  const isAllowedHost = createHostCheck(allowedHostNames(config));

  let state: ServerState = { phase: 'initialized' };
  let graphqlWs: GraphqlWs | null = null;
  let apollo: ReturnType<typeof createApolloServer> | null = null;
  let graphqlHandler: RequestHandler | null = null;

  const readiness = async (): Promise<Readiness> => {
    if (state.phase === 'stopping' || state.phase === 'stopped' || jobs.draining)
      return { ready: false, reason: 'shutting down' };
    const models: Readiness = runsModels ? clip.readiness() : { ready: true, reason: null };
    if (!models.ready) return models;
    if (!(await jobsLayer.reachable())) return { ready: false, reason: 'Redis is unreachable' };
    return models;
  };
  const metrics = createMetrics({ clip, jobs, logger, websocketConnections: () => graphqlWs?.connections() ?? 0 });

  const app = express();
  app.disable('x-powered-by');
  // CORS is off unless origins are configured: no CORS headers, so browsers on other origins cannot read answers.
  if (config.corsOrigins.length > 0) {
    app.use(
      cors({
        origin: allowAnyOrigin ? '*' : [...config.corsOrigins],
        allowedHeaders: [
          'content-type',
          'authorization',
          'x-api-key',
          'apollo-require-preflight',
          'x-apollo-operation-name',
          'x-request-id',
        ],
        maxAge: 600,
      }),
    );
  }
  app.use((req, res, next) => {
    const requestId = requestIdOf(req);
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    next();
  });
  app.use(refuseForeignHosts(isAllowedHost));
  app.use(createHealthRouter({ readiness }));
  app.get('/metrics', metrics.handler);

  // GraphiQL answers GET /graphql only for browsers (Accept: text/html) and serves its own assets;
  // the page is static and open, the operations it sends need the key like any other.
  if (config.graphiql) {
    app.use(
      createGraphiqlHandler({ endpoint: '/graphql', subscriptionEndpoint: '/graphql', apiKeyHeader: auth.enabled }),
    );
  }
  // The classification page at GET /: static and open like GraphiQL; it talks to the API with the key typed into it.
  if (config.webUi) {
    app.use(
      createWebUiHandler({
        endpoint: '/graphql',
        apiKeyRequired: auth.enabled,
        graphiqlPath: config.graphiql ? '/graphql' : null,
        logger,
      }),
    );
  }
  const requireKey =
    (kind: 'graphql' | 'rest' | 'openai'): RequestHandler =>
    (req, res, next) => {
      const authentication = auth.authenticate(keyFromRequest(req));
      if (authentication.outcome === 'ok') {
        setCaller(res, authentication.caller);
        return next();
      }
      const message = AUTH_MESSAGES[authentication.outcome];
      res.setHeader('WWW-Authenticate', 'Bearer');
      if (kind === 'rest') return sendRestError(res, toRestError(new AppError(ErrorCode.Unauthenticated, message)));
      if (kind === 'openai')
        return sendOpenAiError(res, toOpenAiError(new AppError(ErrorCode.Unauthenticated, message)));
      res.status(401).json(graphqlErrorBody(message, ErrorCode.Unauthenticated));
    };

  const graphqlRouter = express.Router();
  graphqlRouter.use(requireKey('graphql'));
  // File uploads (multipart), before the JSON parser: MAX_IMAGE_BYTES per file, MAX_IMAGES_PER_JOB files, MAX_BODY_BYTES on the stream.
  graphqlRouter.use(
    createUploadMiddleware({
      maxFileBytes: config.maxImageBytes,
      maxFiles: config.maxImagesPerJob,
      maxBodyBytes: config.maxBodyBytes,
    }),
  );
  // Structure is checked on the raw bytes before parsing (src/jsonShape.ts), as on REST.
  const jsonLimits: JsonShapeLimits = { maxDepth: config.maxJsonDepth, maxValues: config.maxJsonValues };
  graphqlRouter.use(express.json({ limit: config.maxBodyBytes, verify: jsonShapeVerifier(jsonLimits) }));
  // MAX_DOCUMENT_BYTES, before Apollo hashes or parses the document.
  graphqlRouter.use(documentSizeMiddleware(documentLimits));
  graphqlRouter.use((req, res, next) => {
    if (graphqlHandler === null) {
      // Only before start() has built Apollo, which happens before listening: unreachable in practice.
      res.status(503).json(graphqlErrorBody('GraphQL is not available yet', ErrorCode.ShuttingDown));
      return;
    }
    graphqlHandler(req, res, next);
  });
  const graphqlBodyErrors: ErrorRequestHandler = (error: unknown, _req, res, next) => {
    const type = (error as { type?: unknown } | null)?.type;
    if (res.headersSent) return next(error);
    if (error instanceof UploadRequestError) {
      res.status(error.status).json(graphqlErrorBody(error.message, error.code));
      return;
    }
    if (error instanceof JsonShapeError) {
      res
        .status(error.status)
        .json(graphqlErrorBody(error.message, error.status === 413 ? ErrorCode.PayloadTooLarge : 'BAD_REQUEST'));
      return;
    }
    if (type === 'entity.too.large') {
      res
        .status(413)
        .json(
          graphqlErrorBody(
            `Request body is larger than the limit of ${config.maxBodyBytes} bytes (MAX_BODY_BYTES)`,
            ErrorCode.PayloadTooLarge,
          ),
        );
      return;
    }
    if (type === 'entity.parse.failed') {
      res.status(400).json(graphqlErrorBody('Request body is not valid JSON', 'BAD_REQUEST'));
      return;
    }
    if (typeof type === 'string' && (error as { expose?: unknown }).expose === true) {
      const status = (error as { status?: unknown }).status;
      res
        .status(typeof status === 'number' ? status : 400)
        .json(graphqlErrorBody((error as Error).message, 'BAD_REQUEST'));
      return;
    }
    next(error);
  };
  graphqlRouter.use(graphqlBodyErrors);
  app.use('/graphql', graphqlRouter);

  const restDeps: RestDeps = {
    jobs,
    clip,
    logger: logger.child({ component: 'rest' }),
    maxBodyBytes: config.maxBodyBytes,
    jsonLimits,
    callerOf: (_req, res) => callerOf(res),
    models: modelControl,
  };
  app.use('/api', requireKey('rest'), createRestRouter(restDeps));

  // OpenAI's embeddings API: the same jobs as every other route, answered synchronously.
  const openAiDeps: OpenAiDeps = {
    jobs,
    models: { models: () => graphqlModels.models(), resolveModelName: (name) => clip.resolveModelName(name) },
    logger: logger.child({ component: 'openai' }),
    callerOf: (_req, res) => callerOf(res),
    maxBodyBytes: config.maxBodyBytes,
    jsonLimits,
    createdAt: Math.floor(Date.now() / 1000),
  };
  app.use('/v1', requireKey('openai'), createOpenAiRouter(openAiDeps));

  app.use((req, res) => {
    res.status(404).json({ error: { code: ErrorCode.NotFound, message: `No route ${req.method} ${req.path}` } });
  });
  const lastResort: ErrorRequestHandler = (error: unknown, req, res, next) => {
    logger.error({ err: error, method: req.method, path: req.path }, 'HTTP request failed');
    if (res.headersSent) return next(error);
    res.status(500).json({ error: { code: ErrorCode.InternalServerError, message: 'Internal server error' } });
  };
  app.use(lastResort);

  const httpServer = createHttpServer(config, app);
  // Upgraded sockets leave the HTTP server's bookkeeping: stop() needs its own list to end the unresponsive ones.
  const upgradedSockets = new Set<Duplex>();
  httpServer.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) => {
    upgradedSockets.add(socket);
    socket.once('close', () => upgradedSockets.delete(socket));
  });

  async function listen(): Promise<ServerAddress> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        httpServer.off('listening', onListening);
        reject(new Error(`Cannot listen on ${config.host}:${config.port}: ${error.message}`, { cause: error }));
      };
      const onListening = (): void => {
        httpServer.off('error', onError);
        resolve();
      };
      httpServer.once('error', onError);
      httpServer.once('listening', onListening);
      httpServer.listen(config.port, config.host);
    });
    const port = (httpServer.address() as AddressInfo).port;
    return { url: formatUrl(config.host, port), port };
  }

  /** Everything but the models: schema, websocket, Apollo, listening. */
  async function setUp(): Promise<ServerAddress> {
    const schema = await buildGraphqlSchema();
    graphqlWs = startGraphqlWs({
      httpServer,
      schema,
      services,
      limits,
      introspection: config.introspection,
      maxPayloadBytes: config.maxBodyBytes,
      jsonLimits,
      documentCacheBytes: config.wsDocumentCacheBytes,
      documentLimits,
      isAllowedOrigin,
      isAllowedHost,
      foreignHostMessage,
      authenticate: (params: Readonly<Record<string, unknown>>) => auth.authenticate(keyFromConnectionParams(params)),
    });
    apollo = createApolloServer({
      schema,
      httpServer,
      logger,
      limits,
      documentLimits,
      documentCacheBytes: config.httpDocumentCacheBytes,
      introspection: config.introspection,
    });
    await apollo.start();
    graphqlHandler = expressMiddleware(apollo, {
      context: async ({ res }) =>
        createContext(
          services,
          typeof res.locals.requestId === 'string' ? res.locals.requestId : randomUUID(),
          callerOf(res),
        ),
    });
    const address = await listen();
    logger.info({ url: address.url, model: clip.defaultModelName }, 'listening; loading models');
    return address;
  }

  let setUpDone: Promise<ServerAddress> | null = null;

  async function doStart(): Promise<ServerAddress> {
    setUpDone = setUp();
    const address = await setUpDone;
    // Redis down at start is survivable: requests answer SERVICE_UNAVAILABLE until it is back.
    if (!(await jobsLayer.connect(5_000)))
      logger.warn('Redis is unreachable at start; answering SERVICE_UNAVAILABLE until it is back');
    const loadStarted = performance.now();
    if (runsModels) await clip.start();
    await classifiers?.start();
    jobsLayer.startWorker();
    logger.info({ url: address.url, loadMs: Math.round(performance.now() - loadStarted) }, 'ready');
    return address;
  }

  /**
   * graphql-ws closes every socket with 1001 and waits for each close handshake, which `ws` bounds at 30 s per
   * peer: a client that stopped reading (paused, suspended, its network gone) would hold the stop that long
   * (issue 13). Peers get WEBSOCKET_CLOSE_MS to answer; the rest are cut.
   */
  async function closeWebsockets(): Promise<void> {
    if (graphqlWs === null) return;
    const disposed = graphqlWs.dispose();
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      disposed.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), WEBSOCKET_CLOSE_MS);
      }),
    ]);
    clearTimeout(timer);
    if (answered) return;
    logger.warn(
      { sockets: upgradedSockets.size, waitedMs: WEBSOCKET_CLOSE_MS },
      'websocket peers did not answer the close handshake; cutting them',
    );
    for (const socket of upgradedSockets) socket.destroy();
    await disposed;
  }

  async function doStop(): Promise<void> {
    const started = performance.now();
    // A stop during start waits for the listening part (never for model loading) so nothing opens after it.
    await setUpDone?.catch(() => undefined);
    const failedJobs = await jobs.drain(config.drainTimeoutMs);
    if (failedJobs > 0)
      logger.warn({ failedJobs, drainTimeoutMs: config.drainTimeoutMs }, 'drain timed out; unfinished jobs failed');
    // Subscribers end right after their terminal state; give graphql-ws the moment it needs to send it.
    const flushDeadline = Date.now() + SUBSCRIBER_FLUSH_MS;
    while (jobs.stats().watchers > 0 && Date.now() < flushDeadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setImmediate(resolve));
    await closeWebsockets();
    try {
      if (apollo !== null) await apollo.stop();
    } catch (error) {
      logger.error({ err: error }, 'stopping Apollo failed');
    }
    if (httpServer.listening) await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    if (modelsRefresh !== null) clearInterval(modelsRefresh);
    await classifiers?.service.stop();
    await clip.stop();
    await jobsLayer.close();
    metrics.dispose();
    logger.info({ ms: Math.round(performance.now() - started) }, 'stopped');
  }

  return {
    clip,
    jobs,
    httpServer,
    logger,
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
  };
}
