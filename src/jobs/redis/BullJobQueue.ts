/**
 * The JobQueue on BullMQ: work (image bytes as base64, prompt settings) is a BullMQ job whose id is ours, removed
 * from Redis as soon as it completes or fails (`removeOnComplete`/`removeOnFail`: BullMQ keeps finished jobs
 * otherwise). BullMQ's stalled-job recovery hands the work of a lost worker to another one (`lockDuration`,
 * `stalledInterval`, `maxStalledCount`); past the bound the job is reported lost, and the worker fails it with
 * WORKER_LOST. BullMQ cannot cancel a job running in another process, so cancels travel on our own channel.
 * Admission counts live in one Redis hash, checked and taken by a Lua script, so limits hold across APIs.
 */
import { Queue, QueueEvents, WaitingError, Worker, type Job as BullJob } from 'bullmq';
import type { PromptConfig } from '../../clip/types.js';
import type { Logger } from '../../logger.js';
import type { Admission, AdmissionLimits, JobHandler, JobQueue, JobWork, QueueCounts } from '../JobQueue.js';
import { closeConnection, viaRedis, type Redis } from './connection.js';

export interface StallSettings {
  /** How long a worker's lock on a job lasts without renewal, in ms (renewed at half of it while the job runs). */
  lockDurationMs: number;
  /** How often each worker looks for jobs whose lock expired, in ms. */
  stalledIntervalMs: number;
  /** How many times a job may lose its worker and be redelivered before it fails with WORKER_LOST. */
  maxStalledCount: number;
}

export interface BullJobQueueOptions {
  /** Command connection (fails fast): admission, producer, cancel publishing. */
  redis: Redis;
  /** Builds connections that wait for Redis (BullMQ workers, subscribers); called only by processing queues. */
  connect: () => Redis;
  keyPrefix: string;
  stall: StallSettings;
  logger: Logger;
}

interface WorkData {
  id: string;
  images: string[];
  prompt: PromptConfig;
}

const QUEUE_NAME = 'jobs';
// BullMQ's own reason for a job past maxStalledCount (moveStalledJobsToWait.lua).
const STALLED_REASON = 'job stalled more than allowable limit';
const COUNTS_REFRESH_MS = 1000;
/** How often a drain checks whether Redis went away while nothing runs here, in ms. */
const UNREACHABLE_POLL_MS = 100;
/** Longest wait for one of BullMQ's closes before the connections are cut, in ms (a close with Redis up takes a few). */
const CLOSE_MS = 1000;

/** Waits for `promise` to settle, at most `ms` (its timer does not keep the process alive). */
async function settleWithin(promise: Promise<unknown> | undefined, ms: number): Promise<void> {
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

// KEYS: counts hash, reservations hash; ARGV: id, images, bytes, maxJobs, maxImages, maxBytes.
const RESERVE = `
local jobs = tonumber(redis.call('HGET', KEYS[1], 'jobs') or '0')
local images = tonumber(redis.call('HGET', KEYS[1], 'images') or '0')
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
if jobs >= tonumber(ARGV[4]) then return {0, 'jobs', jobs, images, bytes} end
if images + tonumber(ARGV[2]) > tonumber(ARGV[5]) then return {0, 'images', jobs, images, bytes} end
if bytes + tonumber(ARGV[3]) > tonumber(ARGV[6]) then return {0, 'imageBytes', jobs, images, bytes} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
redis.call('HINCRBY', KEYS[1], 'jobs', 1)
redis.call('HINCRBY', KEYS[1], 'images', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[3])
return {1, '', jobs + 1, images + tonumber(ARGV[2]), bytes + tonumber(ARGV[3])}`;

// KEYS: counts hash, reservations hash; ARGV: id. Idempotent: a second release of one id does nothing.
const RELEASE = `
local reserved = redis.call('HGET', KEYS[2], ARGV[1])
if not reserved then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
local sep = string.find(reserved, ':')
redis.call('HINCRBY', KEYS[1], 'jobs', -1)
redis.call('HINCRBY', KEYS[1], 'images', -tonumber(string.sub(reserved, 1, sep - 1)))
redis.call('HINCRBY', KEYS[1], 'bytes', -tonumber(string.sub(reserved, sep + 1)))
return 1`;

export class BullJobQueue implements JobQueue {
  readonly #redis: Redis;
  readonly #connect: () => Redis;
  readonly #prefix: string;
  readonly #stall: StallSettings;
  readonly #logger: Logger;
  readonly #queue: Queue<WorkData>;
  /** The producer's own connection: BullMQ's setup needs one that waits for Redis; calls on it are refused while it is down. */
  readonly #producer: Redis;
  readonly #running = new Map<string, AbortController>();
  readonly #lostListeners: ((id: string) => void)[] = [];
  readonly #ownedConnections: Redis[] = [];
  #worker: Worker<WorkData> | null = null;
  /** Set when this worker lets go of its running jobs (drain past its timeout, close): they go back to the queue. */
  #handingBack = false;
  #queueEvents: QueueEvents | null = null;
  #cancelSubscriber: Redis | null = null;
  #lastCounts: QueueCounts = { jobs: 0, waiting: 0, active: 0, images: 0, imageBytes: 0 };
  readonly #refresh: NodeJS.Timeout;
  #closed: Promise<void> | null = null;

  constructor(options: BullJobQueueOptions) {
    this.#redis = options.redis;
    this.#connect = options.connect;
    this.#prefix = options.keyPrefix;
    this.#stall = options.stall;
    this.#logger = options.logger;
    this.#producer = this.#own(this.#connect());
    this.#queue = new Queue<WorkData>(QUEUE_NAME, { connection: this.#producer, prefix: this.#prefix });
    this.#queue.on('error', (error) => this.#logger.warn({ err: error }, 'job queue connection error'));
    // Metrics read the cluster-wide depth without a round trip per scrape.
    this.#refresh = setInterval(() => void this.counts().catch(() => undefined), COUNTS_REFRESH_MS);
    this.#refresh.unref();
  }

  async reserve(id: string, imageCount: number, imageBytes: number, limits: AdmissionLimits): Promise<Admission> {
    const reply = (await viaRedis(() =>
      this.#redis.eval(RESERVE, 2, this.#countsKey(), this.#reservationsKey(), id, imageCount, imageBytes, limits.maxJobs, limits.maxImages, limits.maxImageBytes),
    )) as [number, string, number, number, number];
    const [admitted, limit, jobs, images, bytes] = reply;
    const counts = { ...this.#lastCounts, jobs, images, imageBytes: bytes };
    this.#lastCounts = counts;
    if (admitted === 1) return { admitted: true };
    return { admitted: false, limit: limit as 'jobs' | 'images' | 'imageBytes', counts };
  }

  async release(id: string): Promise<void> {
    await viaRedis(() => this.#redis.eval(RELEASE, 2, this.#countsKey(), this.#reservationsKey(), id));
  }

  async enqueue(work: JobWork): Promise<void> {
    const data: WorkData = { id: work.id, images: work.images.map((bytes) => Buffer.from(bytes).toString('base64')), prompt: work.prompt };
    await viaRedis(() => this.#queue.add('job', data, { jobId: work.id, removeOnComplete: true, removeOnFail: true, attempts: 5, backoff: { type: 'exponential', delay: 500 } }), this.#producer);
  }

  process(handler: JobHandler, concurrency: number): void {
    if (this.#worker !== null) throw new Error('BullJobQueue: process() was already called');
    const workerConnection = this.#own(this.#connect());
    this.#worker = new Worker<WorkData>(
      QUEUE_NAME,
      async (job: BullJob<WorkData>, token?: string) => {
        const { id, images, prompt } = job.data;
        const controller = new AbortController();
        this.#running.set(id, controller);
        let handedBack = false;
        try {
          await handler({ id, images: images.map((text) => new Uint8Array(Buffer.from(text, 'base64'))), prompt }, controller.signal);
          // Let go of before it finished (a cancel aborts too, but then the job is CANCELLED and its next run a no-op):
          // back to the queue, so another worker runs it now instead of BullMQ counting it done and the store
          // keeping it RUNNING forever. The job keeps its admission until that run ends.
          handedBack = this.#handingBack && controller.signal.aborted;
          if (handedBack) {
            await job.moveToWait(token);
            this.#logger.info({ jobId: id }, 'job handed back to the queue');
            throw new WaitingError();
          }
        } finally {
          this.#running.delete(id);
          if (!handedBack) await this.release(id).catch((error: unknown) => this.#logger.warn({ err: error, jobId: id }, 'releasing a job reservation failed'));
        }
      },
      {
        connection: workerConnection,
        prefix: this.#prefix,
        concurrency,
        lockDuration: this.#stall.lockDurationMs,
        stalledInterval: this.#stall.stalledIntervalMs,
        maxStalledCount: this.#stall.maxStalledCount,
        removeOnComplete: { count: 0 },
        removeOnFail: { count: 0 },
      },
    );
    this.#worker.on('error', (error) => this.#logger.warn({ err: error }, 'job worker connection error'));
    this.#worker.on('stalled', (jobId) => this.#logger.warn({ jobId }, 'a job lost its worker; redelivering it'));

    // Jobs past the stall bound are failed inside a BullMQ script and announced only on the events stream.
    this.#queueEvents = new QueueEvents(QUEUE_NAME, { connection: this.#own(this.#connect()), prefix: this.#prefix });
    this.#queueEvents.on('error', (error) => this.#logger.warn({ err: error }, 'job events connection error'));
    this.#queueEvents.on('failed', ({ jobId, failedReason }) => {
      if (failedReason !== STALLED_REASON) return;
      for (const listener of this.#lostListeners) listener(jobId);
      void this.release(jobId).catch(() => undefined);
    });

    const subscriber = this.#own(this.#connect());
    this.#cancelSubscriber = subscriber;
    subscriber.on('message', (channel: string, id: string) => {
      if (channel === this.#cancelChannel()) this.#running.get(id)?.abort();
    });
    void subscriber.subscribe(this.#cancelChannel()).catch((error: unknown) => this.#logger.warn({ err: error }, 'cancel channel subscription failed'));
  }

  producerReady(): boolean {
    return this.#producer.status === 'ready';
  }

  /** Resolves once this worker consumes the queue and hears cancels (tests wait for it). */
  async ready(): Promise<void> {
    await this.#worker?.waitUntilReady();
    await this.#queueEvents?.waitUntilReady();
  }

  async cancel(id: string): Promise<void> {
    const job = await viaRedis(() => this.#queue.getJob(id), this.#producer);
    if (job !== undefined) {
      try {
        // Fails while a worker holds the job's lock: then the cancel message below reaches that worker.
        await job.remove();
        await this.release(id);
      } catch {
        // Running somewhere.
      }
    }
    await viaRedis(() => this.#redis.publish(this.#cancelChannel(), id));
  }

  async counts(): Promise<QueueCounts> {
    const [[jobs, images, bytes], queueCounts] = await Promise.all([
      viaRedis(() => this.#redis.hmget(this.#countsKey(), 'jobs', 'images', 'bytes')),
      viaRedis(() => this.#queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active'), this.#producer),
    ]);
    const counts: QueueCounts = {
      jobs: Number(jobs ?? 0),
      images: Number(images ?? 0),
      imageBytes: Number(bytes ?? 0),
      waiting: (queueCounts.waiting ?? 0) + (queueCounts.prioritized ?? 0) + (queueCounts.delayed ?? 0),
      active: queueCounts.active ?? 0,
    };
    this.#lastCounts = counts;
    return counts;
  }

  lastCounts(): QueueCounts {
    return this.#lastCounts;
  }

  onLost(listener: (id: string) => void): void {
    this.#lostListeners.push(listener);
  }

  /**
   * Stops taking jobs and lets the running ones finish (at most `timeoutMs`); waiting work stays in Redis for
   * the other workers. Past the timeout the worker lets go: its running jobs are aborted and moved back to the
   * queue, where another worker takes them (or, if Redis cannot be told, their locks lapse and the stalled check does).
   * With Redis unreachable and none of this worker's jobs running, there is nothing left to finish or record:
   * the worker lets go at once (BullMQ's graceful close would wait for Redis to come back, issue 13).
   */
  async drain(timeoutMs: number): Promise<string[]> {
    const worker = this.#worker;
    if (worker === null) return [];
    const closed = worker.close().then(
      () => 'closed' as const,
      () => 'closed' as const,
    );
    let timer: NodeJS.Timeout | undefined;
    let poll: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      closed,
      new Promise<'timed out'>((resolve) => {
        timer = setTimeout(() => resolve('timed out'), timeoutMs);
      }),
      new Promise<'unreachable'>((resolve) => {
        poll = setInterval(() => {
          if (this.#running.size === 0 && this.#redis.status !== 'ready') resolve('unreachable');
        }, UNREACHABLE_POLL_MS);
      }),
    ]);
    clearTimeout(timer);
    clearInterval(poll);
    if (outcome === 'timed out') this.#logger.warn({ jobs: [...this.#running.keys()] }, 'drain timed out; running jobs are left to the other workers');
    if (outcome === 'unreachable') this.#logger.warn('Redis is unreachable and no job is running here; stopping without waiting for it');
    if (outcome !== 'closed') {
      this.#handingBack = true;
      for (const controller of this.#running.values()) controller.abort();
      // The aborted jobs return at once; what is left of BullMQ's close may need Redis, so it gets CLOSE_MS
      // (and nothing when Redis is away). `close` cuts the connections. (A second `close(true)` would only return
      // the pending graceful close, and BullMQ's `disconnect` first waits for a connection to be ready.)
      if (outcome === 'timed out') await settleWithin(closed, CLOSE_MS);
    }
    return [];
  }

  close(): Promise<void> {
    this.#closed ??= this.#doClose();
    return this.#closed;
  }

  async #doClose(): Promise<void> {
    clearInterval(this.#refresh);
    this.#handingBack = true;
    for (const controller of this.#running.values()) controller.abort();
    // BullMQ's closes talk to Redis (QUIT, the end of blocking reads): with Redis away they would wait for its
    // return (issue 13). They get CLOSE_MS together; then our connections are cut, failing what still waits.
    await Promise.all([settleWithin(this.#worker?.close(true), CLOSE_MS), settleWithin(this.#queueEvents?.close(), CLOSE_MS), settleWithin(this.#queue.close(), CLOSE_MS)]);
    for (const connection of this.#ownedConnections) await closeConnection(connection);
  }

  #own(connection: Redis): Redis {
    this.#ownedConnections.push(connection);
    return connection;
  }

  #countsKey(): string {
    return `${this.#prefix}:admission`;
  }

  #reservationsKey(): string {
    return `${this.#prefix}:reservations`;
  }

  #cancelChannel(): string {
    return `${this.#prefix}:cancel`;
  }
}
