/**
 * GraphQL's two transports on one HTTP server: Apollo for HTTP (its express handler, and the drain plugin that closes
 * the server on stop) and graphql-ws for subscriptions on the same port and path. `start()` runs before the server
 * listens; `stop()` closes the websockets, then Apollo.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { expressMiddleware } from '@as-integrations/express5';
import type { RequestHandler } from 'express';
import type { Config } from '../config.js';
import {
  buildGraphqlSchema,
  createApolloServer,
  createContext,
  startGraphqlWs,
  type DocumentLimits,
  type GraphqlServices,
  type GraphqlWs,
  type OperationLimits,
} from '../graphql/index.js';
import type { JsonShapeLimits } from '../jsonShape.js';
import type { Logger } from '../logger.js';
import { foreignHostMessage } from './allowedHosts.js';
import { callerOf, keyFromConnectionParams, type Auth } from './auth.js';

/** Longest wait for websocket peers to answer the close handshake on stop, in ms; the rest are cut. */
const WEBSOCKET_CLOSE_MS = 1_000;

export interface GraphqlTransportOptions {
  config: Config;
  httpServer: http.Server;
  services: GraphqlServices;
  auth: Auth;
  isAllowedHost: (hostHeader: string | undefined) => boolean;
  isAllowedOrigin: (origin: string) => boolean;
  logger: Logger;
}

export interface GraphqlTransport {
  /** Builds the schema, opens graphql-ws on the server and starts Apollo. Call once, before listening. */
  start(): Promise<void>;
  /** Apollo's express handler once started; null before. */
  handler(): RequestHandler | null;
  /** Open websocket connections. */
  connections(): number;
  /** Closes the websockets (1001; peers silent past WEBSOCKET_CLOSE_MS are cut), then stops Apollo. Never throws. */
  stop(): Promise<void>;
}

/** The bounds every GraphQL document meets, on both transports. */
export function operationLimitsOf(config: Config): { limits: OperationLimits; documentLimits: DocumentLimits } {
  return {
    limits: {
      maxDepth: config.maxQueryDepth,
      maxAliases: config.maxAliases,
      maxComplexity: config.maxQueryComplexity,
    },
    documentLimits: { maxBytes: config.maxDocumentBytes, maxTokens: config.maxDocumentTokens },
  };
}

/** MAX_JSON_DEPTH and MAX_JSON_VALUES, checked on a body's bytes before it is parsed. */
export function jsonLimitsOf(config: Config): JsonShapeLimits {
  return { maxDepth: config.maxJsonDepth, maxValues: config.maxJsonValues };
}

export function createGraphqlTransport(options: GraphqlTransportOptions): GraphqlTransport {
  const { config, httpServer, services, auth, logger } = options;
  const { limits, documentLimits } = operationLimitsOf(config);
  let graphqlWs: GraphqlWs | null = null;
  let apollo: ReturnType<typeof createApolloServer> | null = null;
  let handler: RequestHandler | null = null;
  // Upgraded sockets leave the HTTP server's bookkeeping: stop() needs its own list to end the unresponsive ones.
  const upgradedSockets = new Set<Duplex>();
  httpServer.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) => {
    upgradedSockets.add(socket);
    socket.once('close', () => upgradedSockets.delete(socket));
  });

  /**
   * graphql-ws closes every socket with 1001 and waits for each close handshake, which `ws` bounds at 30 s per
   * peer: a client that stopped reading (paused, suspended, its network gone) would hold the stop that long.
   * Peers get WEBSOCKET_CLOSE_MS to answer; the rest are cut.
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

  return {
    async start() {
      const schema = await buildGraphqlSchema();
      graphqlWs = startGraphqlWs({
        httpServer,
        schema,
        services,
        limits,
        introspection: config.introspection,
        maxPayloadBytes: config.maxBodyBytes,
        jsonLimits: jsonLimitsOf(config),
        documentCacheBytes: config.wsDocumentCacheBytes,
        documentLimits,
        isAllowedOrigin: options.isAllowedOrigin,
        isAllowedHost: options.isAllowedHost,
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
        stopGracePeriodMs: config.httpStopGraceMs,
      });
      await apollo.start();
      handler = expressMiddleware(apollo, {
        context: async ({ res }) =>
          createContext(
            services,
            typeof res.locals.requestId === 'string' ? res.locals.requestId : randomUUID(),
            callerOf(res),
          ),
      });
    },
    handler: () => handler,
    connections: () => graphqlWs?.connections() ?? 0,
    async stop() {
      await closeWebsockets();
      try {
        if (apollo !== null) await apollo.stop();
      } catch (error) {
        logger.error({ err: error }, 'stopping Apollo failed');
      }
    },
  };
}
