/**
 * RedisModelRegistry's watch against a real redis-server (started by this suite): an API is told of every change of
 * the workers' entries as it is announced, and of an entry that expired unannounced (a lost worker) within two TTLs.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInfo } from '../../src/clip/types.js';
import { RedisModelRegistry } from '../../src/jobs/redis/index.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../utils/redisServer.js';

const REDIS = redisServerPath();
let redis: RedisServer | null = null;
const connections: Redis[] = [];

beforeAll(async () => {
  if (REDIS !== null) redis = await startRedisServer();
}, 30_000);
afterAll(async () => {
  for (const connection of connections) connection.disconnect();
  await redis?.dispose();
});

function connect(): Redis {
  const connection = new Redis(redis?.url ?? '', { maxRetriesPerRequest: null });
  connections.push(connection);
  return connection;
}

function model(status: ModelInfo['status']): ModelInfo {
  return {
    name: 'tiny',
    source: 'dir',
    precision: 'fp32',
    status,
    embeddingSize: 8,
    contextLength: 77,
    imageSize: 32,
    logitScale: 100,
    error: null,
  };
}

describe.skipIf(REDIS === null)('RedisModelRegistry.watch', () => {
  it('should push the views when a worker registers, changes and leaves, and when a lost worker’s entry expires', async () => {
    const keyPrefix = `t${randomUUID().slice(0, 8)}`;
    const entryTtlMs = 400;
    const registry = (): RedisModelRegistry =>
      new RedisModelRegistry({ redis: connect(), keyPrefix, entryTtlMs, connect });
    const api = registry();
    const seen: ModelInfo[][][] = [];
    const stop = api.watch((views) => seen.push(views));
    await expect.poll(() => seen.at(-1), { timeout: 5000 }).toEqual([]);

    const worker = registry();
    let status: ModelInfo['status'] = 'loading';
    worker.register('w1', () => [model(status)]);
    await expect.poll(() => seen.at(-1), { timeout: 5000 }).toEqual([[model('loading')]]);
    status = 'ready';
    worker.refresh();
    await expect.poll(() => seen.at(-1), { timeout: 5000 }).toEqual([[model('ready')]]);
    await worker.close();
    await expect.poll(() => seen.at(-1), { timeout: 5000 }).toEqual([]);

    // A lost worker: its entry is written, never renewed, never announced.
    const before = seen.length;
    await connect().set(`${keyPrefix}:models:lost`, JSON.stringify([model('ready')]), 'PX', entryTtlMs);
    await expect.poll(() => seen.at(-1), { timeout: 5000 }).toEqual([[model('ready')]]);
    const appeared = Date.now();
    await expect.poll(() => seen.at(-1), { timeout: 5000 }).toEqual([]);
    expect(Date.now() - appeared).toBeLessThan(3 * entryTtlMs);
    expect(seen.length).toBe(before + 2);
    stop();
    await api.close();
  });
});
