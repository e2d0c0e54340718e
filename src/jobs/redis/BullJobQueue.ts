/**
 * The JobQueue on BullMQ: a BullMQ job (our id, the prompt settings) per job, removed from Redis as soon as it
 * completes or fails (`removeOnComplete`/`removeOnFail`: BullMQ keeps finished jobs otherwise). The image bytes do
 * not travel in BullMQ's JSON: RedisAdmission keeps them with the job's reservation, expiring with the job.
 * An expiry sweep (every process, every second) releases the admission counts of expired jobs and removes their
 * BullMQ entries. BullMQ's stalled-job recovery hands the work of a lost worker to another one (`lockDuration`,
 * `stalledInterval`, `maxStalledCount`); past the bound the job is given up, and the worker fails it with
 * WORKER_LOST. BullMQ cannot cancel a job running in another process, so cancels travel on our own channel.
 * Admission (the cluster-wide counts, checked and taken in one Lua script) is RedisAdmission's.
 */
import { Queue, QueueEvents, WaitingError, Worker, type Job as BullJob } from 'bullmq';
import type { PromptConfig } from '../../clip/index.js';
import type { Logger } from '../../logger.js';
import type {
  Admission,
  AdmissionLimits,
  GiveUpReason,
  JobHandler,
  JobQueue,
  JobWork,
  QueueCounts,
  Reservation,
} from '../JobQueue.js';
import { retryWhileUnreachable } from '../retry.js';
import { jobFromJSON, jobToJSON } from '../serialise.js';
import { closeConnection, settleWithin, viaRedis, whenReady, type Redis } from './connection.js';
import { RedisKeys } from './keys.js';
import { RedisAdmission } from './RedisAdmission.js';

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
  prompt: PromptConfig;
  /** The job's JSON as enqueued (serialise.ts). */
  job: string;
}

const QUEUE_NAME = 'jobs';
// BullMQ's own reason for a job past maxStalledCount (moveStalledJobsToWait.lua).
const STALLED_REASON = 'job stalled more than allowable limit';
const COUNTS_REFRESH_MS = 1000;
/** The command connection's events after which it may no longer be ready (ioredis sets the status first). */
const CONNECTION_LOST_EVENTS = ['close', 'reconnecting', 'connecting', 'end'] as const;
/** Longest wait for one of BullMQ's closes before the connections are cut, in ms (a close with Redis up takes a few). */
const CLOSE_MS = 1000;

export class BullJobQueue implements JobQueue {
  readonly #redis: Redis;
  readonly #connect: () => Redis;
  readonly #prefix: string;
  readonly #keys: RedisKeys;
  readonly #admission: RedisAdmission;
  readonly #stall: StallSettings;
  readonly #logger: Logger;
  readonly #queue: Queue<WorkData>;
  /** The producer's own connection: BullMQ's setup needs one that waits for Redis; calls on it are refused while it is down. */
  readonly #producer: Redis;
  readonly #running = new Map<string, AbortController>();
  /** Called whenever a job stops running here. */
  readonly #runningEnded = new Set<() => void>();
  readonly #givenUpListeners: ((id: string, reason: GiveUpReason) => void)[] = [];
  /** Aborted by close: ends the retries of writes that must outlive a Redis outage. */
  readonly #closing = new AbortController();
  readonly #ownedConnections: Redis[] = [];
  #worker: Worker<WorkData> | null = null;
  /** Set when this worker lets go of its running jobs (drain past its timeout, close): they go back to the queue. */
  #handingBack = false;
  #queueEvents: QueueEvents | null = null;
  #lastCounts: QueueCounts = { jobs: 0, waiting: 0, active: 0, images: 0, imageBytes: 0, owners: {} };
  readonly #refresh: NodeJS.Timeout;
  #closed: Promise<void> | null = null;

  constructor(options: BullJobQueueOptions) {
    this.#redis = options.redis;
    this.#connect = options.connect;
    this.#prefix = options.keyPrefix;
    this.#keys = new RedisKeys(options.keyPrefix);
    this.#admission = new RedisAdmission(options.redis, this.#keys);
    this.#stall = options.stall;
    this.#logger = options.logger;
    this.#producer = this.#own(this.#connect());
    this.#queue = new Queue<WorkData>(QUEUE_NAME, { connection: this.#producer, prefix: this.#prefix });
    this.#queue.on('error', (error) => this.#logger.warn({ err: error }, 'job queue connection error'));
    // Expired jobs leave the counts, and metrics read the cluster-wide depth without a round trip per scrape.
    this.#refresh = setInterval(
      () =>
        void this.sweepExpired()
          .then(() => this.counts())
          .catch(() => undefined),
      COUNTS_REFRESH_MS,
    );
    this.#refresh.unref();
  }

  async reserve(reservation: Reservation, limits: AdmissionLimits): Promise<Admission> {
    const { admitted, limit, counts } = await this.#admission.reserve(reservation, limits, this.#lastCounts);
    this.#lastCounts = { ...this.#lastCounts, ...counts };
    return admitted ? { admitted: true } : { admitted: false, limit, counts: this.#lastCounts };
  }

  release(id: string): Promise<void> {
    return this.#admission.release(id);
  }

  /**
   * Releases the reservations of jobs that expired (gone from the store past their expiry), deletes their bytes, and
   * removes their BullMQ entries if they still wait. Every process runs it every second; it is idempotent. Resolves to
   * the ids swept.
   */
  async sweepExpired(): Promise<string[]> {
    const swept = await this.#admission.sweepExpired();
    for (const id of swept) {
      // Refused (0) while a worker holds the job: that worker finds the job gone and drops it.
      await viaRedis(() => this.#queue.remove(id), this.#producer).catch(() => undefined);
    }
    if (swept.length > 0) this.#logger.info({ jobs: swept.length }, 'expired jobs removed from the queue');
    return swept;
  }

  async enqueue(work: JobWork): Promise<void> {
    // The bytes are already in Redis, kept by `reserve`: BullMQ's JSON carries the id, the prompt and the queued job.
    const data: WorkData = { id: work.id, prompt: work.prompt, job: jobToJSON(work.job) };
    // Attempts cover a handler that rejects (its worker shut down during a Redis outage): the job is delivered again.
    await viaRedis(
      () =>
        this.#queue.add('job', data, {
          jobId: work.id,
          removeOnComplete: true,
          removeOnFail: true,
          attempts: 5,
          backoff: { type: 'exponential', delay: 500 },
        }),
      this.#producer,
    );
  }

  process(handler: JobHandler, concurrency: number): void {
    if (this.#worker !== null) throw new Error('BullJobQueue: process() was already called');
    const workerConnection = this.#own(this.#connect());
    this.#worker = new Worker<WorkData>(
      QUEUE_NAME,
      async (job: BullJob<WorkData>, token?: string) => {
        const { id, prompt } = job.data;
        const queued = jobFromJSON(job.data.job);
        const controller = new AbortController();
        this.#running.set(id, controller);
        try {
          // A rejection leaves the delivery unacknowledged: retried, or taken over by another worker once the lock lapses.
          await handler(
            { id, prompt, job: queued, loadImages: (keepUntil) => this.#admission.loadImages(id, keepUntil) },
            controller.signal,
          );
        } finally {
          this.#running.delete(id);
          for (const listener of this.#runningEnded) listener();
        }
        // Let go of before it finished (a cancel aborts too, but then the job is CANCELLED and its next run a no-op):
        // back to the queue, so another worker runs it now instead of BullMQ counting it done and the store
        // keeping it RUNNING forever. The job keeps its admission until that run ends.
        if (this.#handingBack && controller.signal.aborted) {
          await job.moveToWait(token);
          this.#logger.info({ jobId: id }, 'job handed back to the queue');
          throw new WaitingError();
        }
        // Released only once the job's state is stored; retried through an outage, so the counts never keep a finished job.
        await retryWhileUnreachable(() => this.release(id), {
          signal: this.#closing.signal,
          onOutage: (error) =>
            this.#logger.warn(
              { err: error, jobId: id },
              'releasing a job reservation failed; retrying until Redis is back',
            ),
        });
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

    // Jobs past the stall bound are failed inside a BullMQ script and announced only on the events stream; so are
    // jobs whose every attempt failed (retries are 'delayed' or 'waiting' events: 'failed' is final).
    this.#queueEvents = new QueueEvents(QUEUE_NAME, { connection: this.#own(this.#connect()), prefix: this.#prefix });
    this.#queueEvents.on('error', (error) => this.#logger.warn({ err: error }, 'job events connection error'));
    this.#queueEvents.on('failed', ({ jobId, failedReason }) => {
      const reason: GiveUpReason = failedReason === STALLED_REASON ? 'stalled' : 'failed';
      this.#logger.warn({ jobId, reason, failedReason }, 'the queue gave a job up');
      for (const listener of this.#givenUpListeners) listener(jobId, reason);
      void this.release(jobId).catch(() => undefined);
    });

    const subscriber = this.#own(this.#connect());
    subscriber.on('message', (channel: string, id: string) => {
      if (channel === this.#keys.cancel) this.#running.get(id)?.abort();
    });
    void subscriber
      .subscribe(this.#keys.cancel)
      .catch((error: unknown) => this.#logger.warn({ err: error }, 'cancel channel subscription failed'));
  }

  /** Resolves to true once the producer's connection is ready, or to false after `timeoutMs`. */
  producerReady(timeoutMs: number): Promise<boolean> {
    return whenReady(this.#producer, timeoutMs);
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
    await viaRedis(() => this.#redis.publish(this.#keys.cancel, id));
  }

  async counts(): Promise<QueueCounts> {
    const [admission, queueCounts] = await Promise.all([
      this.#admission.counts(),
      viaRedis(() => this.#queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active'), this.#producer),
    ]);
    const counts: QueueCounts = {
      ...admission,
      waiting: (queueCounts.waiting ?? 0) + (queueCounts.prioritized ?? 0) + (queueCounts.delayed ?? 0),
      active: queueCounts.active ?? 0,
    };
    this.#lastCounts = counts;
    return counts;
  }

  lastCounts(): QueueCounts {
    return this.#lastCounts;
  }

  onGivenUp(listener: (id: string, reason: GiveUpReason) => void): void {
    this.#givenUpListeners.push(listener);
  }

  /**
   * Stops taking jobs and lets the running ones finish (at most `timeoutMs`); waiting work stays in Redis for
   * the other workers. Past the timeout the worker lets go: its running jobs are aborted and moved back to the
   * queue, where another worker takes them (or, if Redis cannot be told, their locks lapse and the stalled check does).
   * With Redis unreachable and none of this worker's jobs running, there is nothing left to finish or record:
   * the worker lets go at once (BullMQ's graceful close would wait for Redis to come back, holding the stop).
   */
  async drain(timeoutMs: number): Promise<string[]> {
    const worker = this.#worker;
    if (worker === null) return [];
    const closed = worker.close().then(
      () => 'closed' as const,
      () => 'closed' as const,
    );
    let timer: NodeJS.Timeout | undefined;
    const unreachable = this.#whenIdleAndUnreachable();
    const outcome = await Promise.race([
      closed,
      new Promise<'timed out'>((resolve) => {
        timer = setTimeout(() => resolve('timed out'), timeoutMs);
      }),
      unreachable.reached.then(() => 'unreachable' as const),
    ]);
    clearTimeout(timer);
    unreachable.cancel();
    if (outcome === 'timed out')
      this.#logger.warn(
        { jobs: [...this.#running.keys()] },
        'drain timed out; running jobs are left to the other workers',
      );
    if (outcome === 'unreachable')
      this.#logger.warn('Redis is unreachable and no job is running here; stopping without waiting for it');
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

  /**
   * Resolves once no job runs here while the command connection is not ready (Redis away): nothing is left to finish
   * or record. Checked when the connection changes state and when a job stops running, never on a timer.
   */
  #whenIdleAndUnreachable(): { reached: Promise<void>; cancel: () => void } {
    let check = (): void => undefined;
    const reached = new Promise<void>((resolve) => {
      check = () => {
        if (this.#running.size === 0 && this.#redis.status !== 'ready') resolve();
      };
    });
    for (const event of CONNECTION_LOST_EVENTS) this.#redis.on(event, check);
    this.#runningEnded.add(check);
    check();
    return {
      reached,
      cancel: () => {
        for (const event of CONNECTION_LOST_EVENTS) this.#redis.off(event, check);
        this.#runningEnded.delete(check);
      },
    };
  }

  close(): Promise<void> {
    this.#closed ??= this.#doClose();
    return this.#closed;
  }

  async #doClose(): Promise<void> {
    clearInterval(this.#refresh);
    this.#handingBack = true;
    this.#closing.abort();
    for (const controller of this.#running.values()) controller.abort();
    // BullMQ's closes talk to Redis (QUIT, the end of blocking reads): with Redis away they would wait for its
    // return, holding the stop. They get CLOSE_MS together; then our connections are cut, failing what still waits.
    await Promise.all([
      settleWithin(this.#worker?.close(true), CLOSE_MS),
      settleWithin(this.#queueEvents?.close(), CLOSE_MS),
      settleWithin(this.#queue.close(), CLOSE_MS),
    ]);
    for (const connection of this.#ownedConnections) await closeConnection(connection);
  }

  #own(connection: Redis): Redis {
    this.#ownedConnections.push(connection);
    return connection;
  }
}
