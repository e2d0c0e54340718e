/**
 * Security (issue 5), across GraphQL over HTTP, graphql-ws and REST: CSRF prevention, CORS (off for other
 * origins unless configured), introspection and GraphiQL switches, operation limits (including the
 * fragment tricks that get around naive ones), API keys everywhere they apply, and what responses do
 * not reveal. `npm audit` needs the registry, so it is run by hand (see docs/deployment.md), not here.
 */
import { OPEN_CALLER } from '../../../src/jobs/caller.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { distinctImages, gql } from '../../utils/testServer.js';
import { settledJob, startRecordedServer, type RecordedServer } from './support.js';

const MODELS = '{ models { name } }';
const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id } }';
const REST_JOB = '/api/tasks/zero-shot-image-classification/tiny/jobs';

interface WsResult {
  code: number | null;
  messages: { type: string; id?: string; payload?: unknown }[];
  upgradeStatus?: number;
}

/** A raw graphql-ws exchange: connection_init (with `payload`), then `subscribe` messages once acknowledged. */
function wsExchange(
  url: string,
  init: unknown,
  subscribes: unknown[] = [],
  headers: Record<string, string> = {},
): Promise<WsResult> {
  return new Promise((resolve) => {
    const result: WsResult = { code: null, messages: [] };
    const socket = new WebSocket(url, 'graphql-transport-ws', { headers });
    const timer = setTimeout(() => socket.close(1000), 1_500);
    socket.on('open', () =>
      socket.send(JSON.stringify({ type: 'connection_init', ...(init === undefined ? {} : { payload: init }) })),
    );
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as WsResult['messages'][number];
      result.messages.push(message);
      if (message.type === 'connection_ack')
        subscribes.forEach((payload, i) => socket.send(JSON.stringify({ type: 'subscribe', id: String(i), payload })));
      if ((message.type === 'complete' || message.type === 'error') && Number(message.id) === subscribes.length - 1)
        socket.close(1000);
    });
    socket.on('unexpected-response', (_request, response) => {
      result.upgradeStatus = response.statusCode;
      clearTimeout(timer);
      resolve(result);
    });
    socket.on('close', (code) => {
      result.code = code;
      clearTimeout(timer);
      resolve(result);
    });
    socket.on('error', () => {});
  });
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

function firstCode(body: Record<string, unknown>): string | undefined {
  return (body.errors as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code;
}

describe('CSRF prevention', () => {
  it('should refuse GraphQL requests a browser could send cross-site without a preflight, and accept the others', async () => {
    const { graphqlUrl } = await startRecordedServer();
    const query = encodeURIComponent(MODELS);
    const refused = [
      await fetch(`${graphqlUrl}?query=${query}`),
      await fetch(graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ query: MODELS }),
      }),
      await fetch(graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `query=${query}`,
      }),
      await fetch(graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'multipart/form-data; boundary=b' },
        body: `--b\r\nContent-Disposition: form-data; name="query"\r\n\r\n${MODELS}\r\n--b--\r\n`,
      }),
    ];
    for (const response of refused) {
      expect(response.status).toBe(400);
      const body = await json(response);
      expect(firstCode(body)).toBe('BAD_REQUEST');
      expect(JSON.stringify(body)).toMatch(/CSRF/);
    }
    expect(
      (await fetch(`${graphqlUrl}?query=${query}`, { headers: { 'apollo-require-preflight': 'true' } })).status,
    ).toBe(200);
    expect(
      (await fetch(`${graphqlUrl}?query=${query}`, { headers: { 'x-apollo-operation-name': 'Models' } })).status,
    ).toBe(200);
    expect((await gql(graphqlUrl, MODELS)).status).toBe(200);
  });

  it('should create no REST job from a cross-site "simple" request (text/plain or form body)', async () => {
    const server = await startRecordedServer();
    const [image] = await distinctImages(1, 120_000);
    const before = server.server.jobs.stats().totals.queued;
    const simple = [
      await fetch(`${server.url}${REST_JOB}`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ image, classes: ['a', 'b'] }),
      }),
      await fetch(`${server.url}${REST_JOB}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `image=${encodeURIComponent(image ?? '')}&classes=a`,
      }),
      await fetch(`${server.url}${REST_JOB}`, { method: 'POST', body: JSON.stringify({ image, classes: ['a', 'b'] }) }),
    ];
    for (const response of simple) {
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      expect(((await json(response)).error as { code: string }).code).toBe('BAD_USER_INPUT');
    }
    expect(server.server.jobs.stats().totals.queued).toBe(before);
  });
});

describe('CORS', () => {
  const foreign = 'https://evil.example';
  const preflight = (url: string, origin: string): Promise<Response> =>
    fetch(url, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, authorization',
      },
    });

  it('should send no CORS headers to other origins by default, on any route, and refuse their websockets', async () => {
    const server = await startRecordedServer();
    const reads = [
      await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: foreign },
        body: JSON.stringify({ query: MODELS }),
      }),
      await fetch(`${server.url}/api/models`, { headers: { origin: foreign } }),
      await fetch(`${server.url}/health`, { headers: { origin: foreign } }),
      await preflight(server.graphqlUrl, foreign),
      await preflight(`${server.url}${REST_JOB}`, foreign),
    ];
    for (const response of reads) {
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    }
    expect((await wsExchange(server.wsUrl, {}, [], { origin: foreign })).upgradeStatus).toBe(403);
    // The server's own origin (GraphiQL) may open a websocket.
    const own = await wsExchange(server.wsUrl, {}, [{ query: MODELS }], { origin: server.url });
    expect(own.messages.some((m) => m.type === 'next')).toBe(true);
  });

  it('should allow exactly the configured origins (CORS_ORIGINS) on HTTP and websocket, and any with *', async () => {
    const allowed = 'https://app.example';
    const server = await startRecordedServer({ corsOrigins: [allowed] });
    for (const url of [server.graphqlUrl, `${server.url}${REST_JOB}`]) {
      const ok = await preflight(url, allowed);
      expect(ok.headers.get('access-control-allow-origin')).toBe(allowed);
      expect(ok.headers.get('access-control-allow-headers')).toMatch(/authorization/);
      expect(ok.headers.get('access-control-allow-headers')).toMatch(/x-api-key/);
      expect((await preflight(url, foreign)).headers.get('access-control-allow-origin')).toBeNull();
    }
    const read = await fetch(`${server.url}/api/models`, { headers: { origin: allowed } });
    expect(read.headers.get('access-control-allow-origin')).toBe(allowed);
    expect(
      (await wsExchange(server.wsUrl, {}, [{ query: MODELS }], { origin: allowed })).messages.some(
        (m) => m.type === 'next',
      ),
    ).toBe(true);
    expect((await wsExchange(server.wsUrl, {}, [], { origin: foreign })).upgradeStatus).toBe(403);

    const open = await startRecordedServer({ corsOrigins: ['*'] });
    expect((await preflight(open.graphqlUrl, foreign)).headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('introspection and GraphiQL', () => {
  const typeQuery = '{ __type(name: "Job") { fields { name } } }';

  it('should allow both by default (for exploration)', async () => {
    const server = await startRecordedServer();
    expect((await gql(server.graphqlUrl, '{ __schema { queryType { name } } }')).body.data).toBeTruthy();
    expect((await gql(server.graphqlUrl, typeQuery)).body.data).toBeTruthy();
    const page = await fetch(server.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('should refuse introspection over HTTP and websocket, and serve no GraphiQL page, when turned off', async () => {
    const server = await startRecordedServer({ introspection: false, graphiql: false });
    for (const query of ['{ __schema { queryType { name } } }', typeQuery]) {
      const response = await gql(server.graphqlUrl, query);
      expect(response.status).toBe(400);
      expect(firstCode(response.body as Record<string, unknown>)).toBe('GRAPHQL_VALIDATION_FAILED');
      const ws = await wsExchange(server.wsUrl, {}, [{ query }]);
      const error = ws.messages.find((m) => m.type === 'error');
      expect((error?.payload as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code).toBe(
        'GRAPHQL_VALIDATION_FAILED',
      );
    }
    // __typename is not introspection: clients (Apollo Client) add it everywhere.
    expect((await gql(server.graphqlUrl, '{ __typename models { __typename name } }')).body.data).toBeTruthy();
    const page = await fetch(server.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(page.status).toBeGreaterThanOrEqual(400);
    expect(page.headers.get('content-type')).not.toMatch(/text\/html/);
    expect((await fetch(`${server.url}/graphiql/assets/graphiql.css`)).status).toBe(404);
  });
});

describe('operation limits', () => {
  let server: RecordedServer;
  const refusedFor = async (query: string, variables: Record<string, unknown> = {}): Promise<string> => {
    const response = await gql(server.graphqlUrl, query, variables);
    expect(response.status).toBe(400);
    expect(firstCode(response.body as Record<string, unknown>)).toBe('GRAPHQL_VALIDATION_FAILED');
    return response.body.errors?.[0]?.message ?? '';
  };

  it('should count depth through fragments, aliases inside fragments, and cost through variables', async () => {
    server = await startRecordedServer({ maxQueryDepth: 5, maxAliases: 3 });
    // Depth 6 spread over two fragments, the second one also used at depth 2 (where it fits).
    const deepByFragments =
      'query { ...A models { name } } fragment A on Query { jobs { nodes { ...B } } } fragment B on Job { result { images { top { label } } } }';
    expect(await refusedFor(deepByFragments)).toMatch(/maximum query depth of 5/);
    expect(
      (await gql(server.graphqlUrl, 'query { jobs { nodes { ...B } } } fragment B on Job { id status }')).status,
    ).toBe(200);
    const aliasedInFragments =
      'query { ...A ...B } fragment A on Query { a: models { name } b: models { name } } fragment B on Query { c: models { name } d: models { name } }';
    expect(await refusedFor(aliasedInFragments)).toMatch(/4 aliases, more than the maximum of 3/);
    // Cost: shallow enough for the default depth limit, too expensive through its variables.
    server = await startRecordedServer();
    expect(
      await refusedFor('query($k: Int) { jobs(first: 100) { nodes { result { images { top(k: $k) { label } } } } } }', {
        k: 10_000,
      }),
    ).toMatch(/MAX_QUERY_COMPLEXITY/);
  });

  it('should answer a document whose fragments double 40 times at once, over HTTP and websocket', async () => {
    server ??= await startRecordedServer();
    const fragments = Array.from(
      { length: 40 },
      (_, i) => `fragment F${i} on Query { ${i === 39 ? 'models { name }' : `...F${i + 1} ...F${i + 1}`} }`,
    ).join(' ');
    const query = `query { ...F0 } ${fragments}`;
    const started = performance.now();
    const http = await gql(server.graphqlUrl, query);
    const ws = await wsExchange(server.wsUrl, {}, [{ query }]);
    // Refused (its cost cannot be counted) or answered: either way in milliseconds, not 2^40 steps.
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(http.status).toBeLessThan(500);
    expect(ws.messages.some((m) => m.type === 'error' || m.type === 'next')).toBe(true);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('should refuse a subscription sent over HTTP with BAD_REQUEST rather than fail inside', async () => {
    server ??= await startRecordedServer();
    const response = await gql(server.graphqlUrl, 'subscription { jobUpdated(id: "x") { id } }');
    expect(response.status).toBe(400);
    expect(firstCode(response.body as Record<string, unknown>)).toBe('BAD_REQUEST');
    expect(response.body.errors?.[0]?.message).toMatch(/websocket/);
    expect(server.errorLogs()).toEqual([]);
  });
});

describe('costly but valid jobs', () => {
  it('should keep answering other clients while a job of 1,000 long prompts is tokenized', async () => {
    const server = await startRecordedServer();
    const [image, other] = await distinctImages(2, 122_000);
    const letters = (seed: number, length: number): string =>
      Array.from({ length }, (_, i) => String.fromCharCode(97 + ((i * 7 + seed * 13 + ((i * seed) % 11)) % 26))).join(
        '',
      );
    // 200 classes of 1000 letters × 5 templates of ~1000 characters: 1,000 prompts of ~2,000 characters.
    const classes = Array.from(
      { length: 200 },
      (_, i) => `${String(i).padStart(3, '0')} ${letters(i, server.config.maxClassLength - 4)}`,
    );
    const promptTemplates = Array.from(
      { length: 5 },
      (_, i) => `${letters(1000 + i, 495)} {} ${letters(2000 + i, 495)}`,
    );
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const started = performance.now();
    const big = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
      input: { image, classes, config: { promptTemplates } },
    });
    expect(big.body.errors).toBeUndefined();
    const small = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
      input: { image: other, classes: ['a', 'b'] },
    });
    const health: number[] = [];
    const bigJob = settledJob(server.server, big.body.data?.classify.id ?? '', 60_000);
    const unfinished = async (): Promise<boolean> =>
      ['queued', 'running'].includes(
        (await server.server.jobs.get(OPEN_CALLER, big.body.data?.classify.id ?? ''))?.status ?? '',
      );
    while ((await unfinished()) && performance.now() - started < 50_000) {
      const asked = performance.now();
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      health.push(performance.now() - asked);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect((await bigJob).status).toBe('complete');
    expect((await settledJob(server.server, small.body.data?.classify.id ?? '')).status).toBe('complete');
    delay.disable();
    const maxDelayMs = delay.max / 1e6;
    console.log(
      `1,000 prompts of ~2,000 characters: done in ${Math.round(performance.now() - started)} ms; event loop delay max ${maxDelayMs.toFixed(0)} ms; /health answered ${health.length} times, slowest ${Math.round(Math.max(...health))} ms`,
    );
    // Before prompts were tokenized one per event-loop turn, the loop stalled for the whole job (seconds).
    expect(maxDelayMs).toBeLessThan(500);
    expect(health.length).toBeGreaterThan(0);
  });
});

describe('API keys', () => {
  const KEYS = ['k-1-0123456789abcdef', 'k-2-fedcba9876543210'];

  it('should require a valid key on every GraphQL and REST route (Bearer or x-api-key), and nowhere else', async () => {
    const server = await startRecordedServer({ apiKeys: KEYS });
    const [image] = await distinctImages(1, 121_000);
    const routes: [string, RequestInit][] = [
      [
        server.graphqlUrl,
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: MODELS }) },
      ],
      [`${server.graphqlUrl}?query=${encodeURIComponent(MODELS)}`, { headers: { 'apollo-require-preflight': 'true' } }],
      [`${server.url}/api/models`, {}],
      [`${server.url}/api/tasks`, {}],
      [
        `${server.url}${REST_JOB}`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ image, classes: ['a', 'b'] }),
        },
      ],
      [`${server.url}/api/tasks/zero-shot-image-classification/jobs/x`, {}],
      [`${server.url}/api/nowhere`, {}],
    ];
    const wrongKeys: Record<string, string>[] = [
      {},
      { authorization: 'Bearer nope' },
      { authorization: `Bearer ${KEYS[0]?.slice(0, -1) ?? ''}` },
      { authorization: `Bearer ${KEYS[0] ?? ''}x` },
      { authorization: `Bearer ${KEYS[0]?.toUpperCase() ?? ''}` },
      { authorization: `Basic ${Buffer.from(`user:${KEYS[0] ?? ''}`).toString('base64')}` },
      { 'x-api-key': '' },
      { 'x-api-key': 'nope' },
    ];
    for (const [url, init] of routes) {
      for (const headers of wrongKeys) {
        const response = await fetch(url, {
          ...init,
          headers: { ...(init.headers as Record<string, string> | undefined), ...headers },
        });
        expect(response.status, `${url} ${JSON.stringify(headers)}`).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe('Bearer');
        const body = await json(response);
        expect(url.includes('/api/') ? (body.error as { code: string }).code : firstCode(body)).toBe('UNAUTHENTICATED');
      }
      // A key in the query string is not a key (it would end up in logs and browser history).
      const inQuery = await fetch(`${url}${url.includes('?') ? '&' : '?'}apiKey=${KEYS[0] ?? ''}`, init);
      expect(inQuery.status).toBe(401);
    }
    const goodKeys: Record<string, string>[] = [
      { authorization: `Bearer ${KEYS[0] ?? ''}` },
      { 'x-api-key': KEYS[1] ?? '' },
      { authorization: `bearer   ${KEYS[1] ?? ''}  ` },
    ];
    for (const headers of goodKeys) {
      const submitted = await fetch(`${server.url}${REST_JOB}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ image, classes: ['a', 'b'] }),
      });
      expect(submitted.status).toBe(200);
      expect((await settledJob(server.server, ((await json(submitted)) as { id: string }).id)).status).toBe('complete');
      expect((await gql(server.graphqlUrl, MODELS, {}, headers)).body.data).toBeTruthy();
    }
    // Open: liveness, readiness, metrics and the GraphiQL page (its operations carry the key).
    for (const path of ['/health', '/ready', '/metrics'])
      expect((await fetch(`${server.url}${path}`)).status).toBe(200);
    expect((await fetch(server.graphqlUrl, { headers: { accept: 'text/html' } })).status).toBe(200);
  });

  it('should check the key in the websocket connection_init: 4401 without one, 4403 with a wrong one', async () => {
    const server = await startRecordedServer({ apiKeys: KEYS });
    expect((await wsExchange(server.wsUrl, undefined)).code).toBe(4401);
    expect((await wsExchange(server.wsUrl, {})).code).toBe(4401);
    expect((await wsExchange(server.wsUrl, { apiKey: 'nope' })).code).toBe(4403);
    expect((await wsExchange(server.wsUrl, { apiKey: 12345 })).code).toBe(4401);
    expect((await wsExchange(server.wsUrl, { Authorization: `Bearer ${KEYS[0]?.slice(1) ?? ''}` })).code).toBe(4403);
    // An HTTP header on the upgrade is not enough: the key belongs in connection_init.
    expect((await wsExchange(server.wsUrl, {}, [], { authorization: `Bearer ${KEYS[0] ?? ''}` })).code).toBe(4401);
    for (const init of [{ apiKey: KEYS[0] }, { Authorization: `Bearer ${KEYS[1] ?? ''}` }, { 'x-api-key': KEYS[0] }]) {
      const ok = await wsExchange(server.wsUrl, init, [{ query: MODELS }]);
      expect(ok.messages.some((m) => m.type === 'next')).toBe(true);
    }
  });
});

describe('what responses reveal', () => {
  it('should not advertise the framework nor echo unsafe request ids', async () => {
    const server = await startRecordedServer();
    const response = await fetch(`${server.url}/health`, { headers: { 'x-request-id': '<script>alert(1)</script>' } });
    expect(response.headers.get('x-powered-by')).toBeNull();
    expect(response.headers.get('x-request-id')).not.toMatch(/script/);
    expect(
      (await fetch(`${server.url}/health`, { headers: { 'x-request-id': 'trace-42' } })).headers.get('x-request-id'),
    ).toBe('trace-42');
  });

  it('should answer unknown routes and malformed requests with JSON that names no file, module or stack frame', async () => {
    const server = await startRecordedServer();
    const port = new URL(server.url).port;
    const responses = await Promise.all([
      fetch(`${server.url}/nowhere`),
      fetch(`${server.url}/api/tasks/zero-shot-image-classification/jobs/%E0%A4%A`),
      fetch(`${server.url}/api/${'x'.repeat(20_000)}`),
      fetch(server.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' }),
      gql(server.graphqlUrl, CLASSIFY, { input: { image: 'data:image/png;base64,iVBORw0KGgo=', classes: ['a'] } }).then(
        (r) => new Response(JSON.stringify(r.body), { status: r.status }),
      ),
    ]);
    for (const response of responses) {
      expect(response.status).toBeLessThan(500);
      const text = await response.text();
      const body = JSON.parse(text) as { error?: { code?: string }; errors?: { extensions?: { code?: string } }[] };
      // A refusal with a code: REST-style error.code, or GraphQL errors (HTTP 200 for a resolver's refusal).
      expect(body.error?.code ?? body.errors?.[0]?.extensions?.code).toMatch(/^[A-Z_]+$/);
      expect(text).not.toMatch(/\/work\/|\/home\/|node_modules|\.ts:\d|\.js:\d|\n\s+at /);
    }
    expect(port).not.toBe('');
  });
});
