/**
 * GraphQL over websocket (graphql-ws protocol) on the HTTP server's `/graphql` path, with the same
 * schema, context, limits and error formatting as HTTP. Malformed protocol messages are graphql-ws's
 * business (it closes with 4400); everything this module adds is caught, so no client can crash it.
 *
 * Auth (when API keys are configured): `connection_init` carries `{ apiKey }` or
 * `{ Authorization: 'Bearer …' }`; a missing key closes the socket with 4401, a wrong one with 4403.
 * Browsers are only let in from the server's own origin or a configured CORS origin, so a foreign page
 * cannot use a visitor's network position to reach the API (cross-site websocket hijacking).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { GraphQLError, type ExecutionArgs, type GraphQLSchema } from 'graphql';
import { CloseCode, MessageType } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { createContext, type GraphqlServices } from './context.js';
import { validatedDocuments } from './documentCache.js';
import { formatGraphqlError } from './formatError.js';
import { allValidationRules, complexityError, LIMIT_ERROR_CODE, type OperationLimits } from './limits.js';

/** The outcome of checking a connection's credentials. */
export type AuthOutcome = 'ok' | 'missing' | 'invalid';

export interface GraphqlWsOptions {
  httpServer: HttpServer;
  schema: GraphQLSchema;
  services: GraphqlServices;
  limits: OperationLimits;
  introspection: boolean;
  /** The websocket path. @default '/graphql' */
  path?: string;
  /** Parsed and validated documents kept for reuse, by size (see documentCache.ts); 0: none. */
  documentCacheBytes: number;
  /** Largest message, in bytes (a classify mutation may carry images). */
  maxPayloadBytes: number;
  /** Checks `connection_init` payloads; absent = auth off. Must not throw (a throw counts as invalid). */
  authenticate?: (connectionParams: Readonly<Record<string, unknown>>) => AuthOutcome;
  /** The API key a `connection_init` payload carries, handed to each operation's context. */
  apiKeyOf?: (connectionParams: Readonly<Record<string, unknown>>) => string | undefined;
  /** Whether a browser `Origin` other than the server's own may connect. */
  isAllowedOrigin: (origin: string) => boolean;
  /** Server ping interval, in ms; a client that misses a pong is dropped. @default 12000 */
  keepAliveMs?: number;
}

export interface GraphqlWs {
  /** Open websocket connections. */
  connections(): number;
  /** Closes every connection (1001 Going away) and stops accepting new ones. Idempotent. */
  dispose(): Promise<void>;
}

/** Same host as the request, or allowed by configuration; requests without Origin are not browsers. */
function originAllowed(request: IncomingMessage, isAllowedOrigin: (origin: string) => boolean): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    if (new URL(origin).host === request.headers.host) return true;
  } catch {
    return false;
  }
  return isAllowedOrigin(origin);
}

function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** Message types only a server sends; graphql-ws throws on receiving one. */
const SERVER_ONLY_TYPES: ReadonlySet<unknown> = new Set<unknown>([MessageType.ConnectionAck, MessageType.Next, MessageType.Error]);

function isServerOnlyMessage(data: unknown): boolean {
  const text = String(data);
  // Cheap test first: most messages are subscribe messages, some of them megabytes of images.
  if (!text.includes('"connection_ack"') && !text.includes('"next"') && !text.includes('"error"')) return false;
  try {
    const message: unknown = JSON.parse(text);
    return typeof message === 'object' && message !== null && SERVER_ONLY_TYPES.has((message as { type?: unknown }).type);
  } catch {
    return false;
  }
}

/**
 * Closes two gaps of graphql-ws's `ws` adapter before it sees the socket (issue 5): a client sending a
 * server-only message (connection_ack, next, error) is a bad request (4400), where the adapter would close
 * with 4500 and print a stack trace; and socket errors (a frame over the size limit, invalid UTF-8), which
 * `ws` has already answered with 1009/1007, are logged here rather than printed to the console.
 */
function guardSocket(socket: WebSocket, logger: Logger): void {
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
  socket.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event === 'error') {
      logger.debug({ err: args[0] }, 'websocket protocol error');
      return true;
    }
    if (event === 'message' && isServerOnlyMessage(args[0])) {
      socket.close(CloseCode.BadRequest, 'Invalid message received');
      return true;
    }
    return emit(event, ...args);
  }) as WebSocket['emit'];
}

export function startGraphqlWs(options: GraphqlWsOptions): GraphqlWs {
  const { schema, services, limits, introspection, authenticate } = options;
  const logger = services.logger.child({ component: 'graphql-ws' });
  const path = options.path ?? '/graphql';
  const documents = validatedDocuments({ schema, rules: allValidationRules(limits, introspection), maxBytes: options.documentCacheBytes });
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes });

  // Upgrades are routed by hand (noServer) so other paths and foreign origins are refused before any websocket exists.
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    try {
      const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
      if (pathname !== path) return refuseUpgrade(socket, 404, 'Not Found');
      if (!originAllowed(request, options.isAllowedOrigin)) return refuseUpgrade(socket, 403, 'Forbidden');
      wss.handleUpgrade(request, socket, head, (ws) => {
        guardSocket(ws, logger);
        wss.emit('connection', ws, request);
      });
    } catch (error) {
      logger.warn({ err: error }, 'websocket upgrade failed');
      socket.destroy();
    }
  };
  options.httpServer.on('upgrade', onUpgrade);

  const cleanup = useServer(
    {
      schema,
      // Internal messages never reach clients as close reasons.
      isProd: true,
      onConnect: (ctx) => {
        if (authenticate === undefined) return true;
        let outcome: AuthOutcome;
        try {
          outcome = authenticate(ctx.connectionParams ?? {});
        } catch (error) {
          logger.warn({ err: error }, 'websocket authentication threw');
          outcome = 'invalid';
        }
        if (outcome === 'ok') return true;
        if (outcome === 'missing') {
          // graphql-ws only knows 4403 for a refused connection_init; a missing key is 4401.
          ctx.extra.socket.close(CloseCode.Unauthorized, 'Unauthorized: API key required');
        }
        return false;
      },
      onSubscribe: (ctx, _id, payload): ExecutionArgs | readonly GraphQLError[] => {
        try {
          const validated = documents(payload.query);
          if (!validated.ok) {
            return validated.errors.map(
              (error) =>
                new GraphQLError(error.message, {
                  nodes: error.nodes ?? null,
                  extensions: { code: typeof error.extensions.code === 'string' ? error.extensions.code : LIMIT_ERROR_CODE },
                }),
            );
          }
          const { document } = validated;
          const variables = payload.variables ?? undefined;
          const operationName = payload.operationName ?? undefined;
          const tooComplex = complexityError(schema, document, variables, operationName, limits.maxComplexity);
          if (tooComplex !== null) return [tooComplex];
          return {
            schema,
            document,
            variableValues: variables,
            operationName,
            contextValue: createContext(services, `ws-${randomUUID()}`, options.apiKeyOf?.(ctx.connectionParams ?? {})),
          };
        } catch (error) {
          logger.error({ err: error }, 'preparing a websocket operation failed');
          return [new GraphQLError('Internal server error', { extensions: { code: ErrorCode.InternalServerError } })];
        }
      },
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (result.errors === undefined) return undefined;
        return { ...result, errors: result.errors.map((error) => formatGraphqlError(error.toJSON(), error, logger)) };
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((error) => formatGraphqlError(error.toJSON(), error, logger, LIMIT_ERROR_CODE)),
    },
    wss,
    options.keepAliveMs ?? 12_000,
  );

  let disposed: Promise<void> | null = null;
  return {
    connections: () => wss.clients.size,
    dispose: () => {
      disposed ??= (async () => {
        options.httpServer.off('upgrade', onUpgrade);
        await cleanup.dispose();
      })();
      return disposed;
    },
  };
}
