/** The Redis backend: one command connection shared by the store, the bus's publisher and the queue's producer. */
import type { Logger } from '../../logger.js';
import { BullJobQueue, type StallSettings } from './BullJobQueue.js';
import {
  closeConnection,
  createCommandConnection,
  createWaitingConnection,
  isReachable,
  settleWithin,
  whenReady,
  type Redis,
} from './connection.js';
import { RedisJobEvents } from './RedisJobEvents.js';
import { RedisJobStore } from './RedisJobStore.js';
import { mergeModelViews, RedisModelRegistry } from './RedisModelRegistry.js';

export { BullJobQueue, mergeModelViews, RedisJobEvents, RedisJobStore, RedisModelRegistry };
export type { StallSettings };

export interface RedisBackendOptions {
  url: string;
  /** Prefix of every key and channel, so deployments can share one Redis. */
  keyPrefix: string;
  stall: StallSettings;
  logger: Logger;
  /** MAX_RETAINED_JOB_BYTES, per deployment (see retention.ts); no bound when omitted. */
  maxRetainedJobBytes?: number;
}

export interface RedisBackend {
  store: RedisJobStore;
  events: RedisJobEvents;
  queue: BullJobQueue;
  /** What the workers serve (written by workers, read by APIs). */
  models: RedisModelRegistry;
  /** Resolves once the connections are up, or after `timeoutMs` (Redis down at start is survivable: calls answer 503 until it is back). */
  connected(timeoutMs: number): Promise<boolean>;
  /** Whether Redis answers now (readiness). */
  reachable(): Promise<boolean>;
  /** Closes the shared connection (after the store, bus and queue are closed). */
  close(): Promise<void>;
}

/** A worker's model entry outlives its last renewal by this long: a dead worker drops out within it. */
const MODEL_ENTRY_TTL_MS = 6_000;

export function createRedisBackend(options: RedisBackendOptions): RedisBackend {
  const redis: Redis = createCommandConnection({ url: options.url });
  let warned = false;
  redis.on('error', (error: Error) => {
    // ioredis reports every failed reconnect: log the outage once, and its end.
    if (!warned) options.logger.warn({ err: error }, 'Redis is unreachable; retrying');
    warned = true;
  });
  redis.on('ready', () => {
    if (warned) options.logger.info('Redis is reachable again');
    warned = false;
  });
  const connect = (): Redis => {
    const connection = createWaitingConnection({ url: options.url });
    connection.on('error', () => undefined);
    return connection;
  };
  const store = new RedisJobStore({
    redis,
    keyPrefix: options.keyPrefix,
    ...(options.maxRetainedJobBytes === undefined ? {} : { maxRetainedBytes: options.maxRetainedJobBytes }),
  });
  const events = new RedisJobEvents({
    publisher: redis,
    subscriber: connect(),
    keyPrefix: options.keyPrefix,
    onListenerError: (error) => options.logger.error({ err: error }, 'job event listener threw'),
  });
  const queue = new BullJobQueue({
    redis,
    connect,
    keyPrefix: options.keyPrefix,
    stall: options.stall,
    logger: options.logger,
  });
  const models = new RedisModelRegistry({
    redis,
    keyPrefix: options.keyPrefix,
    entryTtlMs: MODEL_ENTRY_TTL_MS,
    connect,
    logger: options.logger,
  });
  return {
    store,
    events,
    queue,
    models,
    connected: async (timeoutMs) => {
      const [, commands, producer] = await Promise.all([
        settleWithin(events.ready(), timeoutMs),
        whenReady(redis, timeoutMs),
        queue.producerReady(timeoutMs),
      ]);
      return commands && producer;
    },
    reachable: () => isReachable(redis),
    close: async () => {
      await models.close();
      await closeConnection(redis);
    },
  };
}
