/**
 * RedisClassifierBus against a real redis-server started by this suite, as two processes would use it: a message
 * published by one reaches the other's subscribers (a classifier with its dates, a deletion, a build request), text on
 * the channel that is not a message is dropped, and a build's claim is held by one process at a time, released only
 * by its holder.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisClassifierBus, type ClassifierMessage } from '../../../src/classifiers/index.js';
import {
  closeConnection,
  createCommandConnection,
  createWaitingConnection,
  whenReady,
  type Redis,
} from '../../../src/jobs/index.js';
import { classifierRecord } from '../../utils/classifierStoreContract.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../../utils/redisServer.js';

const REDIS = redisServerPath();
let redis: RedisServer | null = null;
const commands: Redis[] = [];
const buses: RedisClassifierBus[] = [];

beforeAll(async () => {
  if (REDIS !== null) redis = await startRedisServer();
}, 30_000);

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close()));
  await Promise.all(commands.map((connection) => closeConnection(connection)));
  await redis?.dispose();
});

/** A process's bus: its own command connection and subscriber, under `keyPrefix`. */
async function busOf(keyPrefix: string): Promise<{ bus: RedisClassifierBus; messages: ClassifierMessage[] }> {
  const command = createCommandConnection({ url: redis!.url });
  commands.push(command);
  await whenReady(command, 5_000);
  const bus = new RedisClassifierBus({
    redis: command,
    subscriber: createWaitingConnection({ url: redis!.url }),
    keyPrefix,
    processId: randomUUID(),
  });
  buses.push(bus);
  await bus.open();
  const messages: ClassifierMessage[] = [];
  bus.subscribe((message) => messages.push(message));
  return { bus, messages };
}

async function until<T>(read: () => T | undefined): Promise<T> {
  await expect.poll(read, { timeout: 5_000, interval: 10 }).toBeDefined();
  return read()!;
}

describe.skipIf(REDIS === null)('RedisClassifierBus', () => {
  it("should deliver one process's messages to another's subscribers, and drop text that is not a message", async () => {
    const prefix = `bus-${randomUUID().slice(0, 8)}`;
    const one = await busOf(prefix);
    const two = await busOf(prefix);
    const classifier = classifierRecord();
    await one.bus.publish({ kind: 'updated', classifier });
    await commands[0]!.publish(`${prefix}:classifier-events`, 'not json');
    await one.bus.publish({ kind: 'deleted', id: classifier.id });
    await one.bus.publish({ kind: 'build', id: classifier.id, model: 'tiny' });
    await until(() => (two.messages.length === 3 ? two.messages : undefined));
    expect(two.messages).toEqual([
      { kind: 'updated', classifier },
      { kind: 'deleted', id: classifier.id },
      { kind: 'build', id: classifier.id, model: 'tiny' },
    ]);
    // The publisher hears its own messages too: every process's watchers follow the same stream.
    await until(() => (one.messages.length === 3 ? one.messages : undefined));
  });

  it('should let one process hold a build claim at a time, released only by its holder', async () => {
    const prefix = `claim-${randomUUID().slice(0, 8)}`;
    const one = await busOf(prefix);
    const two = await busOf(prefix);
    expect(await one.bus.claim('c1', 'tiny')).toBe(true);
    expect(await two.bus.claim('c1', 'tiny')).toBe(false);
    // Another classifier, or the same on another model, is another claim.
    expect(await two.bus.claim('c1', 'other')).toBe(true);
    expect(await two.bus.claim('c2', 'tiny')).toBe(true);
    await two.bus.release('c1', 'tiny');
    expect(await two.bus.claim('c1', 'tiny')).toBe(false);
    await one.bus.renew('c1', 'tiny');
    await one.bus.release('c1', 'tiny');
    expect(await two.bus.claim('c1', 'tiny')).toBe(true);
  });
});
