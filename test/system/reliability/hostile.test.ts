/**
 * Hostile requests inside the documented limits, each against a real server:
 * a huge or token-dense GraphQL document (HTTP POST, GET, websocket), hundreds of distinct large documents (the
 * heap must return to its level), a multipart request without a boundary, slow headers and bodies, a large
 * websocket frame before connection_init with API keys set, and requests naming a host the server does not answer
 * to (DNS rebinding) on every route, the websocket and a worker.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createWorkerServer } from '../../../src/roles/index.js';
import { silentLogger } from '../../../src/logger.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../../utils/redisServer.js';
import { testConfig } from '../../utils/testServer.js';
import { forceGc, mib, MiB, startRecordedServer } from './support.js';

const MODELS = '{ models { name } }';
const API_KEY = 'hostile-test-key-1';

interface RawResponse {
  status: number;
  body: string;
}

/** One HTTP request with any headers (fetch will not send a foreign `Host`). */
function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: options.method ?? 'GET', headers: options.headers ?? {} },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

function codeOf(body: string): string | undefined {
  const parsed = JSON.parse(body) as { error?: { code?: string }; errors?: { extensions?: { code?: string } }[] };
  return parsed.error?.code ?? parsed.errors?.[0]?.extensions?.code;
}

function messageOf(body: string): string {
  const parsed = JSON.parse(body) as { error?: { message?: string }; errors?: { message?: string }[] };
  return parsed.error?.message ?? parsed.errors?.[0]?.message ?? '';
}

/**
 * Writes `text` on a raw TCP connection and collects what comes back until the server closes it, or until
 * `answered(received)` holds. Gives up after `giveUpMs` (destroying the socket and resolving with
 * `closedByServer: false`), so a server that never answers fails the test instead of hanging it.
 */
function rawExchange(
  port: number,
  text: string,
  giveUpMs: number,
  answered: (received: string) => boolean = () => false,
): Promise<{ received: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received, closedByServer: false });
    }, giveUpMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (!answered(received)) return;
      clearTimeout(timer);
      socket.destroy();
      resolve({ received, closedByServer: false });
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ received, closedByServer: true });
    });
    socket.write(text);
  });
}

interface WsOutcome {
  /** The close code, when the socket closed. */
  code?: number;
  reason?: string;
  /** The HTTP status, when the upgrade was refused. */
  upgradeStatus?: number;
  upgradeBody?: string;
  messages: { type: string; id?: string; payload?: unknown }[];
}

/** A raw graphql-ws exchange: sends `init` as it is, then `subscribe` messages once acknowledged; ends on close or the last answer. */
function wsExchange(
  url: string,
  init: string,
  subscribes: unknown[] = [],
  headers: Record<string, string> = {},
  giveUpMs = 20_000,
): Promise<WsOutcome> {
  return new Promise((resolve) => {
    const outcome: WsOutcome = { messages: [] };
    const socket = new WebSocket(url, 'graphql-transport-ws', { headers });
    const done = (): void => {
      clearTimeout(timer);
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      socket.terminate();
      done();
    }, giveUpMs);
    socket.on('open', () => socket.send(init));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as WsOutcome['messages'][number];
      outcome.messages.push(message);
      if (message.type === 'connection_ack')
        subscribes.forEach((payload, i) => socket.send(JSON.stringify({ type: 'subscribe', id: String(i), payload })));
      if ((message.type === 'complete' || message.type === 'error') && Number(message.id) === subscribes.length - 1)
        socket.close(1000);
    });
    socket.on('unexpected-response', (_request, response) => {
      outcome.upgradeStatus = response.statusCode;
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        outcome.upgradeBody = body;
        done();
      });
    });
    socket.on('close', (code, reason) => {
      outcome.code = code;
      outcome.reason = reason.toString();
      done();
    });
    socket.on('error', () => undefined);
  });
}

const init = (payload: unknown = {}): string => JSON.stringify({ type: 'connection_init', payload });

describe('bounded parsing', () => {
  it('should refuse a 2 MB document with BAD_REQUEST naming MAX_DOCUMENT_BYTES before parsing it, on HTTP and websocket', async () => {
    const server = await startRecordedServer();
    const huge = `{ models { ${'a '.repeat(1_000_000)}} }`;
    const body = JSON.stringify({ query: huge });
    // For scale: the same 2 MB as a variable of an ordinary query (the body alone costs this much to move and read).
    const padded = JSON.stringify({ query: MODELS, variables: { pad: 'a '.repeat(1_000_000) } });
    const postJson = (text: string): Promise<RawResponse> =>
      rawRequest(server.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
    expect((await postJson(padded)).status).toBe(200);
    let started = performance.now();
    expect((await postJson(padded)).status).toBe(200);
    const paddedMs = performance.now() - started;
    started = performance.now();
    const overHttp = await postJson(body);
    const httpMs = performance.now() - started;
    expect(overHttp.status).toBe(400);
    expect(codeOf(overHttp.body)).toBe('BAD_REQUEST');
    expect(messageOf(overHttp.body)).toMatch(/MAX_DOCUMENT_BYTES/);

    const wsStarted = performance.now();
    const overWs = await wsExchange(server.wsUrl, init(), [{ query: huge }]);
    const wsMs = performance.now() - wsStarted;
    const error = overWs.messages.find((m) => m.type === 'error');
    expect(error?.payload).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/MAX_DOCUMENT_BYTES/),
        extensions: { code: 'BAD_REQUEST' },
      }),
    ]);
    console.log(
      `bounded parsing: a 2 MB document refused in ${httpMs.toFixed(0)} ms over HTTP (an ordinary query with 2 MB of variables: ${paddedMs.toFixed(0)} ms), ` +
        `${wsMs.toFixed(0)} ms over a new websocket (round trips included)`,
    );
    expect((await rawRequest(`${server.url}/health`)).status).toBe(200);
    expect(server.errorLogs()).toEqual([]);
  });

  it('should stop parsing a dense document within the size limit at MAX_DOCUMENT_TOKENS, on POST, GET and websocket', async () => {
    const server = await startRecordedServer({ maxDocumentTokens: 1_000 });
    // 30 KB of repeated fields: valid (they merge), 6,000 tokens.
    const dense = `{ models { ${'name '.repeat(6_000)}} }`;
    const post = await rawRequest(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: dense }),
    });
    expect(post.status).toBe(400);
    expect(codeOf(post.body)).toBe('GRAPHQL_PARSE_FAILED');
    expect(messageOf(post.body)).toMatch(/more than 1000 tokens \(MAX_DOCUMENT_TOKENS\)/);

    const query = new URLSearchParams({ query: `{ models { ${'a '.repeat(2_000)}} }` });
    const get = await rawRequest(`${server.graphqlUrl}?${query.toString()}`, {
      headers: { 'apollo-require-preflight': '1' },
    });
    expect(get.status).toBe(400);
    expect(codeOf(get.body)).toBe('GRAPHQL_PARSE_FAILED');

    const overWs = await wsExchange(server.wsUrl, init(), [{ query: dense }]);
    const error = overWs.messages.find((m) => m.type === 'error');
    expect(error?.payload).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/MAX_DOCUMENT_TOKENS/),
        extensions: { code: 'GRAPHQL_PARSE_FAILED' },
      }),
    ]);

    // Ordinary documents are untouched.
    const ok = await rawRequest(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: MODELS }),
    });
    expect(ok.status).toBe(200);
    expect(server.errorLogs()).toEqual([]);
  });
});

describe('caches bounded by what they keep', () => {
  it('should return the heap to its level after 300 distinct ~500 KB documents over HTTP, and 100 over the websocket', async () => {
    // Documents this large are allowed here so they reach the caches; 4 MiB caches keep the bound sharp.
    const server = await startRecordedServer({
      maxDocumentBytes: 1024 * 1024,
      httpDocumentCacheBytes: 4 * MiB,
      wsDocumentCacheBytes: 4 * MiB,
    });
    const comment = `#${'x'.repeat(500_000)}\n`;
    const documentNumber = (i: number, via: string): string =>
      `query Q${via}${i}_${Math.random().toString(36).slice(2)} { models { name } }\n${comment}`;
    const viaHttp = async (i: number): Promise<void> => {
      const response = await rawRequest(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: documentNumber(i, 'h') }),
      });
      expect(response.status).toBe(200);
    };
    for (let i = 0; i < 5; i++) await viaHttp(i);
    forceGc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 300; i++) await viaHttp(i);
    const socket = await wsBatch(
      server.wsUrl,
      Array.from({ length: 100 }, (_, i) => documentNumber(i, 'w')),
    );
    expect(socket.answered).toBe(100);
    forceGc();
    const after = process.memoryUsage().heapUsed;
    console.log(
      `caches: heap after GC ${mib(before)} before, ${mib(after)} after 400 distinct 500 KB documents (growth ${mib(after - before)})`,
    );
    // Both caches full (8 MiB) and what the server itself allocates on the way; keeping the texts is 200 MB.
    expect(after - before).toBeLessThan(24 * MiB);
    expect(server.errorLogs()).toEqual([]);
  }, 240_000);
});

/** Sends each query as a subscribe on one graphql-ws connection, one after another; counts the completed ones. */
function wsBatch(url: string, queries: string[]): Promise<{ answered: number }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, 'graphql-transport-ws');
    let answered = 0;
    const send = (i: number): void =>
      socket.send(JSON.stringify({ type: 'subscribe', id: String(i), payload: { query: queries[i] } }));
    socket.on('open', () => socket.send(init()));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string; id?: string };
      if (message.type === 'connection_ack') return send(0);
      if (message.type === 'error') return reject(new Error(`subscribe ${message.id ?? '?'} refused: ${String(data)}`));
      if (message.type !== 'complete') return;
      answered += 1;
      if (answered < queries.length) return send(answered);
      socket.close(1000);
    });
    socket.on('close', () => resolve({ answered }));
    socket.on('error', reject);
  });
}

describe('every malformed request is answered', () => {
  it('should answer a multipart request without a usable boundary with 400 BAD_REQUEST at once', async () => {
    const server = await startRecordedServer();
    for (const contentType of [
      'multipart/form-data',
      'multipart/form-data; boundary=',
      'multipart/form-data; boundary=""',
    ]) {
      const started = performance.now();
      const response = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': contentType, 'apollo-require-preflight': '1' },
        body: '',
        // A server that never answers fails here rather than hanging the run.
        signal: AbortSignal.timeout(10_000),
      });
      expect(response.status, contentType).toBe(400);
      const body = await response.text();
      expect(codeOf(body)).toBe('BAD_REQUEST');
      expect(messageOf(body)).toMatch(/boundary/);
      console.log(
        `multipart ${JSON.stringify(contentType)}: answered ${response.status} in ${(performance.now() - started).toFixed(0)} ms`,
      );
    }
    expect(server.errorLogs()).toEqual([]);
  });

  it('should answer 408 and close the connection of a client that sends its headers or its body too slowly', async () => {
    const server = await startRecordedServer({ headersTimeoutMs: 500, requestTimeoutMs: 1_000 });
    const { port } = new URL(server.url);
    const headers = await rawExchange(Number(port), 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', 15_000);
    expect(headers.closedByServer).toBe(true);
    expect(headers.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(codeOf(headers.received.slice(headers.received.indexOf('\r\n\r\n') + 4))).toBe('BAD_USER_INPUT');

    const bodyStart = `POST /api/tasks/zero-shot-image-classification/tiny/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"image":`;
    const body = await rawExchange(Number(port), bodyStart, 15_000);
    expect(body.closedByServer).toBe(true);
    expect(body.received).toMatch(/^HTTP\/1\.1 408 /);
    expect((await rawRequest(`${server.url}/health`)).status).toBe(200);

    // The deadlines are for receiving a request: an open websocket outlives them.
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
    const messages: string[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data)).type as string));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(init());
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    socket.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { query: MODELS } }));
    await new Promise<void>((resolve) => socket.on('message', () => messages.includes('complete') && resolve()));
    expect(messages).toEqual(['connection_ack', 'next', 'complete']);
    socket.close(1000);
  });
});

describe('nothing large is parsed before authentication', () => {
  it('should close a websocket with 1009 after a few KiB before connection_init is accepted, without the heap growing', async () => {
    const server = await startRecordedServer({ apiKeys: [API_KEY] });
    // 8 MB of `{},` (2.7 million objects once parsed): what froze the server for seconds, at a seventh of the size.
    const hostile = `{"type":"connection_init","payload":{"x":[${'{},'.repeat(2_700_000)}{}]}}`;
    forceGc();
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5);
    const refused = await wsExchange(server.wsUrl, hostile);
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    console.log(
      `pre-auth: an 8 MB connection_init closed with ${refused.code ?? 'nothing'} (${refused.reason ?? ''}); heap ${mib(before)} → peak ${mib(peak)}`,
    );
    expect(refused.code).toBe(1009);
    expect(refused.reason).toMatch(/before connection_init/);
    // The test's own 8 MB string is in `before`; parsing it would add hundreds of MB.
    expect(peak - before).toBeLessThan(32 * MiB);

    // With the key, large messages are fine once acknowledged (here a subscribe of 100 KB).
    const large = `${MODELS}\n#${'x'.repeat(100_000)}`;
    const accepted = await wsExchange(server.wsUrl, init({ apiKey: API_KEY }), [{ query: large }]);
    expect(accepted.messages.map((m) => m.type)).toEqual(['connection_ack', 'next', 'complete']);
    expect((await rawRequest(`${server.url}/health`)).status).toBe(200);
    expect(server.errorLogs()).toEqual([]);
  });

  it('should answer 401 over HTTP before reading a body (GraphQL, multipart, REST)', async () => {
    const server = await startRecordedServer({ apiKeys: [API_KEY] });
    const { port } = new URL(server.url);
    // 50 MB announced, none of it sent: only an answer given before the body can arrive.
    const requests = [
      'POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n',
      'POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\nApollo-Require-Preflight: 1\r\nContent-Length: 50000000\r\n\r\n',
      'POST /api/tasks/zero-shot-image-classification/tiny/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n',
    ];
    for (const request of requests) {
      const { received } = await rawExchange(Number(port), request, 10_000, (text) => /\r\n\r\n\{.*\}$/s.test(text));
      expect(received, request).toMatch(/^HTTP\/1\.1 401 /);
      expect(codeOf(received.slice(received.indexOf('\r\n\r\n') + 4))).toBe('UNAUTHENTICATED');
    }
  });
});

describe('allowed hosts', () => {
  const foreign = 'evil.example:4000';

  it('should refuse another Host with 403 FORBIDDEN_HOST on every route and the websocket, and accept the loopback names', async () => {
    const server = await startRecordedServer();
    const { port } = new URL(server.url);
    const post = {
      method: 'POST',
      headers: { 'content-type': 'application/json', host: foreign, origin: `http://${foreign}` },
    };
    const refused = [
      await rawRequest(server.graphqlUrl, { ...post, body: JSON.stringify({ query: MODELS }) }),
      await rawRequest(`${server.url}/api/tasks/zero-shot-image-classification/tiny/jobs`, {
        ...post,
        body: JSON.stringify({ image: 'x', classes: ['a'] }),
      }),
      await rawRequest(`${server.url}/api/models`, { headers: { host: foreign } }),
      await rawRequest(`${server.url}/`, { headers: { host: foreign, accept: 'text/html' } }),
      await rawRequest(server.graphqlUrl, { headers: { host: foreign, accept: 'text/html' } }),
      await rawRequest(`${server.url}/health`, { headers: { host: foreign } }),
      await rawRequest(`${server.url}/metrics`, { headers: { host: foreign } }),
    ];
    for (const response of refused) {
      expect(response.status).toBe(403);
      expect(codeOf(response.body)).toBe('FORBIDDEN_HOST');
      expect(messageOf(response.body)).toMatch(/evil\.example.*ALLOWED_HOSTS/);
    }
    const ws = await wsExchange(server.wsUrl, init(), [{ query: MODELS }], {
      host: foreign,
      origin: `http://${foreign}`,
    });
    expect(ws.upgradeStatus).toBe(403);
    expect(codeOf(ws.upgradeBody ?? '{}')).toBe('FORBIDDEN_HOST');
    expect(server.server.jobs.stats().queued + server.server.jobs.stats().running).toBe(0);

    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST']) {
      expect((await rawRequest(`${server.url}/health`, { headers: { host } })).status, host).toBe(200);
    }
    const own = await wsExchange(server.wsUrl, init(), [{ query: MODELS }], { host: `localhost:${port}` });
    expect(own.messages.some((m) => m.type === 'next')).toBe(true);
  });

  it('should let in exactly the hosts ALLOWED_HOSTS lists, or any with *', async () => {
    const listed = await startRecordedServer({ allowedHosts: ['api.example'] });
    expect((await rawRequest(`${listed.url}/health`, { headers: { host: 'api.example:8443' } })).status).toBe(200);
    expect((await rawRequest(`${listed.url}/health`, { headers: { host: 'localhost' } })).status).toBe(403);
    const any = await startRecordedServer({ allowedHosts: 'any' });
    expect((await rawRequest(`${any.url}/health`, { headers: { host: foreign } })).status).toBe(200);
  });

  describe.skipIf(redisServerPath() === null)('on a worker', () => {
    let redis: RedisServer | undefined;
    afterAll(async () => {
      await redis?.dispose();
    });

    it("should hold a worker's /health, /ready and /metrics to the same rule", async () => {
      redis = await startRedisServer();
      const worker = createWorkerServer(
        testConfig({ role: 'worker', redisUrl: redis.url, redisKeyPrefix: 'hostile' }),
        { logger: silentLogger() },
      );
      try {
        const { url, port } = await worker.start();
        for (const path of ['/health', '/ready', '/metrics']) {
          const refused = await rawRequest(`${url}${path}`, { headers: { host: foreign } });
          expect(refused.status, path).toBe(403);
          expect(codeOf(refused.body)).toBe('FORBIDDEN_HOST');
          expect((await rawRequest(`${url}${path}`, { headers: { host: `localhost:${port}` } })).status, path).toBe(
            200,
          );
        }
      } finally {
        await worker.stop();
      }
    });
  });
});
