/**
 * The only ioredis importer besides BullMQ: connections for the Redis backend, and the one mapping from a
 * Redis failure to our SERVICE_UNAVAILABLE (HTTP 503), so callers see a retryable error while Redis is away.
 */
import { Redis } from 'ioredis';
import { AppError, ErrorCode } from '../../errors.js';

export type { Redis };

export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]`. */
  url: string;
}

/**
 * A command connection that fails fast while Redis is unreachable (no offline queue), so requests answer
 * 503 at once instead of hanging; ioredis keeps reconnecting in the background and commands resume.
 */
export function createCommandConnection(options: RedisConnectionOptions): Redis {
  return new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    lazyConnect: false,
  });
}

/** A connection for subscribers and BullMQ workers: commands wait for a reconnect (BullMQ requires `maxRetriesPerRequest: null`). */
export function createWaitingConnection(options: RedisConnectionOptions): Redis {
  return new Redis(options.url, {
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
}

/**
 * Runs a Redis call, turning connection failures into SERVICE_UNAVAILABLE. With `connection` (one that would
 * wait for a reconnect), the call is refused at once while that connection is down.
 */
export async function viaRedis<T>(call: () => Promise<T>, connection?: Redis): Promise<T> {
  if (connection !== undefined && connection.status !== 'ready') {
    throw new AppError(ErrorCode.ServiceUnavailable, 'the job backend (Redis) is unreachable; retry later');
  }
  try {
    return await call();
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError(ErrorCode.ServiceUnavailable, 'the job backend (Redis) is unreachable; retry later', {
      cause: error,
    });
  }
}

/** Quits politely, or cuts the connection when Redis is not there to answer. */
export async function closeConnection(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  try {
    if (redis.status === 'ready') await redis.quit();
    else redis.disconnect();
  } catch {
    redis.disconnect();
  }
}

/** How long readiness waits for Redis to answer a PING, in ms: a Redis slower than this counts as unreachable. */
const PING_TIMEOUT_MS = 1000;

/** Whether Redis answers a PING within PING_TIMEOUT_MS. */
export async function isReachable(redis: Redis): Promise<boolean> {
  if (redis.status !== 'ready') return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      redis.ping().then((reply) => reply === 'PONG'),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
        timer.unref();
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for `promise` to settle, at most `ms` (its timer does not keep the process alive). */
export async function settleWithin(promise: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (promise === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}

/**
 * Resolves to true once `redis` is ready (at once if it is), or to false after `timeoutMs`; waits on the
 * connection's 'ready' event.
 */
export async function whenReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  let onReady = (): void => undefined;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
    redis.once('ready', onReady);
  });
  await settleWithin(ready, timeoutMs);
  redis.off('ready', onReady);
  return isReady(redis);
}

function isReady(redis: Redis): boolean {
  return redis.status === 'ready';
}
