/**
 * The Node HTTP server every role listens with: the request deadlines (HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS), a
 * JSON answer to requests Node cannot parse, listening with an error that names the address, and closing.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../config.js';
import { ErrorCode } from '../errors.js';

export interface ServerAddress {
  /** `http://host:port`. */
  url: string;
  port: number;
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

/** The URL a listening address is reached at: every interface is shown as the loopback address. */
function formatUrl(host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
}

/** Listens on HOST:PORT; rejects naming the address when it cannot (in use, not permitted). */
export async function listen(server: http.Server, config: Pick<Config, 'host' | 'port'>): Promise<ServerAddress> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      server.off('listening', onListening);
      reject(new Error(`Cannot listen on ${config.host}:${config.port}: ${error.message}`, { cause: error }));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(config.port, config.host);
  });
  const port = (server.address() as AddressInfo).port;
  return { url: formatUrl(config.host, port), port };
}

/**
 * Stops listening and ends the connections still open (the API's Apollo drain has closed its server already;
 * what is left here answers health, readiness and metrics). Resolves once the server is closed.
 */
export async function closeHttpServer(server: http.Server): Promise<void> {
  if (!server.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
