/**
 * The API's Express app: every route and the websocket first check that the request names this server (`Host`,
 * ALLOWED_HOSTS: 403 FORBIDDEN_HOST); requests carry an id (X-Request-Id, kept when the client sends a sane one).
 *
 * Routes: GET /health, GET /ready, GET /metrics (open); GET / the classification page (open, static; WEB_UI);
 * GET /graphql for browsers (Accept: text/html) → GraphiQL (open: a static page; its requests carry the key);
 * /graphql → Apollo (graphql-ws shares the path through the HTTP server's upgrade); /api → the
 * feature-extraction-server REST API; /v1 → the OpenAI-compatible embeddings API. /graphql, /api and /v1 need an
 * API key when API_KEYS is set.
 */
import { randomUUID } from 'node:crypto';
import cors from 'cors';
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import type { Config } from '../config.js';
import { AppError, ErrorCode } from '../errors.js';
import {
  createUploadMiddleware,
  documentSizeMiddleware,
  graphqlErrorBody,
  UploadRequestError,
} from '../graphql/index.js';
import type { JobService, ModelControl } from '../jobs/index.js';
import { JsonShapeError, jsonShapeVerifier } from '../jsonShape.js';
import type { Logger } from '../logger.js';
import { createOpenAiRouter, sendOpenAiError, toOpenAiError, type OpenAiModels } from '../openai/index.js';
import { createRestRouter, sendRestError, toRestError, type RestDeps } from '../rest/index.js';
import { refuseForeignHosts } from './allowedHosts.js';
import { AUTH_MESSAGES, callerOf, keyFromRequest, setCaller, type Auth } from './auth.js';
import { createGraphiqlHandler } from './graphiql.js';
import { jsonLimitsOf, operationLimitsOf } from './graphqlTransport.js';
import { createHealthRouter, type Readiness } from './health.js';
import type { Metrics } from './metrics.js';
import { createWebUiHandler } from './webUi.js';

export interface ApiAppOptions {
  config: Config;
  logger: Logger;
  auth: Auth;
  isAllowedHost: (hostHeader: string | undefined) => boolean;
  /** What /ready answers; called per request. */
  readiness: () => Promise<Readiness>;
  metrics: Metrics;
  jobs: JobService;
  /** The models REST lists and resolves names with. */
  restModels: RestDeps['clip'];
  /** The models the OpenAI routes list (with their sizes once known) and resolve names with. */
  openAiModels: OpenAiModels;
  modelControl: ModelControl;
  /** Apollo's handler once GraphQL has started; null before. */
  graphqlHandler: () => RequestHandler | null;
}

/** The headers a browser on an allowed origin may send. */
const CORS_ALLOWED_HEADERS = [
  'content-type',
  'authorization',
  'x-api-key',
  'apollo-require-preflight',
  'x-apollo-operation-name',
  'x-request-id',
];

function requestIdOf(req: Request): string {
  const given = req.get('x-request-id');
  return given !== undefined && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}

/** The refusals of a GraphQL request body that cannot be read (size, structure, JSON, multipart), as GraphQL errors. */
function graphqlBodyErrors(maxBodyBytes: number): ErrorRequestHandler {
  return (error: unknown, _req, res, next) => {
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
            `Request body is larger than the limit of ${maxBodyBytes} bytes (MAX_BODY_BYTES)`,
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
}

export function createApiApp(options: ApiAppOptions): Express {
  const { config, logger, auth } = options;
  const jsonLimits = jsonLimitsOf(config);
  const app = express();
  app.disable('x-powered-by');
  // CORS is off unless origins are configured: no CORS headers, so browsers on other origins cannot read answers.
  if (config.corsOrigins.length > 0) {
    app.use(
      cors({
        origin: config.corsOrigins.includes('*') ? '*' : [...config.corsOrigins],
        allowedHeaders: CORS_ALLOWED_HEADERS,
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
  app.use(refuseForeignHosts(options.isAllowedHost));
  app.use(createHealthRouter({ readiness: options.readiness }));
  app.get('/metrics', options.metrics.handler);

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
  graphqlRouter.use(express.json({ limit: config.maxBodyBytes, verify: jsonShapeVerifier(jsonLimits) }));
  // MAX_DOCUMENT_BYTES, before Apollo hashes or parses the document.
  graphqlRouter.use(documentSizeMiddleware(operationLimitsOf(config).documentLimits));
  graphqlRouter.use((req, res, next) => {
    const handler = options.graphqlHandler();
    if (handler === null) {
      // Apollo starts before the server listens: only a request injected into the app earlier sees this.
      res.status(503).json(graphqlErrorBody('GraphQL is not available yet', ErrorCode.ShuttingDown));
      return;
    }
    handler(req, res, next);
  });
  graphqlRouter.use(graphqlBodyErrors(config.maxBodyBytes));
  app.use('/graphql', graphqlRouter);

  const restRouter = createRestRouter({
    jobs: options.jobs,
    clip: options.restModels,
    logger: logger.child({ component: 'rest' }),
    maxBodyBytes: config.maxBodyBytes,
    jsonLimits,
    callerOf: (_req, res) => callerOf(res),
    models: options.modelControl,
  });
  app.use('/api', requireKey('rest'), restRouter);

  // OpenAI's embeddings API: the same jobs as every other route, answered synchronously.
  const openAiRouter = createOpenAiRouter({
    jobs: options.jobs,
    models: options.openAiModels,
    logger: logger.child({ component: 'openai' }),
    callerOf: (_req, res) => callerOf(res),
    maxBodyBytes: config.maxBodyBytes,
    jsonLimits,
    createdAt: Math.floor(Date.now() / 1000),
  });
  app.use('/v1', requireKey('openai'), openAiRouter);

  app.use((req, res) => {
    res.status(404).json({ error: { code: ErrorCode.NotFound, message: `No route ${req.method} ${req.path}` } });
  });
  const lastResort: ErrorRequestHandler = (error: unknown, req, res, next) => {
    logger.error({ err: error, method: req.method, path: req.path }, 'HTTP request failed');
    if (res.headersSent) return next(error);
    res.status(500).json({ error: { code: ErrorCode.InternalServerError, message: 'Internal server error' } });
  };
  app.use(lastResort);
  return app;
}
