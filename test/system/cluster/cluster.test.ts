/**
 * The scale-out deployment as processes (issue 9): redis-server, 2 APIs (ROLE=api) and 2 workers (ROLE=worker,
 * one ONNX thread each, the tiny test model), all children on free ports. Short stall settings, so a killed
 * worker's jobs move within seconds.
 */
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RedisKeys } from '../../../src/jobs/redis/keys.js';
import { metricValue } from '../../utils/metrics.js';
import { startProcessServer, type ProcessServer } from '../../utils/processServer.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../../utils/redisServer.js';

const REDIS = redisServerPath();
const KEYS = new RedisKeys('cluster-test');
if (REDIS === null)
  console.log('skipping the cluster test: redis-server is not installed (apt-get install redis-server)');

const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id status } }';
const JOB = 'query($id: ID!) { job(id: $id) { id status error { code } result { images { probabilities } } } }';
const CANCEL = 'mutation($id: ID!) { cancelJob(id: $id) { id status } }';

let redis: RedisServer;
let env: Record<string, string>;
const apis: ProcessServer[] = [];
const workers: ProcessServer[] = [];

async function pngDataUrl(seed: number, size = 32): Promise<string> {
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < pixels.length; i += 1) pixels[i] = (i * 13 + seed * 101 + ((i * seed) % 23) * 5) % 256;
  const png = await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

async function gql<T>(
  server: ProcessServer,
  query: string,
  variables: Record<string, unknown>,
): Promise<{ data?: T; errors?: { extensions?: { code?: string } }[] }> {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: T; errors?: { extensions?: { code?: string } }[] };
}

/**
 * Until nothing is left over from earlier tests: no job queued or running, so no admission held (the depth on
 * /metrics is cluster-wide, refreshed every second; a finished job's counts are released just after its state is stored).
 */
async function untilIdle(api: ProcessServer): Promise<void> {
  await expect
    .poll(
      async () => {
        const text = await (await fetch(`${api.url}/metrics`)).text();
        // The job gauges come from the store, clip_pending_images from the admission counts, released a moment later.
        const gauges = text.match(/^clip_jobs_active\{status="(queued|running)"\} (\d+)|^clip_pending_images (\d+)/gm);
        return gauges?.length === 3 && gauges.every((line) => line.endsWith(' 0'));
      },
      {
        timeout: 30_000,
        interval: 250,
      },
    )
    .toBe(true);
}

/** Until the cluster-wide admission counts, read in Redis itself every 5 ms, hold no job. */
async function untilReleased(): Promise<void> {
  const client = new Redis(redis.url);
  try {
    await expect
      .poll(async () => Number((await client.hget(KEYS.admission, 'jobs')) ?? 0), { timeout: 30_000, interval: 5 })
      .toBe(0);
  } finally {
    client.disconnect();
  }
}

async function submit(server: ProcessServer, images: string[]): Promise<string> {
  const body = await gql<{ classify: { id: string } }>(server, CLASSIFY, {
    input: { images, classes: ['a cat', 'a dog'] },
  });
  const id = body.data?.classify.id;
  if (id === undefined) throw new Error(`classify refused: ${JSON.stringify(body).slice(0, 300)}`);
  return id;
}

async function statusOf(server: ProcessServer, id: string): Promise<string | undefined> {
  return (await gql<{ job: { status: string } | null }>(server, JOB, { id })).data?.job?.status;
}

async function settled(server: ProcessServer, id: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await statusOf(server, id);
    if (status === 'COMPLETE' || status === 'FAILED' || status === 'CANCELLED') return status;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function startWorker(): Promise<ProcessServer> {
  return startProcessServer({ ...env, ROLE: 'worker', MAX_CONCURRENT_JOBS: '4' }, undefined, 120_000);
}

describe.skipIf(REDIS === null)('a cluster of 2 APIs and 2 workers on Redis', () => {
  beforeAll(async () => {
    redis = await startRedisServer({ persistent: true });
    env = {
      REDIS_URL: redis.url,
      LOCK_DURATION_MS: '2000',
      STALLED_INTERVAL_MS: '1000',
      MAX_STALLED_COUNT: '2',
      DRAIN_TIMEOUT_MS: '20000',
      MAX_QUEUED_JOBS: '12',
      REDIS_KEY_PREFIX: KEYS.prefix,
      LOG_LEVEL: 'info',
    };
    const started = await Promise.all([
      startProcessServer({ ...env, ROLE: 'api' }, undefined, 120_000),
      startProcessServer({ ...env, ROLE: 'api' }, undefined, 120_000),
      startWorker(),
      startWorker(),
    ]);
    apis.push(started[0], started[1]);
    workers.push(started[2], started[3]);
  }, 240_000);

  afterAll(async () => {
    for (const server of [...apis, ...workers]) server.child.kill('SIGKILL');
    await redis?.dispose();
  });

  it('should follow a job created on API 1 to its end from API 2 (subscription, job, FES REST), in order', async () => {
    const [api1, api2] = apis as [ProcessServer, ProcessServer];
    const client = createClient({ url: api2.wsUrl, webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 });
    const images = await Promise.all([1, 2, 3].map((seed) => pngDataUrl(seed)));
    const id = await submit(api1, images);
    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      client.subscribe<{ jobUpdated: { status: string } }>(
        { query: 'subscription($id: ID!) { jobUpdated(id: $id) { status } }', variables: { id } },
        { next: (message) => seen.push(message.data?.jobUpdated.status ?? '?'), error: reject, complete: resolve },
      );
    });
    await client.dispose();
    // The current state first (whatever it is by now), then every later one, in order, ending COMPLETE.
    const order = ['QUEUED', 'RUNNING', 'COMPLETE'];
    expect(seen.at(-1)).toBe('COMPLETE');
    expect(seen).toEqual(order.slice(order.indexOf(seen[0] ?? '')));
    const job = await gql<{ job: { status: string; result: { images: { probabilities: number[] }[] } } }>(api2, JOB, {
      id,
    });
    expect(job.data?.job.result.images).toHaveLength(3);
    for (const image of job.data?.job.result.images ?? [])
      expect(image.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const rest = await fetch(`${api2.url}/api/tasks/zero-shot-image-classification/batched/jobs/${id}`);
    expect(rest.status).toBe(200);
    const restBody = (await rest.json()) as { status: string; result: unknown[] };
    expect(restBody.result).toHaveLength(3);
  }, 90_000);

  it('should refuse an unknown model at submission on an API (422 on REST), which loads no model', async () => {
    const [api1] = apis as [ProcessServer];
    const response = await fetch(`${api1.url}/api/tasks/zero-shot-image-classification/no-such-model/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: await pngDataUrl(4), classes: ['a', 'b'] }),
    });
    expect(response.status).toBe(422);
    // The API never loaded a model; the workers did.
    expect(apis.every((api) => !api.logs.some((line) => line.msg === 'loading model'))).toBe(true);
    expect(workers.every((worker) => worker.logs.some((line) => line.msg === 'loading model'))).toBe(true);
    expect((await fetch(`${api1.url}/ready`)).status).toBe(200);
    const worker = workers[0] as ProcessServer;
    expect((await fetch(`${worker.url}/ready`)).status).toBe(200);
    expect((await fetch(`${worker.url}/graphql`)).status).toBe(404);
    // Model metadata on the API comes from what the workers registered.
    const models = await gql<{ models: { status: string; embeddingSize: number | null }[] }>(
      api1,
      '{ models { status embeddingSize } }',
      {},
    );
    await expect
      .poll(
        async () =>
          (
            await gql<{ models: { status: string; embeddingSize: number | null }[] }>(
              api1,
              '{ models { status embeddingSize } }',
              {},
            )
          ).data?.models[0],
        { timeout: 10_000 },
      )
      .toMatchObject({ status: 'READY', embeddingSize: expect.any(Number) });
    expect(models.errors).toBeUndefined();
  });

  it('should cancel a job from the other API', async () => {
    const [api1, api2] = apis as [ProcessServer, ProcessServer];
    const images = await Promise.all([...Array(16).keys()].map((seed) => pngDataUrl(seed + 20, 64)));
    const id = await submit(api1, images);
    const cancelled = await gql<{ cancelJob: { status: string } }>(api2, CANCEL, { id });
    expect(['CANCELLED', 'COMPLETE']).toContain(cancelled.data?.cancelJob.status);
    expect(await settled(api1, id)).toBe(cancelled.data?.cancelJob.status);
  }, 60_000);

  it('should hold MAX_QUEUED_JOBS across both APIs: exactly the limit is admitted, the rest OVERLOADED', async () => {
    const [api1, api2] = apis as [ProcessServer, ProcessServer];
    const image = await pngDataUrl(7, 64);
    const images = Array.from({ length: 16 }, () => image);
    await untilIdle(api1);
    const submittedOn = (api: ProcessServer) =>
      metricValue(api.url, 'clip_jobs_total', 'status="queued",task="classification"').then((value) => value ?? 0);
    const submittedBefore = await Promise.all([submittedOn(api1), submittedOn(api2)]);
    // Workers paused, so nothing finishes during the burst and the count is exact (admission is one atomic Lua step).
    for (const worker of workers) worker.child.kill('SIGSTOP');
    try {
      const outcomes = await Promise.all(
        [...Array(30).keys()].map(async (i) => {
          const body = await gql<{ classify: { id: string } }>(i % 2 === 0 ? api1 : api2, CLASSIFY, {
            input: { images, classes: ['a', 'b'] },
          });
          return body.data?.classify.id ?? body.errors?.[0]?.extensions?.code ?? 'none';
        }),
      );
      const accepted = outcomes.filter((outcome) => outcome.length === 36);
      expect(accepted).toHaveLength(12);
      expect(outcomes.filter((outcome) => outcome === 'OVERLOADED')).toHaveLength(18);
      // /metrics: each API counts the submissions it stored (they add up to the 12), and both show the cluster-wide depth.
      const submittedAfter = await Promise.all([submittedOn(api1), submittedOn(api2)]);
      expect(submittedAfter[0] - submittedBefore[0] + submittedAfter[1] - submittedBefore[1]).toBe(12);
      for (const api of [api1, api2]) {
        await expect
          .poll(
            async () =>
              ((await metricValue(api.url, 'clip_jobs_active', 'status="queued"')) ?? 0) +
              ((await metricValue(api.url, 'clip_jobs_active', 'status="running"')) ?? 0),
            {
              timeout: 5_000,
              interval: 200,
            },
          )
          .toBe(12);
        expect(await metricValue(api.url, 'clip_pending_images')).toBe(12 * 16);
      }
      for (const worker of workers) worker.child.kill('SIGCONT');
      for (const id of accepted) expect(await settled(api1, id, 120_000)).toBe('COMPLETE');
      // Completions are stored by the workers, so they count there, not on the APIs that only heard of them.
      expect(await metricValue(api1.url, 'clip_jobs_total', 'status="complete",task="classification"')).toBeUndefined();
      const completedOn = await Promise.all(
        workers.map((worker) => metricValue(worker.url, 'clip_jobs_total', 'status="complete",task="classification"')),
      );
      expect(completedOn.reduce((sum: number, value) => sum + (value ?? 0), 0)).toBeGreaterThanOrEqual(12);
    } finally {
      for (const worker of workers) worker.child.kill('SIGCONT');
    }
  }, 180_000);

  it('should admit on an API the moment the cluster has room again, though that API last saw the counts full', async () => {
    const [api1, api2] = apis as [ProcessServer, ProcessServer];
    const images = [await pngDataUrl(8)];
    await Promise.all([untilIdle(api1), untilIdle(api2)]);
    // Workers paused: the 12 jobs stay waiting, so cancelling them releases all their admissions within milliseconds.
    for (const worker of workers) worker.child.kill('SIGSTOP');
    try {
      const ids = await Promise.all([...Array(12).keys()].map(() => submit(api1, images)));
      const refused = await gql(api2, CLASSIFY, { input: { images, classes: ['a', 'b'] } });
      expect(refused.errors?.[0]?.extensions?.code).toBe('OVERLOADED');
      await Promise.all(ids.map((id) => gql(api1, CANCEL, { id })));
      await untilReleased();
      // API 2 last saw the counts full (its refused submission, its refresh every second): it must not refuse on them.
      const id = await submit(api2, images);
      for (const worker of workers) worker.child.kill('SIGCONT');
      expect(await settled(api2, id)).toBe('COMPLETE');
    } finally {
      for (const worker of workers) worker.child.kill('SIGCONT');
    }
  }, 120_000);

  it('should answer SERVICE_UNAVAILABLE while Redis is down, never crash, and resume without a restart, losing no accepted job', async () => {
    const [api1, api2] = apis as [ProcessServer, ProcessServer];
    const images = await Promise.all([...Array(16).keys()].map((seed) => pngDataUrl(seed + 200, 96)));
    // Both APIs: each refuses early on the counts it last saw (refreshed every second), so both must have seen the release.
    await Promise.all([untilIdle(api1), untilIdle(api2)]);
    const accepted = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => submit(i % 2 === 0 ? api1 : api2, images)));
    await redis.stop();
    const refused = await gql<{ classify: { id: string } }>(api1, CLASSIFY, { input: { images, classes: ['a', 'b'] } });
    expect(refused.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
    const read = await fetch(`${api2.url}/api/tasks/zero-shot-image-classification/jobs/${accepted[0] ?? ''}`);
    expect(read.status).toBe(503);
    expect((await fetch(`${api1.url}/ready`)).status).toBe(503);
    expect((await fetch(`${(workers[0] as ProcessServer).url}/ready`)).status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await redis.restart();
    for (const server of [...apis, ...workers]) {
      expect(server.child.exitCode).toBeNull();
      await expect
        .poll(async () => (await fetch(`${server.url}/ready`)).status, { timeout: 30_000, interval: 200 })
        .toBe(200);
    }
    for (const id of accepted) expect(await settled(api1, id, 120_000)).toBe('COMPLETE');
    expect(await settled(api2, await submit(api2, images), 60_000)).toBe('COMPLETE');
  }, 240_000);

  it('should complete the jobs of a worker SIGKILLed mid-batch on the other worker, each once', async () => {
    const [api1] = apis as [ProcessServer];
    const victim = workers[0] as ProcessServer;
    const images = await Promise.all([...Array(16).keys()].map((seed) => pngDataUrl(seed + 50, 96)));
    const ids = await Promise.all([0, 1, 2, 3].map(() => submit(api1, images)));
    // Wait until the victim runs at least one of them.
    const deadline = Date.now() + 30_000;
    while (
      !victim.logs.some((line) => line.msg === 'job running' && ids.includes(line.jobId ?? '')) &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    victim.child.kill('SIGKILL');
    await victim.exited;
    for (const id of ids) expect(await settled(api1, id, 90_000)).toBe('COMPLETE');
    const survivor = workers[1] as ProcessServer;
    for (const id of ids) {
      const completions = [...victim.logs, ...survivor.logs].filter(
        (line) => line.msg === 'job complete' && line.jobId === id,
      );
      expect(completions).toHaveLength(1);
    }
    workers[0] = await startWorker();
  }, 240_000);

  it('should finish its running batch on SIGTERM, hand the rest back, and exit 0 (worker)', async () => {
    const [api1] = apis as [ProcessServer];
    const leaving = workers[1] as ProcessServer;
    const images = await Promise.all([...Array(16).keys()].map((seed) => pngDataUrl(seed + 90, 96)));
    const ids: string[] = [];
    for (let i = 0; i < 10; i += 1) ids.push(await submit(api1, images));
    const deadline = Date.now() + 30_000;
    while (!leaving.logs.some((line) => line.msg === 'job running') && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    leaving.child.kill('SIGTERM');
    expect(await leaving.exited).toBe(0);
    for (const id of ids) expect(await settled(api1, id, 120_000)).toBe('COMPLETE');
  }, 240_000);

  it('should close its websockets cleanly on SIGTERM and exit 0 (API)', async () => {
    const api2 = apis[1] as ProcessServer;
    const socket = new WebSocket(api2.wsUrl, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    api2.child.kill('SIGTERM');
    expect(await closed).toBe(1001);
    expect(await api2.exited).toBe(0);
  }, 60_000);
});
