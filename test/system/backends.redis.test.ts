/**
 * The job backend contract (test/utils/backendContract.ts) on the Redis backend (RedisJobStore, RedisJobEvents,
 * BullJobQueue) against a real redis-server on a free port, started by this suite.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe } from 'vitest';
import { createRedisBackend, type RedisBackend } from '../../src/jobs/redis/index.js';
import { jobToJSON } from '../../src/jobs/serialise.js';
import { silentLogger } from '../../src/logger.js';
import { describeBackendContract, STALL, type BackendFactory } from '../utils/backendContract.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../utils/redisServer.js';

let redis: RedisServer | null = null;
const REDIS = redisServerPath();
if (REDIS === null)
  console.log('skipping the Redis backend contract: redis-server is not installed (apt-get install redis-server)');

/** Deployments on the suite's redis-server (or on `url`): one key prefix each, one client set per `make`, as processes of one deployment. */
const redisBackend: BackendFactory = {
  name: 'redis',
  retainedBytesOf: (job) => Buffer.byteLength(jobToJSON(job)),
  async create(stall = STALL, url = redis?.url, maxRetainedJobBytes) {
    const keyPrefix = `t${randomUUID().slice(0, 8)}`;
    const made: RedisBackend[] = [];
    return {
      storedValues: async () => {
        if (url === undefined) throw new Error('no redis');
        return storedValues(url, keyPrefix);
      },
      make: async () => {
        if (url === undefined) throw new Error('no redis');
        const backend = createRedisBackend({
          url,
          keyPrefix,
          stall,
          logger: silentLogger(),
          ...(maxRetainedJobBytes === undefined ? {} : { maxRetainedJobBytes }),
        });
        made.push(backend);
        await backend.connected(10_000);
        return {
          store: backend.store,
          events: backend.events,
          queue: backend.queue,
          close: async () => {
            await backend.queue.close();
            await backend.events.close();
            await backend.store.close();
            await backend.close();
          },
        };
      },
    };
  },
};

/** Every value (and hash field, stream entry, member) stored under `prefix`, as raw bytes. */
async function storedValues(url: string, prefix: string): Promise<Buffer[]> {
  const raw = new Redis(url);
  try {
    const values: Buffer[] = [];
    for (const key of await raw.keys(`${prefix}:*`)) {
      const type = await raw.type(key);
      if (type === 'string') values.push((await raw.getBuffer(key)) ?? Buffer.alloc(0));
      else if (type === 'list') values.push(...(await raw.lrangeBuffer(key, 0, -1)));
      else if (type === 'hash') values.push(...Object.values(await raw.hgetallBuffer(key)));
      else if (type === 'zset') values.push(...(await raw.zrange(key, '0', '-1')).map((member) => Buffer.from(member)));
      else if (type === 'set') values.push(...(await raw.smembersBuffer(key)));
      else if (type === 'stream') values.push(Buffer.from(JSON.stringify(await raw.xrange(key, '-', '+'))));
      else throw new Error(`unexpected key type ${type} of ${key}`);
    }
    return values;
  } finally {
    raw.disconnect();
  }
}

beforeAll(async () => {
  if (REDIS !== null) redis = await startRedisServer();
}, 30_000);
afterAll(async () => {
  await redis?.dispose();
});

describe.skipIf(REDIS === null)('redis backend', () => {
  describeBackendContract(redisBackend);
});
