/**
 * Separation between API keys, through a real server (in memory, the tiny model) with two keys and an admin key:
 * every job route (GraphQL job, jobs, jobUpdated, cancelJob, similarities; the FES REST job routes) answers another
 * key's job exactly like an unknown id, and only the owner and the admin see it. Then a fair share of the queue per
 * key, and a search of the logs, /metrics and the stored jobs for the keys.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from '../../src/roles/index.js';
import { OPEN_CALLER } from '../../src/jobs/caller.js';
import { gql, subscribe, testConfig, tinyImages, wsClient, type GqlResponse } from '../utils/testServer.js';

const KEY_A = `key-a-${randomBytes(16).toString('hex')}`;
const KEY_B = `key-b-${randomBytes(16).toString('hex')}`;
const ADMIN = `key-admin-${randomBytes(16).toString('hex')}`;
const ALL_KEYS = [KEY_A, KEY_B, ADMIN];

const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id status } }';
const EMBED_TEXTS = 'mutation($input: EmbedTextsInput!) { embedTexts(input: $input) { id status } }';
const JOB = 'query($id: ID!) { job(id: $id) { id status classes } }';
const JOBS = 'query { jobs(first: 100) { nodes { id } } }';
const CANCEL = 'mutation($id: ID!) { cancelJob(id: $id) { id status } }';
const SIMILARITIES =
  'query($q: ID!, $c: ID!) { similarities(queries: $q, candidates: $c, k: 1) { matches { index } } }';
const WATCH = 'subscription($id: ID!) { jobUpdated(id: $id) { id status } }';
const REST_JOB = '/api/tasks/zero-shot-image-classification/jobs';

const logLines: string[] = [];
let server: Server;
let url: string;
let wsUrl: string;
let images: string[];

function as(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

async function call<R>(key: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlResponse<R>> {
  return gql<R>(url, query, variables, as(key));
}

async function created(key: string, query: string, input: Record<string, unknown>): Promise<string> {
  const { body } = await call<Record<string, { id: string }>>(key, query, { input });
  const id = Object.values(body.data ?? {})[0]?.id;
  if (id === undefined) throw new Error(`refused: ${JSON.stringify(body.errors)}`);
  return id;
}

async function completed(key: string, id: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = (await call<{ job: { status: string } | null }>(key, JOB, { id })).body.data?.job?.status;
    if (status === 'COMPLETE') return;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${status} after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function restJob(key: string, id: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${url}${REST_JOB}/${id}`, { headers: as(key) });
  return { status: response.status, body: await response.json() };
}

/** An answer with the id replaced, to compare answers about two different ids. */
function withoutId(answer: unknown, id: string): string {
  return JSON.stringify(answer).replaceAll(id, '<id>');
}

async function start(overrides: Parameters<typeof testConfig>[0] = {}): Promise<Server> {
  const logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });
  const started = createServer(testConfig({ apiKeys: [KEY_A, KEY_B], adminApiKeys: [ADMIN], ...overrides }), {
    logger,
  });
  const address = await started.start();
  url = address.url;
  wsUrl = `ws://127.0.0.1:${address.port}/graphql`;
  return started;
}

beforeAll(async () => {
  images = await tinyImages();
  server = await start();
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('separation between API keys', () => {
  let jobOfA: string;
  const unknownId = randomUUID();

  beforeAll(async () => {
    jobOfA = await created(KEY_A, CLASSIFY, { image: images[0], classes: ['a private query', 'another'] });
    await completed(KEY_A, jobOfA);
  });

  it("should answer A's job to B exactly like an unknown id on job, cancelJob and jobUpdated", async () => {
    for (const query of [JOB, CANCEL]) {
      const other = await call(KEY_B, query, { id: jobOfA });
      const unknown = await call(KEY_B, query, { id: unknownId });
      expect(other.status).toBe(unknown.status);
      expect(other.body).toEqual({ data: query === JOB ? { job: null } : { cancelJob: null } });
      expect(other.body).toEqual(unknown.body);
    }
    const other = await subscribe(wsUrl, WATCH, { id: jobOfA }, { connectionParams: { apiKey: KEY_B } });
    const unknown = await subscribe(wsUrl, WATCH, { id: unknownId }, { connectionParams: { apiKey: KEY_B } });
    expect(other.messages[0]?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(withoutId(other, jobOfA)).toBe(withoutId(unknown, unknownId));
  });

  it("should show A's job to A and to the admin on job and jobUpdated", async () => {
    for (const key of [KEY_A, ADMIN]) {
      expect((await call<{ job: { id: string } }>(key, JOB, { id: jobOfA })).body.data?.job?.id).toBe(jobOfA);
      const watched = await subscribe<{ jobUpdated: { status: string } }>(
        wsUrl,
        WATCH,
        { id: jobOfA },
        { connectionParams: { apiKey: key } },
      );
      expect(watched.messages.map((message) => message.data?.jobUpdated.status)).toEqual(['COMPLETE']);
    }
  });

  it("should answer A's job to B on the FES REST routes exactly like an unknown id, and to A and the admin", async () => {
    const other = await restJob(KEY_B, jobOfA);
    const unknown = await restJob(KEY_B, unknownId);
    expect(other.status).toBe(404);
    expect(withoutId(other, jobOfA)).toBe(withoutId(unknown, unknownId));
    for (const key of [KEY_A, ADMIN])
      expect(await restJob(key, jobOfA)).toMatchObject({ status: 200, body: { status: 'complete' } });
  });

  it("should not let B cancel A's job, and let the admin", async () => {
    // A large prompt count keeps the job busy long enough to be cancelled while unfinished.
    const running = await created(KEY_A, EMBED_TEXTS, { texts: Array.from({ length: 200 }, (_, i) => `text ${i}`) });
    expect((await call(KEY_B, CANCEL, { id: running })).body).toEqual({ data: { cancelJob: null } });
    const state = (await call<{ job: { status: string } }>(KEY_A, JOB, { id: running })).body.data?.job?.status;
    expect(state).not.toBe('CANCELLED');
    const byAdmin = await call<{ cancelJob: { id: string } | null }>(ADMIN, CANCEL, { id: running });
    expect(byAdmin.body.data?.cancelJob?.id).toBe(running);
  });

  it('should list only the caller’s own jobs in `jobs`, and every job for the admin', async () => {
    const jobOfB = await created(KEY_B, CLASSIFY, { image: images[1], classes: ['x', 'y'] });
    const ids = async (key: string): Promise<string[]> =>
      ((await call<{ jobs: { nodes: { id: string }[] } }>(key, JOBS)).body.data?.jobs.nodes ?? []).map(
        (node) => node.id,
      );
    const [ofA, ofB, ofAdmin] = await Promise.all([ids(KEY_A), ids(KEY_B), ids(ADMIN)]);
    expect(ofA).toContain(jobOfA);
    expect(ofA).not.toContain(jobOfB);
    expect(ofB).toEqual([jobOfB]);
    expect(ofAdmin).toEqual(expect.arrayContaining([jobOfA, jobOfB]));
  });

  it("should refuse to rank A's vectors for B exactly like an unknown job, and rank them for A and the admin", async () => {
    const textsOfA = await created(KEY_A, EMBED_TEXTS, { texts: ['a cat'] });
    const textsOfB = await created(KEY_B, EMBED_TEXTS, { texts: ['a dog'] });
    await Promise.all([completed(KEY_A, textsOfA), completed(KEY_B, textsOfB)]);
    const other = await call(KEY_B, SIMILARITIES, { q: textsOfB, c: textsOfA });
    const unknown = await call(KEY_B, SIMILARITIES, { q: textsOfB, c: unknownId });
    expect(other.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(withoutId(other.body, textsOfA)).toBe(withoutId(unknown.body, unknownId));
    for (const key of [KEY_A, ADMIN])
      expect((await call(key, SIMILARITIES, { q: textsOfA, c: textsOfA })).body.errors).toBeUndefined();
  });

  it('should act as the key a websocket connected with for every subscription on it', async () => {
    const jobOfB = await created(KEY_B, CLASSIFY, { image: images[2], classes: ['p', 'q'] });
    await completed(KEY_B, jobOfB);
    const client = wsClient(wsUrl, { apiKey: KEY_A });
    try {
      const run = (
        id: string,
      ): Promise<{ data?: unknown; errors?: readonly { extensions?: Record<string, unknown> }[] }[]> =>
        new Promise((resolve, reject) => {
          const seen: { data?: unknown; errors?: readonly { extensions?: Record<string, unknown> }[] }[] = [];
          client.subscribe(
            { query: WATCH, variables: { id } },
            { next: (message) => void seen.push(message), error: reject, complete: () => resolve(seen) },
          );
        });
      const [own, others] = await Promise.all([run(jobOfA), run(jobOfB)]);
      expect(own[0]?.data).toEqual({ jobUpdated: { id: jobOfA, status: 'COMPLETE' } });
      expect(others[0]?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    } finally {
      await client.dispose();
    }
  });
});

describe('a fair share of the queue per key', () => {
  it('should refuse a key over its share with OVERLOADED (429 and Retry-After on REST) while another key is admitted and completes', async () => {
    await server.stop();
    // One job per key at a time; the queue itself holds more. Slow batching keeps A's job unfinished meanwhile.
    server = await start({ maxQueuedJobs: 8, maxQueuedJobsPerKey: 1, maxBatchWaitMs: 3_000 });
    const first = await created(KEY_A, CLASSIFY, { image: images[0], classes: ['a', 'b'] });
    const refused = await call(KEY_A, CLASSIFY, { input: { image: images[1], classes: ['a', 'b'] } });
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('OVERLOADED');
    expect(refused.body.errors?.[0]?.message).toMatch(/MAX_QUEUED_JOBS_PER_KEY=1/);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^clip_jobs_in_progress_by_key\{key="[0-9a-f]{12}"\} 1$/m);
    const rest = await fetch(`${url}/api/tasks/zero-shot-image-classification/${server.clip!.defaultModelName}/jobs`, {
      method: 'POST',
      headers: { ...as(KEY_A), 'content-type': 'application/json' },
      body: JSON.stringify({ image: images[1], classes: ['a', 'b'] }),
    });
    expect(rest.status).toBe(429);
    expect(rest.headers.get('retry-after')).not.toBeNull();
    const ofB = await created(KEY_B, CLASSIFY, { image: images[2], classes: ['a', 'b'] });
    await Promise.all([completed(KEY_A, first), completed(KEY_B, ofB)]);
    await expect.poll(() => server.jobs.stats().owners).toEqual({});
  });

  it('should release every share: no count left after 1,000 jobs per key', async () => {
    await server.stop();
    server = await start({ maxQueuedJobsPerKey: 16 });
    // Each key floods from 8 clients, which retry after OVERLOADED, until 1,000 of its jobs were admitted.
    const submitAll = async (key: string): Promise<number> => {
      let admitted = 0;
      let refused = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (admitted < 1_000) {
            const { body } = await call<{ embedTexts: { id: string } }>(key, EMBED_TEXTS, {
              input: { texts: [`t${admitted % 50}`] },
            });
            const code = body.errors?.[0]?.extensions?.code;
            if (code === undefined) admitted += 1;
            else if (code === 'OVERLOADED') refused += 1;
            else throw new Error(JSON.stringify(body.errors));
            if (code !== undefined) await new Promise((resolve) => setTimeout(resolve, 5));
          }
        }),
      );
      return refused;
    };
    await Promise.all([submitAll(KEY_A), submitAll(KEY_B)]);
    await expect
      .poll(() => server.jobs.stats(), { timeout: 60_000, interval: 100 })
      .toMatchObject({ queued: 0, running: 0, owners: {} });
  }, 300_000);
});

describe('where keys appear', () => {
  it('should write no key to the logs, /metrics or the stored jobs', async () => {
    await created(KEY_A, CLASSIFY, { image: images[0], classes: ['a', 'b'] });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const stored = JSON.stringify((await server.jobs.list(OPEN_CALLER, { first: 100 })).jobs);
    expect(stored).toMatch(/"owner":"[0-9a-f]{64}"/);
    // Job log lines name the key by the label /metrics uses.
    expect(logLines.join('\n')).toMatch(/"key":"[0-9a-f]{12}"/);
    for (const key of ALL_KEYS) {
      expect(logLines.join('\n')).not.toContain(key);
      expect(metrics).not.toContain(key);
      expect(stored).not.toContain(key);
    }
  });
});
