/**
 * `/v1/embeddings` requests are jobs like any other: an API process (ROLE=api) over a real redis-server with no
 * worker keeps every job QUEUED, so what the route does with its job is observable without timing: a caller that
 * disconnects cancels its job, a full queue (MAX_QUEUED_JOBS) answers 429 with Retry-After in OpenAI's shape, and a
 * draining server 503 SHUTTING_DOWN.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestServer, waitFor, type TestServer } from '../utils/testServer.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../utils/redisServer.js';

const hasRedis = redisServerPath() !== null;

interface ListedJob {
  id: string;
  status: string;
  task: string;
}

describe.skipIf(!hasRedis)('/v1/embeddings as jobs (ROLE=api, no worker)', () => {
  let redis: RedisServer;
  let server: TestServer;

  beforeAll(async () => {
    redis = await startRedisServer();
    server = await startTestServer({ role: 'api', redisUrl: redis.url, maxQueuedJobs: 1 });
  });

  afterAll(async () => {
    await server?.stop();
    await redis?.dispose();
  });

  async function jobs(): Promise<ListedJob[]> {
    const { body } = await gql<{ jobs: { nodes: ListedJob[] } }>(
      server.url,
      '{ jobs(first: 50) { nodes { id status task } } }',
    );
    return body.data?.jobs.nodes ?? [];
  }

  const embed = (signal?: AbortSignal): Promise<Response> =>
    fetch(`${server.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', input: ['a photo of a cat'] }),
      ...(signal === undefined ? {} : { signal }),
    });

  it('should cancel the job of a caller that disconnects before the answer', async () => {
    const leaving = new AbortController();
    const request = embed(leaving.signal).catch(() => undefined);
    const queued = await waitFor(async () => (await jobs()).find((job) => job.status === 'QUEUED'));
    expect(queued.task).toBe('TEXT_EMBEDDING');
    leaving.abort();
    await request;
    const after = await waitFor(async () =>
      (await jobs()).find((job) => job.id === queued.id && job.status !== 'QUEUED'),
    );
    expect(after.status).toBe('CANCELLED');
  });

  it('should answer 429 with Retry-After in OpenAI’s shape when the queue is full', async () => {
    const { body } = await gql<{ embedTexts: { id: string } }>(
      server.url,
      'mutation { embedTexts(input: { text: "a dog" }) { id } }',
    );
    const blocking = body.data?.embedTexts.id;
    expect(blocking).toBeDefined();
    const refused = await embed();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    const answer = (await refused.json()) as { error: { type: string; code: string; message: string } };
    expect(answer.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect(answer.error.message).toContain('MAX_QUEUED_JOBS');
    await gql(server.url, 'mutation ($id: ID!) { cancelJob(id: $id) { id } }', { id: blocking });
  });

  it('should answer 503 SHUTTING_DOWN in OpenAI’s shape once the server drains', async () => {
    await server.server.jobs.drain(0);
    const refused = await embed();
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: unknown }).error).toMatchObject({
      type: 'server_error',
      code: 'SHUTTING_DOWN',
    });
  });
});
