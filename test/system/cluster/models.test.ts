/**
 * Model control across a cluster as processes: redis-server, one API (ROLE=api) and two workers (ROLE=worker), each
 * worker serving the tiny model and an extra copy of it. A stop or start sent to the API reaches both workers; the
 * status the API answers is the cluster's.
 */
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInfo } from '../../../src/clip/types.js';
import { RedisKeys } from '../../../src/jobs/redis/keys.js';
import { startProcessServer, type ProcessServer } from '../../utils/processServer.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../../utils/redisServer.js';
import { TINY_MODEL_DIR } from '../../utils/testModel.js';

const REDIS = redisServerPath();
const KEYS = new RedisKeys('cluster-models-test');
const TASK = 'zero-shot-image-classification';

let redis: RedisServer;
let api: ProcessServer;
const workers: ProcessServer[] = [];

/** Each live worker's status of `model`, as the workers registered it in Redis. */
async function workerStatuses(model: string): Promise<string[]> {
  const client = new Redis(redis.url);
  try {
    const keys = await client.keys(KEYS.models('*'));
    const values = keys.length === 0 ? [] : await client.mget(...keys);
    return values.flatMap((value) =>
      value === null ? [] : (JSON.parse(value) as ModelInfo[]).filter((m) => m.name === model).map((m) => m.status),
    );
  } finally {
    client.disconnect();
  }
}

async function statusOf(model: string): Promise<{ status: string; jobs: { id: string; status: string }[] }> {
  const response = await fetch(`${api.url}/api/models/${model}/status`);
  expect(response.status).toBe(200);
  return (await response.json()) as { status: string; jobs: { id: string; status: string }[] };
}

async function control(model: string, change: 'start' | 'stop'): Promise<void> {
  const response = await fetch(`${api.url}/api/models/${model}/${change}`, { method: 'POST' });
  expect(response.status).toBe(200);
  expect(await response.text()).toBe('');
}

describe.skipIf(REDIS === null)('model control in a cluster of 1 API and 2 workers', () => {
  beforeAll(async () => {
    redis = await startRedisServer({ persistent: false });
    const env = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: KEYS.prefix,
      CLIP_MODELS: `extra=${TINY_MODEL_DIR}`,
      LOG_LEVEL: 'info',
    };
    const started = await Promise.all([
      startProcessServer({ ...env, ROLE: 'api' }, undefined, 120_000),
      startProcessServer({ ...env, ROLE: 'worker' }, undefined, 120_000),
      startProcessServer({ ...env, ROLE: 'worker' }, undefined, 120_000),
    ]);
    api = started[0];
    workers.push(started[1], started[2]);
  }, 240_000);

  afterAll(async () => {
    for (const server of [api, ...workers]) server?.child.kill('SIGKILL');
    await redis?.dispose();
  });

  it('should stop and start the model on every worker from one API call, and answer the cluster status', async () => {
    await expect.poll(() => workerStatuses('extra'), { timeout: 60_000, interval: 200 }).toEqual(['ready', 'ready']);
    await expect.poll(async () => (await statusOf('extra')).status, { timeout: 10_000, interval: 200 }).toBe('running');

    await control('extra', 'stop');
    await expect
      .poll(() => workerStatuses('extra'), { timeout: 60_000, interval: 200 })
      .toEqual(['stopped', 'stopped']);
    // Stopped on every worker, so the cluster's status is stopped; the default model is untouched.
    await expect
      .poll(async () => statusOf('extra'), { timeout: 10_000, interval: 200 })
      .toEqual({ status: 'stopped', jobs: [] });
    expect(await workerStatuses('tiny')).toEqual(['ready', 'ready']);

    // A job on the stopped model: whichever worker takes it starts its copy; the cluster then runs the model.
    const pixels = Buffer.alloc(32 * 32 * 3, 77);
    const image = (
      await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } })
        .png()
        .toBuffer()
    ).toString('base64');
    const submitted = (await (
      await fetch(`${api.url}/api/tasks/${TASK}/extra/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image, classes: ['a', 'b'] }),
      })
    ).json()) as { id: string };
    await expect
      .poll(
        async () =>
          ((await (await fetch(`${api.url}/api/tasks/${TASK}/jobs/${submitted.id}`)).json()) as { status: string })
            .status,
        { timeout: 60_000, interval: 200 },
      )
      .toBe('complete');
    await expect.poll(async () => (await statusOf('extra')).status, { timeout: 10_000, interval: 200 }).toBe('running');

    await control('extra', 'start');
    await expect.poll(() => workerStatuses('extra'), { timeout: 60_000, interval: 200 }).toEqual(['ready', 'ready']);

    const unknown = await fetch(`${api.url}/api/models/nope/stop`, { method: 'POST' });
    expect(unknown.status).toBe(404);
  });
});
