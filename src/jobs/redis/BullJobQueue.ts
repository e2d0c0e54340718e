/**
 * The JobQueue on BullMQ: a BullMQ job (our id, the prompt settings) per job, removed from Redis as soon as it
 * completes or fails (`removeOnComplete`/`removeOnFail`: BullMQ keeps finished jobs otherwise). The image bytes do
 * not travel in BullMQ's JSON: they are a binary list under their own key (no base64, no JSON of bytes) that expires
 * with the job, so a job whose TTL runs out while it waits takes its bytes with it even if no process is left.
 * An expiry sweep (every process, every second) releases the admission counts of expired jobs and removes their
 * BullMQ entries. BullMQ's stalled-job recovery hands the work of a lost worker to another one (`lockDuration`,
 * `stalledInterval`, `maxStalledCount`); past the bound the job is given up, and the worker fails it with
 * WORKER_LOST. BullMQ cannot cancel a job running in another process, so cancels travel on our own channel.
 * Admission counts live in one Redis hash, checked and taken by a Lua script, so limits hold across APIs.
 */
import { Queue, QueueEvents, WaitingError, Worker, type Job as BullJob } from 'bullmq';
import type { PromptConfig } from '../../clip/index.js';
import type { Logger } from '../../logger.js';
import type {
  Admission,
  AdmissionLimit,
  AdmissionLimits,
  GiveUpReason,
  JobHandler,
  JobQueue,
  JobWork,
  OwnerCounts,
  QueueCounts,
  Reservation,
} from '../JobQueue.js';
import { retryWhileUnreachable } from '../retry.js';
import { jobFromJSON, jobToJSON } from '../serialise.js';
import { closeConnection, viaRedis, type Redis } from './connection.js';
import { RedisKeys } from './keys.js';

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

// KEYS: counts hash, reservations hash, images list, owners hash; ARGV: id, images, bytes, maxJobs, maxImages, maxBytes,
// expiresAt ms, owner ('' for none), maxOwnerJobs, maxOwnerImages, then the images' bytes. Admits (the rule of
// admission.ts) and keeps the bytes (expiring with the job) in one step, one round trip. A reservation reads
// `images:bytes:expiresAt:owner`; the owners hash holds `<owner>:jobs` and `<owner>:images` while the owner has any.
const RESERVE = `
local jobs = tonumber(redis.call('HGET', KEYS[1], 'jobs') or '0')
local images = tonumber(redis.call('HGET', KEYS[1], 'images') or '0')
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
if jobs >= tonumber(ARGV[4]) then return {0, 'jobs', jobs, images, bytes} end
if images + tonumber(ARGV[2]) > tonumber(ARGV[5]) then return {0, 'images', jobs, images, bytes} end
if bytes + tonumber(ARGV[3]) > tonumber(ARGV[6]) then return {0, 'imageBytes', jobs, images, bytes} end
local owner = ARGV[8]
local ownJobs, ownImages = 0, 0
if owner ~= '' then
  ownJobs = tonumber(redis.call('HGET', KEYS[4], owner .. ':jobs') or '0')
  ownImages = tonumber(redis.call('HGET', KEYS[4], owner .. ':images') or '0')
  if ownJobs >= tonumber(ARGV[9]) then return {0, 'ownerJobs', jobs, images, bytes, ownJobs, ownImages} end
  if ownImages + tonumber(ARGV[2]) > tonumber(ARGV[10]) then return {0, 'ownerImages', jobs, images, bytes, ownJobs, ownImages} end
  redis.call('HINCRBY', KEYS[4], owner .. ':jobs', 1)
  redis.call('HINCRBY', KEYS[4], owner .. ':images', ARGV[2])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[7] .. ':' .. owner)
redis.call('HINCRBY', KEYS[1], 'jobs', 1)
redis.call('HINCRBY', KEYS[1], 'images', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[3])
if #ARGV >= 11 then
  for i = 11, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
  redis.call('PEXPIREAT', KEYS[3], ARGV[7])
end
return {1, '', jobs + 1, images + tonumber(ARGV[2]), bytes + tonumber(ARGV[3]), ownJobs + 1, ownImages + tonumber(ARGV[2])}`;

// Shared by RELEASE and SWEEP: forgets a reservation (its value is images:bytes:expiresAt[:owner]) and takes it off
// the counts, its owner's included (whose fields go once it has no job left, so the hash holds only active owners).
const UNRESERVE = `
local function unreserve(counts, reservations, owners, id, reserved)
  local images, bytes, owner = string.match(reserved, '^(%d+):(%d+):%d+:?(.*)$')
  redis.call('HDEL', reservations, id)
  redis.call('HINCRBY', counts, 'jobs', -1)
  redis.call('HINCRBY', counts, 'images', -tonumber(images or '0'))
  redis.call('HINCRBY', counts, 'bytes', -tonumber(bytes or '0'))
  if owner ~= nil and owner ~= '' then
    if redis.call('HINCRBY', owners, owner .. ':jobs', -1) <= 0 then
      redis.call('HDEL', owners, owner .. ':jobs', owner .. ':images')
    else
      redis.call('HINCRBY', owners, owner .. ':images', -tonumber(images or '0'))
    end
  end
end`;

// KEYS: counts hash, reservations hash, images list, owners hash; ARGV: id. Idempotent: a second release of one id does nothing.
const RELEASE = `${UNRESERVE}
redis.call('DEL', KEYS[3])
local reserved = redis.call('HGET', KEYS[2], ARGV[1])
if not reserved then return 0 end
unreserve(KEYS[1], KEYS[2], KEYS[4], ARGV[1], reserved)
return 1`;

// KEYS: counts hash, reservations hash, the store's index, owners hash; ARGV: job key prefix, images key prefix.
// Releases every reservation past its job's expiry whose job is gone from the store (it expired while it waited, or
// its release was lost), with its bytes and index entry; returns their ids. The job keys it checks are computed
// here, not passed in KEYS: fine on one Redis (not Redis Cluster), like the deployment itself. Redis's own clock
// decides, as it does for the job keys' expiry.
const SWEEP = `${UNRESERVE}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local entries = redis.call('HGETALL', KEYS[2])
local swept = {}
for i = 1, #entries, 2 do
  local id, reserved = entries[i], entries[i + 1]
  local expires = tonumber(string.match(reserved, '^%d+:%d+:(%d+)') or '')
  if expires ~= nil and expires <= now and redis.call('EXISTS', ARGV[1] .. id) == 0 then
    unreserve(KEYS[1], KEYS[2], KEYS[4], id, reserved)
    redis.call('DEL', ARGV[2] .. id)
    redis.call('ZREM', KEYS[3], id)
    swept[#swept + 1] = id
  end
end
return swept`;

export class BullJobQueue implements JobQueue {
  readonly #redis: Redis;
  readonly #connect: () => Redis;
  readonly #prefix: string;
  readonly #keys: RedisKeys;
  readonly #stall: StallSettings;
  readonly #logger: Logger;
  readonly #queue: Queue<WorkData>;
  /** The producer's own connection: BullMQ's setup needs one that waits for Redis; calls on it are refused while it is down. */
  readonly #producer: Redis;
  readonly #running = new Map<string, AbortController>();
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
    const { id, owner, expiresAt } = reservation;
    const images = reservation.images.map((bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    const imageBytes = images.reduce((sum, bytes) => sum + bytes.byteLength, 0);
    const reply = (await viaRedis(() =>
      this.#redis.eval(
        RESERVE,
        4,
        this.#keys.admission,
        this.#keys.reservations,
        this.#keys.images(id),
        this.#keys.admissionOwners,
        id,
        images.length,
        imageBytes,
        limits.maxJobs,
        limits.maxImages,
        limits.maxImageBytes,
        expiresAt.getTime(),
        owner ?? '',
        limits.maxJobsPerOwner,
        limits.maxImagesPerOwner,
        ...images,
      ),
    )) as [number, string, number, number, number, number?, number?];
    const [admitted, limit, jobs, imageCount, bytes, ownJobs, ownImages] = reply;
    const owners =
      owner === null || ownJobs === undefined
        ? this.#lastCounts.owners
        : { ...this.#lastCounts.owners, [owner]: { jobs: ownJobs, images: ownImages ?? 0 } };
    const counts = { ...this.#lastCounts, jobs, images: imageCount, imageBytes: bytes, owners };
    this.#lastCounts = counts;
    if (admitted === 1) return { admitted: true };
    return { admitted: false, limit: limit as AdmissionLimit, counts };
  }

  async release(id: string): Promise<void> {
    await viaRedis(() =>
      this.#redis.eval(
        RELEASE,
        4,
        this.#keys.admission,
        this.#keys.reservations,
        this.#keys.images(id),
        this.#keys.admissionOwners,
        id,
      ),
    );
  }

  /**
   * Releases the reservations of jobs that expired (gone from the store past their expiry), deletes their bytes, and
   * removes their BullMQ entries if they still wait. Every process runs it every second; it is idempotent. Resolves to
   * the ids swept.
   */
  async sweepExpired(): Promise<string[]> {
    const swept = (await viaRedis(() =>
      this.#redis.eval(
        SWEEP,
        4,
        this.#keys.admission,
        this.#keys.reservations,
        this.#keys.index,
        this.#keys.admissionOwners,
        this.#keys.jobPrefix,
        this.#keys.imagesPrefix,
      ),
    )) as string[];
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

  /** The job's image bytes, their expiry moved to `keepUntil`, in one round trip; undefined when the key is gone. */
  async #loadImages(id: string, keepUntil: Date): Promise<Uint8Array[] | undefined> {
    const key = this.#keys.images(id);
    const replies = throwOnFailure(
      await viaRedis(() => this.#redis.multi().pexpireat(key, keepUntil.getTime()).lrangeBuffer(key, 0, -1).exec()),
    );
    const [extended, images] = replies as [number, Buffer[]];
    return extended === 1 ? images : undefined;
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
            { id, prompt, job: queued, loadImages: (keepUntil) => this.#loadImages(id, keepUntil) },
            controller.signal,
          );
        } finally {
          this.#running.delete(id);
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
    await viaRedis(() => this.#redis.publish(this.#keys.cancel, id));
  }

  async counts(): Promise<QueueCounts> {
    const [[jobs, images, bytes], owners, queueCounts] = await Promise.all([
      viaRedis(() => this.#redis.hmget(this.#keys.admission, 'jobs', 'images', 'bytes')),
      viaRedis(() => this.#redis.hgetall(this.#keys.admissionOwners)),
      viaRedis(() => this.#queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active'), this.#producer),
    ]);
    const counts: QueueCounts = {
      jobs: Number(jobs ?? 0),
      images: Number(images ?? 0),
      imageBytes: Number(bytes ?? 0),
      owners: ownerCountsFrom(owners),
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
    // return (issue 13). They get CLOSE_MS together; then our connections are cut, failing what still waits.
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

/** The owners hash (`<owner>:jobs`, `<owner>:images`) as counts per owner. */
function ownerCountsFrom(fields: Record<string, string>): Record<string, OwnerCounts> {
  const owners: Record<string, OwnerCounts> = {};
  for (const [field, value] of Object.entries(fields)) {
    const split = field.lastIndexOf(':');
    const owner = field.slice(0, split);
    const kind = field.slice(split + 1);
    const counts = (owners[owner] ??= { jobs: 0, images: 0 });
    if (kind === 'jobs') counts.jobs = Number(value);
    else if (kind === 'images') counts.images = Number(value);
  }
  return owners;
}

/** The replies of a MULTI, or the first command's error (a MULTI resolves even when a command in it failed). */
function throwOnFailure(replies: [Error | null, unknown][] | null): unknown[] {
  if (replies === null) throw new Error('Redis discarded the transaction');
  for (const [error] of replies) if (error !== null) throw error;
  return replies.map(([, reply]) => reply);
}
