/**
 * Real servers for integration tests: `startTestServer` runs the whole server on 127.0.0.1, port 0,
 * with the tiny random-weight model (test/setup/models.ts generates it) and fast batching. Every server
 * a test file starts is stopped in that file's afterAll, even when the test forgot to.
 * Helpers: `gql` (HTTP), `subscribe` (graphql-ws client), `tinyImages` (small generated images).
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode, type GraphQLFormattedError } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import sharp from 'sharp';
import { afterAll } from 'vitest';
import WebSocket from 'ws';
import { finalizeConfig, loadConfig, type Config } from '../../src/config.js';
import { createServer, type Server } from '../../src/roles/index.js';
import { createLogger, silentLogger } from '../../src/logger.js';
import { TINY_MODEL_DIR } from './testModel.js';

export interface TestServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** `http://127.0.0.1:<port>/graphql`. */
  graphqlUrl: string;
  /** `ws://127.0.0.1:<port>/graphql`. */
  wsUrl: string;
  port: number;
  config: Config;
  server: Server;
  /** Stops the server (idempotent); also done automatically in afterAll. */
  stop(): Promise<void>;
}

const running = new Set<TestServer>();

afterAll(async () => {
  await Promise.all([...running].map((server) => server.stop()));
});

/** The configuration startTestServer uses: defaults, the tiny model, fast batching, quiet logs, then `overrides`. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return finalizeConfig({
    ...loadConfig([], {}),
    port: 0,
    host: '127.0.0.1',
    clipModel: TINY_MODEL_DIR,
    clipModels: [],
    hfHubOffline: true,
    downloadProgress: false,
    maxBatchWaitMs: 2,
    ortIntraOpThreads: 1,
    preprocessConcurrency: 1,
    drainTimeoutMs: 5_000,
    logLevel: 'silent',
    ...overrides,
  });
}

/** Starts a real server and resolves once the tiny model is ready. Set TEST_LOG_LEVEL=debug to see its logs. */
export async function startTestServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  const config = testConfig(overrides);
  const level = process.env.TEST_LOG_LEVEL;
  const logger = level === undefined ? silentLogger() : createLogger(level as Config['logLevel']);
  const server = createServer(config, { logger });
  const handle: TestServer = {
    url: '',
    graphqlUrl: '',
    wsUrl: '',
    port: 0,
    config,
    server,
    stop: async () => {
      running.delete(handle);
      await server.stop();
    },
  };
  running.add(handle);
  const { url, port } = await server.start();
  handle.url = url;
  handle.graphqlUrl = `${url}/graphql`;
  handle.wsUrl = `ws://127.0.0.1:${port}/graphql`;
  handle.port = port;
  return handle;
}

export interface GqlResponse<R> {
  status: number;
  body: { data?: R | null; errors?: GraphQLFormattedError[] };
  headers: Headers;
}

function source(query: string | DocumentNode): string {
  return typeof query === 'string' ? query : print(query);
}

/**
 * POSTs one operation. `url` is the server URL or its /graphql endpoint. Typed when `query` is a
 * generated document (test/generated).
 */
export async function gql<R = Record<string, unknown>, V = Record<string, unknown>>(
  url: string,
  query: string | TypedDocumentNode<R, V>,
  variables?: V,
  headers: Record<string, string> = {},
): Promise<GqlResponse<R>> {
  const endpoint = new URL(url).pathname === '/' ? new URL('/graphql', url).toString() : url;
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: source(query), variables: variables ?? {} }),
  });
  const text = await response.text();
  let body: GqlResponse<R>['body'];
  try {
    body = JSON.parse(text) as GqlResponse<R>['body'];
  } catch {
    throw new Error(`expected a JSON answer from ${endpoint}, got ${response.status}: ${text.slice(0, 200)}`);
  }
  return { status: response.status, body, headers: response.headers };
}

export interface SubscriptionResult<R> {
  /** Every `next` payload, in arrival order. */
  messages: { data?: R | null; errors?: readonly GraphQLFormattedError[] }[];
  /** Set when the server sent an `error` message or the socket closed abnormally. */
  error?: unknown;
  /** True when the server completed the subscription. */
  completed: boolean;
}

export interface SubscribeOptions {
  connectionParams?: Record<string, unknown>;
  /** Give up (and dispose) after this long, in ms. @default 20000 */
  timeoutMs?: number;
  /** Called on each message (e.g. to trigger the next step of a test). */
  onMessage?: (message: { data?: unknown; errors?: readonly GraphQLFormattedError[] }) => void;
}

/** Creates a graphql-ws client that does not retry (tests want failures to surface). */
export function wsClient(wsUrl: string, connectionParams?: Record<string, unknown>): Client {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    ...(connectionParams === undefined ? {} : { connectionParams }),
  });
}

/** Runs one subscription to its end over a fresh graphql-ws client and collects what arrives. */
export async function subscribe<R = Record<string, unknown>, V = Record<string, unknown>>(
  wsUrl: string,
  query: string | TypedDocumentNode<R, V>,
  variables?: V,
  options: SubscribeOptions = {},
): Promise<SubscriptionResult<R>> {
  const client = wsClient(wsUrl, options.connectionParams);
  const result: SubscriptionResult<R> = { messages: [], completed: false };
  try {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        result.error = new Error(`subscription timed out after ${options.timeoutMs ?? 20_000} ms`);
        resolve();
      }, options.timeoutMs ?? 20_000);
      client.subscribe<R>(
        { query: source(query), variables: variables ?? {} },
        {
          next: (message) => {
            result.messages.push(message);
            options.onMessage?.(message);
          },
          error: (error) => {
            result.error = error;
            clearTimeout(timer);
            resolve();
          },
          complete: () => {
            result.completed = true;
            clearTimeout(timer);
            resolve();
          },
        },
      );
    });
  } finally {
    await client.dispose();
  }
  return result;
}

/** Small generated images as data URLs: a PNG, a JPEG and a WebP, each a few hundred bytes. */
export async function tinyImages(): Promise<string[]> {
  const width = 24;
  const height = 16;
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const offset = (y * width + x) * 3;
      pixels[offset] = (x * 10) % 256;
      pixels[offset + 1] = (y * 15) % 256;
      pixels[offset + 2] = 128;
    }
  }
  const raw = { raw: { width, height, channels: 3 as const } };
  const [png, jpeg, webp] = await Promise.all([
    sharp(pixels, raw).png().toBuffer(),
    sharp(pixels, raw).jpeg().toBuffer(),
    sharp(pixels, raw).webp().toBuffer(),
  ]);
  return [
    `data:image/png;base64,${png.toString('base64')}`,
    `data:image/jpeg;base64,${jpeg.toString('base64')}`,
    `data:image/webp;base64,${webp.toString('base64')}`,
  ];
}

/** `count` different PNG data URLs, `size` px square (distinct content, so no embedding cache hits between them). */
export async function distinctImages(count: number, offset = 0, size = 32): Promise<string[]> {
  const width = size;
  const height = size;
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const seed = index + offset;
      const pixels = Buffer.alloc(width * height * 3);
      for (let i = 0; i < pixels.length; i += 1) pixels[i] = (i * 31 + seed * 97 + ((i * seed) % 13) * 7) % 256;
      const png = await sharp(pixels, { raw: { width, height, channels: 3 } })
        .png()
        .toBuffer();
      return `data:image/png;base64,${png.toString('base64')}`;
    }),
  );
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
