/**
 * Separation between API keys across a cluster: redis-server, 2 APIs (ROLE=api) and a worker (ROLE=worker), as
 * processes, with two keys and an admin key. A key's share of the queue is counted cluster-wide (both APIs admit
 * against it); a job created on API 1 is invisible to another key on API 2, visible to its owner and the admin there;
 * and no key is found in Redis (keys and values) or in any process's logs.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../../src/jobs/redis/keys.js';
import { startProcessServer, type ProcessServer } from '../../utils/processServer.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../../utils/redisServer.js';
import { subscribe } from '../../utils/testServer.js';

const REDIS = redisServerPath();
const KEYS = new RedisKeys('privacy-test');
if (REDIS === null)
  console.log('skipping the cluster privacy test: redis-server is not installed (apt-get install redis-server)');

const KEY_A = `key-a-${randomBytes(16).toString('hex')}`;
const KEY_B = `key-b-${randomBytes(16).toString('hex')}`;
const ADMIN = `key-admin-${randomBytes(16).toString('hex')}`;

const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id status } }';
const JOB = 'query($id: ID!) { job(id: $id) { id status } }';
const JOBS = 'query { jobs(first: 100) { nodes { id } } }';
const CANCEL = 'mutation($id: ID!) { cancelJob(id: $id) { id status } }';
const WATCH = 'subscription($id: ID!) { jobUpdated(id: $id) { id status } }';
const REST_JOB = '/api/tasks/zero-shot-image-classification/jobs';

let redis: RedisServer;
let env: Record<string, string>;
let api1: ProcessServer;
let api2: ProcessServer;
let worker: ProcessServer | undefined;
let image: string;

interface Answer {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] };
}

async function call(
  server: ProcessServer,
  key: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<Answer> {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

async function classify(server: ProcessServer, key: string): Promise<Answer> {
  return call(server, key, CLASSIFY, { input: { image, classes: ['a cat', 'a dog'] } });
}

function idOf(answer: Answer): string {
  const id = (answer.body.data?.classify as { id?: string } | undefined)?.id;
  if (id === undefined) throw new Error(`classify refused: ${JSON.stringify(answer.body)}`);
  return id;
}

async function statusOf(server: ProcessServer, key: string, id: string): Promise<string | undefined> {
  return ((await call(server, key, JOB, { id })).body.data?.job as { status?: string } | null | undefined)?.status;
}

async function restJob(server: ProcessServer, key: string, id: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server.url}${REST_JOB}/${id}`, { headers: { 'x-api-key': key } });
  return { status: response.status, body: await response.json() };
}

function withoutId(answer: unknown, id: string): string {
  return JSON.stringify(answer).replaceAll(id, '<id>');
}

/** Every key of the deployment with its value, as text (binary values as latin1), to search for API keys. */
async function dumpRedis(): Promise<string> {
  const client = new Redis(redis.url);
  try {
    const parts: string[] = [];
    for (const key of await client.keys('*')) {
      const type = await client.type(key);
      let value: unknown;
      if (type === 'string') value = (await client.getBuffer(key))?.toString('latin1');
      else if (type === 'hash') value = await client.hgetall(key);
      else if (type === 'list') value = (await client.lrangeBuffer(key, 0, -1)).map((item) => item.toString('latin1'));
      else if (type === 'set') value = await client.smembers(key);
      else if (type === 'zset') value = await client.zrange(key, '0', '-1', 'WITHSCORES');
      else if (type === 'stream') value = await client.xrange(key, '-', '+');
      parts.push(`${key} ${type} ${JSON.stringify(value)}`);
    }
    return parts.join('\n');
  } finally {
    client.disconnect();
  }
}

describe.skipIf(REDIS === null)('separation between API keys across 2 APIs on Redis', () => {
  beforeAll(async () => {
    redis = await startRedisServer();
    const pixels = Buffer.alloc(16 * 16 * 3, 99);
    image = `data:image/png;base64,${(
      await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } })
        .png()
        .toBuffer()
    ).toString('base64')}`;
    env = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: KEYS.prefix,
      API_KEYS: `${KEY_A},${KEY_B}`,
      ADMIN_API_KEYS: ADMIN,
      MAX_QUEUED_JOBS: '12',
      MAX_QUEUED_JOBS_PER_KEY: '2',
      LOG_LEVEL: 'debug',
    };
    // No worker yet: the first test needs jobs that stay queued.
    [api1, api2] = await Promise.all([
      startProcessServer({ ...env, ROLE: 'api' }, undefined, 120_000),
      startProcessServer({ ...env, ROLE: 'api' }, undefined, 120_000),
    ]);
  }, 240_000);

  afterAll(async () => {
    for (const server of [api1, api2, worker]) server?.child.kill('SIGKILL');
    await redis?.dispose();
  });

  it('should hold a key to its share across both APIs while another key is admitted, and release every count once the jobs ran', async () => {
    const first = idOf(await classify(api1, KEY_A));
    const second = idOf(await classify(api2, KEY_A));
    const overGraphql = await classify(api2, KEY_A);
    expect(overGraphql.body.errors?.[0]?.extensions?.code).toBe('OVERLOADED');
    expect(overGraphql.body.errors?.[0]?.message).toMatch(/MAX_QUEUED_JOBS_PER_KEY=2/);
    const overRest = await fetch(`${api1.url}/api/tasks/zero-shot-image-classification/tiny/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY_A },
      body: JSON.stringify({ image, classes: ['a', 'b'] }),
    });
    expect(overRest.status).toBe(429);
    expect(overRest.headers.get('retry-after')).not.toBeNull();
    const ofB = idOf(await classify(api2, KEY_B));

    worker = await startProcessServer({ ...env, ROLE: 'worker' }, undefined, 120_000);
    for (const [key, id] of [
      [KEY_A, first],
      [KEY_A, second],
      [KEY_B, ofB],
    ] as const) {
      await expect.poll(() => statusOf(api1, key, id), { timeout: 60_000, interval: 100 }).toBe('COMPLETE');
    }
    const client = new Redis(redis.url);
    try {
      await expect
        .poll(async () => Number((await client.hget(KEYS.admission, 'jobs')) ?? 0), { timeout: 30_000 })
        .toBe(0);
      expect(await client.hgetall(KEYS.admissionOwners)).toEqual({});
    } finally {
      client.disconnect();
    }
    // Released, A is admitted again.
    idOf(await classify(api1, KEY_A));
  }, 180_000);

  it("should answer A's job (created on API 1) to B on API 2 exactly like an unknown id, and show it to A and the admin there", async () => {
    const id = idOf(await classify(api1, KEY_A));
    await expect.poll(() => statusOf(api2, KEY_A, id), { timeout: 60_000, interval: 100 }).toBe('COMPLETE');
    const unknown = randomUUID();
    for (const query of [JOB, CANCEL]) {
      const other = await call(api2, KEY_B, query, { id });
      expect(other.body.data).toEqual(query === JOB ? { job: null } : { cancelJob: null });
      expect(other).toEqual(await call(api2, KEY_B, query, { id: unknown }));
    }
    const otherRest = await restJob(api2, KEY_B, id);
    expect(otherRest.status).toBe(404);
    expect(withoutId(otherRest, id)).toBe(withoutId(await restJob(api2, KEY_B, unknown), unknown));
    const watched = await subscribe(api2.wsUrl, WATCH, { id }, { connectionParams: { apiKey: KEY_B } });
    expect(watched.messages[0]?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const listed = async (key: string): Promise<string[]> =>
      ((await call(api2, key, JOBS)).body.data?.jobs as { nodes: { id: string }[] }).nodes.map((node) => node.id);
    expect(await listed(KEY_B)).not.toContain(id);

    for (const key of [KEY_A, ADMIN]) {
      expect(await statusOf(api2, key, id)).toBe('COMPLETE');
      expect((await restJob(api2, key, id)).status).toBe(200);
      expect(await listed(key)).toContain(id);
      const own = await subscribe<{ jobUpdated: { status: string } }>(
        api2.wsUrl,
        WATCH,
        { id },
        { connectionParams: { apiKey: key } },
      );
      expect(own.messages.map((message) => message.data?.jobUpdated.status)).toEqual(['COMPLETE']);
    }
  }, 120_000);

  it('should leave no key in Redis (keys or values) or in any process log', async () => {
    const dump = await dumpRedis();
    expect(dump).toContain(`${KEYS.prefix}:job:`);
    // Each key's own job index is named by its keyed hash and expires with the key's last job.
    const ownerIndexes = [...dump.matchAll(new RegExp(`^(${KEYS.prefix}:owner:[0-9a-f]{64}:jobs) zset`, 'gm'))].map(
      (match) => match[1] as string,
    );
    expect(ownerIndexes.length).toBeGreaterThanOrEqual(2);
    const client = new Redis(redis.url);
    try {
      for (const key of ownerIndexes) expect(await client.pttl(key)).toBeGreaterThan(0);
    } finally {
      client.disconnect();
    }
    const logs = [api1, api2, worker]
      .map((server) => `${JSON.stringify(server?.logs)}\n${server?.output()}`)
      .join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const key of [KEY_A, KEY_B, ADMIN]) {
      expect(dump).not.toContain(key);
      expect(logs).not.toContain(key);
    }
  });
});
