/**
 * GraphQL over websocket (graphql-ws protocol) on the HTTP server's `/graphql` path, with the same
 * schema, context, limits and error formatting as HTTP. Malformed protocol messages are graphql-ws's
 * business (it closes with 4400); everything this module adds is caught, so no client can crash it.
 *
 * Auth (when API keys are configured): `connection_init` carries `{ apiKey }` or
 * `{ Authorization: 'Bearer …' }`; a missing key closes the socket with 4401, a wrong one with 4403. The caller the
 * key belongs to is fixed for the connection's life: every operation on it acts as that caller.
 * Browsers are only let in from the server's own origin or a configured CORS origin, so a foreign page
 * cannot use a visitor's network position to reach the API (cross-site websocket hijacking); upgrades naming a
 * host the server does not answer to (ALLOWED_HOSTS) are refused, so neither can a page whose name resolves here.
 *
 * Before its connection_init is accepted a client may send only MAX_UNACKNOWLEDGED_BYTES, counted on the socket as
 * they arrive: without a key nobody gets a large message buffered or parsed.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { GraphQLError, type ExecutionArgs, type GraphQLSchema } from 'graphql';
import { CloseCode, MessageType } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { ErrorCode } from '../errors.js';
import { jsonShapeMessage, scanJsonShape, type JsonShapeLimits } from '../jsonShape.js';
import type { Caller } from '../jobs/index.js';
import type { Logger } from '../logger.js';
import { createContext, type GraphqlContext, type GraphqlServices } from './context.js';
import { validatedDocuments } from './documentCache.js';
import type { DocumentLimits } from './documentLimits.js';
import { formatGraphqlError, graphqlErrorBody } from './formatError.js';
import { allValidationRules, complexityError, LIMIT_ERROR_CODE, type OperationLimits } from './limits.js';

/** The outcome of checking a connection's credentials: the caller, or why there is none. */
export type AuthOutcome = { outcome: 'ok'; caller: Caller } | { outcome: 'missing' } | { outcome: 'invalid' };

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
  /** Size and token bounds of a document (MAX_DOCUMENT_BYTES, MAX_DOCUMENT_TOKENS). */
  documentLimits: DocumentLimits;
  /** Largest message, in bytes (a classify mutation may carry images). */
  maxPayloadBytes: number;
  /** How much structure a message may have (MAX_JSON_DEPTH, MAX_JSON_VALUES), checked before graphql-ws parses it. */
  jsonLimits: JsonShapeLimits;
  /** Checks `connection_init` payloads (with auth off: the open caller for anyone). Must not throw (a throw counts as invalid). */
  authenticate: (connectionParams: Readonly<Record<string, unknown>>) => AuthOutcome;
  /** Whether a browser `Origin` other than the server's own may connect. */
  isAllowedOrigin: (origin: string) => boolean;
  /** Whether the upgrade's `Host` header names this server (ALLOWED_HOSTS); must not throw. */
  isAllowedHost: (hostHeader: string | undefined) => boolean;
  /** The 403 message for a host that is not allowed. */
  foreignHostMessage: (hostHeader: string) => string;
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

function refuseUpgrade(
  socket: Duplex,
  status: number,
  reason: string,
  error?: { code: string; message: string },
): void {
  if (error === undefined) {
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    return;
  }
  const body = JSON.stringify(graphqlErrorBody(error.message, error.code));
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * Most bytes a client may send, frames included, before its connection_init is accepted. A connection_init with
 * a key is a few hundred bytes; without this bound, frames up to MAX_BODY_BYTES would be buffered and parsed as
 * JSON before the key is looked at (a 57 MB one of empty objects holds the event loop for seconds).
 */
const MAX_UNACKNOWLEDGED_BYTES = 8 * 1024;

/** WebSocket close code for a message over a size limit (RFC 6455 §7.4.1). */
const MESSAGE_TOO_BIG = 1009;

/** Sockets whose connection_init was accepted: their messages may be as large as maxPayloadBytes. */
const acknowledged = new WeakSet<WebSocket>();
/** Sockets refused for sending too much before that: what they still send is dropped unread. */
const overflowed = new WeakSet<WebSocket>();

/**
 * Counts what arrives on the socket until the connection is acknowledged. Over MAX_UNACKNOWLEDGED_BYTES the socket
 * is closed with 1009, and `ws`'s frame parser gets no more data: the rest of an oversized frame is read and dropped.
 */
function limitUnacknowledgedBytes(ws: WebSocket, socket: Duplex, logger: Logger): void {
  let received = 0;
  const count = (chunk: Buffer): void => {
    if (acknowledged.has(ws)) {
      socket.removeListener('data', count);
      return;
    }
    received += chunk.length;
    if (received <= MAX_UNACKNOWLEDGED_BYTES) return;
    socket.removeListener('data', count);
    overflowed.add(ws);
    logger.debug({ received }, 'websocket sent too much before connection_init was accepted');
    ws.close(MESSAGE_TOO_BIG, `At most ${MAX_UNACKNOWLEDGED_BYTES} bytes before connection_init is accepted`);
    // `ws` gets this chunk (listeners run in order), nothing after it: the data listener left is `ws`'s parser.
    socket.removeAllListeners('data');
    socket.resume();
  };
  // Ahead of `ws`'s own listener, so the chunk that crosses the limit is counted before it can complete a message.
  socket.prependListener('data', count);
}

/** Message types only a server sends; graphql-ws throws on receiving one. */
const SERVER_ONLY_TYPES: ReadonlySet<unknown> = new Set<unknown>([
  MessageType.ConnectionAck,
  MessageType.Next,
  MessageType.Error,
]);

function isServerOnlyMessage(data: unknown): boolean {
  const text = String(data);
  // Cheap test first: most messages are subscribe messages, some of them megabytes of images.
  if (!text.includes('"connection_ack"') && !text.includes('"next"') && !text.includes('"error"')) return false;
  try {
    const message: unknown = JSON.parse(text);
    return (
      typeof message === 'object' && message !== null && SERVER_ONLY_TYPES.has((message as { type?: unknown }).type)
    );
  } catch {
    return false;
  }
}

/** A message as `ws` delivers it (a Buffer, or fragments), as one Buffer. */
function messageBytes(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data as Buffer[]);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(String(data));
}

/**
 * Closes gaps of graphql-ws's `ws` adapter before it sees the socket: a client sending a
 * server-only message (connection_ack, next, error) is a bad request (4400), where the adapter would close
 * with 4500 and print a stack trace; socket errors (a frame over the size limit, invalid UTF-8), which
 * `ws` has already answered with 1009/1007, are logged here rather than printed to the console; and a message
 * over the JSON structure limits is a bad request (4400) before it is parsed.
 */
function guardSocket(socket: WebSocket, logger: Logger, jsonLimits: JsonShapeLimits): void {
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
  socket.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event === 'error') {
      logger.debug({ err: args[0] }, 'websocket protocol error');
      return true;
    }
    if (event === 'message' && overflowed.has(socket)) return true;
    // As HTTP bodies: a message of millions of tiny values would hold the event loop in graphql-ws's JSON.parse.
    const refusal = event === 'message' ? scanJsonShape(messageBytes(args[0]), jsonLimits) : null;
    if (refusal !== null) {
      socket.close(CloseCode.BadRequest, jsonShapeMessage(refusal, jsonLimits, 'Message'));
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
  const documents = validatedDocuments({
    schema,
    rules: allValidationRules(limits, introspection),
    limits: options.documentLimits,
    maxBytes: options.documentCacheBytes,
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes });
  // The caller each connection authenticated as, by graphql-ws's per-connection context.
  const callers = new WeakMap<object, Caller>();

  // Upgrades are routed by hand (noServer) so other paths and foreign origins are refused before any websocket exists.
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    try {
      const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
      const host = request.headers.host;
      if (!options.isAllowedHost(host)) {
        return refuseUpgrade(socket, 403, 'Forbidden', {
          code: ErrorCode.ForbiddenHost,
          message: options.foreignHostMessage(host ?? ''),
        });
      }
      if (pathname !== path) return refuseUpgrade(socket, 404, 'Not Found');
      if (!originAllowed(request, options.isAllowedOrigin)) return refuseUpgrade(socket, 403, 'Forbidden');
      wss.handleUpgrade(request, socket, head, (ws) => {
        guardSocket(ws, logger, options.jsonLimits);
        limitUnacknowledgedBytes(ws, socket, logger);
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
        let authentication: AuthOutcome;
        try {
          authentication = authenticate(ctx.connectionParams ?? {});
        } catch (error) {
          logger.warn({ err: error }, 'websocket authentication threw');
          authentication = { outcome: 'invalid' };
        }
        if (authentication.outcome === 'ok') {
          acknowledged.add(ctx.extra.socket);
          callers.set(ctx, authentication.caller);
          return true;
        }
        if (authentication.outcome === 'missing') {
          // graphql-ws only knows 4403 for a refused connection_init; a missing key is 4401.
          ctx.extra.socket.close(CloseCode.Unauthorized, 'Unauthorized: API key required');
        }
        return false;
      },
      onSubscribe: (ctx, _id, payload): ExecutionArgs | readonly GraphQLError[] => {
        try {
          const caller = callers.get(ctx);
          // graphql-ws runs no operation before an accepted connection_init; this is a guard, not a path.
          if (caller === undefined) throw new Error('websocket operation before authentication');
          const validated = documents(payload.query);
          if (!validated.ok) {
            return validated.errors.map(
              (error) =>
                new GraphQLError(error.message, {
                  nodes: error.nodes ?? null,
                  extensions: {
                    code: typeof error.extensions.code === 'string' ? error.extensions.code : LIMIT_ERROR_CODE,
                  },
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
            contextValue: createContext(services, `ws-${randomUUID()}`, caller),
          };
        } catch (error) {
          logger.error({ err: error }, 'preparing a websocket operation failed');
          return [new GraphQLError('Internal server error', { extensions: { code: ErrorCode.InternalServerError } })];
        }
      },
      onNext: (_ctx, _id, _payload, args, result) => {
        // Over MAX_RESPONSE_BYTES the message is the refusal alone, as over HTTP (responseBudget.ts).
        const refusal = (args.contextValue as GraphqlContext).response.refusal;
        if (refusal !== null) return graphqlErrorBody(refusal.message, refusal.code);
        if (result.errors === undefined) return undefined;
        return { ...result, errors: result.errors.map((error) => formatGraphqlError(error.toJSON(), error, logger)) };
      },
      onError: (_ctx, _id, _payload, errors) =>
        errors.map((error) => formatGraphqlError(error.toJSON(), error, logger, LIMIT_ERROR_CODE)),
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
