/**
 * What the GraphQL server refuses (issue 5, security and limits): API keys over HTTP and websocket,
 * query depth / aliases / complexity, CSRF, CORS, body size, introspection, masking, hostile sockets.
 */
import { getIntrospectionQuery } from 'graphql';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ClassifyDocument, JobUpdatedDocument, ModelsDocument } from '../generated/graphql.js';
import { gql, startTestServer, subscribe, tinyImages, waitFor } from '../utils/testServer.js';

const MODELS = '{ models { name } }';

/**
 * Opens a raw graphql-ws socket, sends the first message on open and the rest once the connection is
 * acknowledged (the protocol refuses subscribe messages before that), and resolves with how it closed.
 */
function rawSocket(
  url: string,
  messages: string[],
  headers: Record<string, string> = {},
): Promise<{ code: number; reason: string; received: string[] }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, 'graphql-transport-ws', { headers });
    const received: string[] = [];
    const [first, ...rest] = messages;
    socket.on('open', () => {
      if (first !== undefined) socket.send(first);
    });
    socket.on('message', (data) => {
      received.push(String(data));
      if (String(data).includes('"connection_ack"')) for (const message of rest) socket.send(message);
    });
    socket.on('close', (code, reason) => resolve({ code, reason: String(reason), received }));
    socket.on('error', reject);
    setTimeout(() => socket.close(), 1000);
  });
}

describe('API keys', () => {
  it('should require a key on /graphql and /api when API_KEYS is set, and leave /health open', async () => {
    const { url, graphqlUrl } = await startTestServer({ apiKeys: ['secret-1', 'secret-2'] });
    const none = await gql(graphqlUrl, MODELS);
    expect(none.status).toBe(401);
    expect(none.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const wrong = await gql(graphqlUrl, MODELS, {}, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errors?.[0]?.message).toMatch(/not valid/);
    expect((await gql(graphqlUrl, MODELS, {}, { authorization: 'Bearer secret-1' })).body.data).toBeTruthy();
    expect((await gql(graphqlUrl, MODELS, {}, { 'x-api-key': 'secret-2' })).body.data).toBeTruthy();

    const rest = await fetch(`${url}/api/models`);
    expect(rest.status).toBe(401);
    expect(((await rest.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    expect((await fetch(`${url}/api/models`, { headers: { 'x-api-key': 'secret-1' } })).status).toBe(200);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect((await fetch(`${url}/ready`)).status).toBe(200);
  });

  it('should close a websocket without a key with 4401 and with a wrong key with 4403', async () => {
    const { wsUrl } = await startTestServer({ apiKeys: ['secret-1'] });
    const init = (payload?: unknown): string =>
      JSON.stringify({ type: 'connection_init', ...(payload === undefined ? {} : { payload }) });
    expect((await rawSocket(wsUrl, [init()])).code).toBe(4401);
    expect((await rawSocket(wsUrl, [init({ apiKey: 'wrong' })])).code).toBe(4403);
    const ok = await subscribe(wsUrl, ModelsDocument, {}, { connectionParams: { apiKey: 'secret-1' } });
    expect(ok.messages[0]?.data?.models).toHaveLength(1);
    const bearer = await subscribe(
      wsUrl,
      ModelsDocument,
      {},
      { connectionParams: { Authorization: 'Bearer secret-1' } },
    );
    expect(bearer.messages[0]?.data?.models).toHaveLength(1);
  });

  it('should not ask for a key when API_KEYS is unset', async () => {
    const { graphqlUrl } = await startTestServer();
    expect((await gql(graphqlUrl, MODELS)).status).toBe(200);
  });
});

describe('operation limits', () => {
  const deep = '{ jobs { nodes { result { images { top { label } } } } } }';

  it('should refuse a query deeper than MAX_QUERY_DEPTH over HTTP and websocket', async () => {
    const { graphqlUrl, wsUrl } = await startTestServer({ maxQueryDepth: 4 });
    const http = await gql(graphqlUrl, deep);
    expect(http.status).toBe(400);
    expect(http.body.errors?.[0]).toMatchObject({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    expect(http.body.errors?.[0]?.message).toMatch(/maximum query depth of 4 \(MAX_QUERY_DEPTH\)/);
    const ws = await subscribe(wsUrl, 'subscription { jobUpdated(id: "x") { result { images { top { label } } } } }');
    const errors = ws.error as { message: string; extensions?: { code?: string } }[];
    expect(errors[0]?.message).toMatch(/MAX_QUERY_DEPTH/);
    expect(errors[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('should refuse more aliases than MAX_ALIASES', async () => {
    const { graphqlUrl, wsUrl } = await startTestServer({ maxAliases: 3 });
    const aliased = `{ ${Array.from({ length: 4 }, (_, i) => `a${i}: models { name }`).join(' ')} }`;
    const http = await gql(graphqlUrl, aliased);
    expect(http.status).toBe(400);
    expect(http.body.errors?.[0]?.message).toMatch(/4 aliases, more than the maximum of 3 \(MAX_ALIASES\)/);
    expect(http.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const ws = await subscribe(wsUrl, aliased);
    expect((ws.error as { message: string }[])[0]?.message).toMatch(/MAX_ALIASES/);
  });

  it('should refuse an operation over MAX_QUERY_COMPLEXITY, counting variables', async () => {
    const { graphqlUrl, wsUrl } = await startTestServer();
    const query =
      'query($first: Int, $k: Int) { jobs(first: $first) { nodes { result { images { top(k: $k) { label probability } } } } } }';
    expect((await gql(graphqlUrl, query, { first: 5, k: 3 })).status).toBe(200);
    const refused = await gql(graphqlUrl, query, { first: 100, k: 1000 });
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(refused.body.errors?.[0]?.message).toMatch(
      /complexity \d+ exceeds the maximum of 5000 \(MAX_QUERY_COMPLEXITY\)/,
    );
    const ws = await subscribe(wsUrl, query, { first: 100, k: 1000 });
    expect((ws.error as { message: string }[])[0]?.message).toMatch(/MAX_QUERY_COMPLEXITY/);
  });

  it('should let the standard introspection query through by default, and refuse it when INTROSPECTION is off', async () => {
    const open = await startTestServer();
    const allowed = await gql(open.graphqlUrl, getIntrospectionQuery());
    expect(allowed.status).toBe(200);
    expect(allowed.body.errors).toBeUndefined();
    const closed = await startTestServer({ introspection: false });
    const refused = await gql(closed.graphqlUrl, getIntrospectionQuery());
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const ws = await subscribe(closed.wsUrl, '{ __schema { queryType { name } } }');
    expect(ws.error).toBeDefined();
  });
});

describe('HTTP protections', () => {
  it('should block CSRF-prone requests (Apollo csrfPrevention)', async () => {
    const { graphqlUrl } = await startTestServer();
    const simpleGet = await fetch(`${graphqlUrl}?query=${encodeURIComponent(MODELS)}`);
    expect(simpleGet.status).toBe(400);
    expect(await simpleGet.text()).toMatch(/CSRF/);
    const textPlain = await fetch(graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ query: MODELS }),
    });
    expect(textPlain.status).toBe(400);
    const preflighted = await fetch(`${graphqlUrl}?query=${encodeURIComponent(MODELS)}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    expect(preflighted.status).toBe(200);
  });

  it('should send no CORS headers for other origins by default, and allow configured ones', async () => {
    const closed = await startTestServer();
    const denied = await fetch(closed.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ query: MODELS }),
    });
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();
    const open = await startTestServer({ corsOrigins: ['https://app.example'] });
    const preflight = await fetch(open.graphqlUrl, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const other = await fetch(open.graphqlUrl, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('should refuse a body over MAX_BODY_BYTES with 413 and malformed JSON with 400, as JSON', async () => {
    const { graphqlUrl } = await startTestServer({ maxImageBytes: 1024, maxBodyBytes: 70_000 });
    const big = await gql(graphqlUrl, ClassifyDocument, { input: { image: 'A'.repeat(80_000), classes: ['a'] } });
    expect(big.status).toBe(413);
    expect(big.body.errors?.[0]?.extensions?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(big.body.errors?.[0]?.message).toMatch(/MAX_BODY_BYTES/);
    const malformed = await fetch(graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": ',
    });
    expect(malformed.status).toBe(400);
    expect(
      ((await malformed.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code,
    ).toBe('BAD_REQUEST');
  });

  it('should never send stack traces or file paths in errors', async () => {
    const { graphqlUrl } = await startTestServer();
    const responses = await Promise.all([
      gql(graphqlUrl, '{ nope }'),
      gql(graphqlUrl, '{ models { name '),
      gql(graphqlUrl, ClassifyDocument, { input: { image: 'data:image/png;base64,iVBORw0KGgo=', classes: ['a'] } }),
      gql(graphqlUrl, 'query($id: ID!) { job(id: $id) { id } }', { id: { not: 'an id' } } as never),
    ]);
    for (const response of responses) {
      const text = JSON.stringify(response.body);
      expect(response.body.errors?.length).toBeGreaterThan(0);
      expect(text).not.toMatch(/stacktrace|\/work\/|node_modules|\.ts:\d+|\.js:\d+/);
      for (const error of response.body.errors ?? []) expect(typeof error.extensions?.code).toBe('string');
    }
  });
});

describe('hostile websocket clients', () => {
  it('should survive malformed graphql-ws messages and keep serving others', async () => {
    const { wsUrl, graphqlUrl } = await startTestServer();
    const garbage = await rawSocket(wsUrl, ['this is not json']);
    expect(garbage.code).toBe(4400);
    const badType = await rawSocket(wsUrl, [
      JSON.stringify({ type: 'connection_init' }),
      JSON.stringify({ type: 'subscribe', id: 1, payload: 'x' }),
    ]);
    expect(badType.code).toBe(4400);
    const beforeAck = await rawSocket(wsUrl, [
      JSON.stringify({ type: 'subscribe', id: '1', payload: { query: MODELS } }),
    ]);
    expect(beforeAck.code).toBe(4401);
    const syntax = await rawSocket(wsUrl, [
      JSON.stringify({ type: 'connection_init' }),
      JSON.stringify({ type: 'subscribe', id: '1', payload: { query: '{ models { ' } }),
    ]);
    const error = syntax.received
      .map((m) => JSON.parse(m) as { type: string; payload?: { extensions?: { code?: string } }[] })
      .find((m) => m.type === 'error');
    expect(error?.payload?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    // The server still works for everyone else.
    const [image] = await tinyImages();
    const job = await gql(graphqlUrl, ClassifyDocument, { input: { image, classes: ['a', 'b'] } });
    const id = job.body.data?.classify.id ?? '';
    const result = await subscribe(wsUrl, JobUpdatedDocument, { id });
    expect(result.messages.at(-1)?.data?.jobUpdated.status).toBe('COMPLETE');
  });

  it('should refuse websocket upgrades from foreign origins and on other paths', async () => {
    const { wsUrl, port } = await startTestServer();
    await expect(rawSocket(wsUrl, [], { origin: 'https://evil.example' })).rejects.toThrow(/403/);
    await expect(rawSocket(`ws://127.0.0.1:${port}/elsewhere`, [])).rejects.toThrow(/404/);
    const sameOrigin = await rawSocket(wsUrl, [JSON.stringify({ type: 'connection_init' })], {
      origin: `http://127.0.0.1:${port}`,
    });
    expect(sameOrigin.received.map((m) => (JSON.parse(m) as { type: string }).type)).toContain('connection_ack');
  });

  it('should release a subscription when its client disconnects mid-way', async () => {
    const serial = await startTestServer({ maxConcurrentJobs: 1 });
    const [image] = await tinyImages();
    const { distinctImages } = await import('../utils/testServer.js');
    await gql(serial.graphqlUrl, ClassifyDocument, {
      input: { images: await distinctImages(64, 9000), classes: ['a', 'b'] },
    });
    const job = await gql(serial.graphqlUrl, ClassifyDocument, { input: { image, classes: ['a', 'b'] } });
    const socket = new WebSocket(serial.wsUrl, 'graphql-transport-ws');
    await new Promise<void>((resolve) => {
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
      socket.on('message', (data) => {
        if (!String(data).includes('"connection_ack"')) return;
        socket.send(
          JSON.stringify({
            type: 'subscribe',
            id: '1',
            payload: {
              query: 'subscription($id: ID!) { jobUpdated(id: $id) { status } }',
              variables: { id: job.body.data?.classify.id },
            },
          }),
        );
      });
      socket.on('message', (data) => {
        if (String(data).includes('jobUpdated')) resolve();
      });
    });
    expect(serial.server.jobs.stats().watchers).toBe(1);
    socket.terminate();
    await waitFor(() => (serial.server.jobs.stats().watchers === 0 ? true : undefined), 5000);
  });
});
