/** The classifier store contract on RedisClassifierStore, against a real redis-server started by this suite. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe } from 'vitest';
import { RedisClassifierStore } from '../../../src/classifiers/index.js';
import { closeConnection, createCommandConnection, type Redis } from '../../../src/jobs/index.js';
import { describeClassifierStoreContract } from '../../utils/classifierStoreContract.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../../utils/redisServer.js';

const REDIS = redisServerPath();
let redis: RedisServer | null = null;
const connections: Redis[] = [];
const prefixOf = new WeakMap<object, string>();

beforeAll(async () => {
  if (REDIS !== null) redis = await startRedisServer();
}, 30_000);

afterAll(async () => {
  await Promise.all(connections.map((connection) => closeConnection(connection)));
  await redis?.dispose();
});

function connect(): Redis {
  const connection = createCommandConnection({ url: redis!.url });
  connections.push(connection);
  return connection;
}

async function ready(connection: Redis): Promise<void> {
  if (connection.status !== 'ready') await new Promise((resolve) => connection.once('ready', resolve));
}

describe.skipIf(REDIS === null)('redis', () => {
  describeClassifierStoreContract({
    name: 'redis',
    async create() {
      const connection = connect();
      await ready(connection);
      const keyPrefix = `c${randomUUID().slice(0, 8)}`;
      const store = new RedisClassifierStore({ redis: connection, keyPrefix });
      prefixOf.set(store, keyPrefix);
      return store;
    },
    async reopen(store) {
      const connection = connect();
      await ready(connection);
      return new RedisClassifierStore({ redis: connection, keyPrefix: prefixOf.get(store)! });
    },
  });
});
