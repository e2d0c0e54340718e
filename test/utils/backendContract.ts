/**
 * One contract, two backends: the job backend suite that test/integration/jobs/backends.memory.test.ts runs on the
 * memory backend and test/system/backends.redis.test.ts on the Redis backend (RedisJobStore, RedisJobEvents,
 * BullJobQueue) against a real redis-server. JobService (API side) and JobWorker (worker side) run on each exactly
 * as the roles compose them.
 */
import { OPEN_CALLER } from '../../src/jobs/caller.js';
import { randomUUID } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../src/errors.js';
import type {
  ClassifyRequest,
  ClassifyResult,
  EmbeddingVectors,
  ModelInfo,
  PromptConfig,
} from '../../src/clip/types.js';
import { JobService } from '../../src/jobs/JobService.js';
import type { JobClassifier } from '../../src/jobs/validation.js';
import { JobWorker, type JobRunner } from '../../src/jobs/JobWorker.js';
import type { JobEvents } from '../../src/jobs/JobEvents.js';
import type { JobQueue } from '../../src/jobs/JobQueue.js';
import type { JobStore } from '../../src/jobs/JobStore.js';
import { MemoryJobEvents } from '../../src/jobs/memory/MemoryJobEvents.js';
import { MemoryJobQueue } from '../../src/jobs/memory/MemoryJobQueue.js';
import { MemoryJobStore } from '../../src/jobs/memory/MemoryJobStore.js';
import { estimatedJobHeapBytes } from '../../src/jobs/retention.js';
import type { Job } from '../../src/jobs/types.js';
import { silentLogger } from '../../src/logger.js';
import { testServiceLimits } from './jobService.js';
import { startRedisServer } from './redisServer.js';

export interface Backend {
  store: JobStore;
  events: JobEvents;
  queue: JobQueue;
  close(): Promise<void>;
}

/** Backends made by one deployment's `make` see the same data (processes of one deployment). */
export interface Deployment {
  make: () => Promise<Backend>;
  /** Every stored value of the deployment (Redis: every key under its prefix, whatever its type); null in memory. */
  storedValues: (() => Promise<Buffer[]>) | null;
}

export interface BackendFactory {
  name: string;
  /** A fresh deployment. */
  create(stall?: typeof STALL, url?: string, maxRetainedJobBytes?: number): Promise<Deployment>;
  /** How the backend's store measures a job against MAX_RETAINED_JOB_BYTES. */
  retainedBytesOf(job: Job): number;
}

/** Stall detection of the contract's deployments, short enough for a lost worker to show within a test. */
export const STALL = { lockDurationMs: 1000, stalledIntervalMs: 500, maxStalledCount: 1 };

/** The memory backend: one deployment is one process, so every `make` answers the same backend. */
export const memoryBackend: BackendFactory = {
  name: 'memory',
  retainedBytesOf: estimatedJobHeapBytes,
  async create(_stall, _url, maxRetainedJobBytes) {
    const store = new MemoryJobStore(
      maxRetainedJobBytes === undefined ? {} : { maxRetainedBytes: maxRetainedJobBytes },
    );
    const events = new MemoryJobEvents();
    const queue = new MemoryJobQueue();
    const backend: Backend = { store, events, queue, close: async () => undefined };
    return { make: async () => backend, storedValues: null };
  },
};

/** Whether any stored value holds `bytes`, raw or base64 (as JSON would carry them). */
function holds(values: Buffer[], bytes: Buffer): boolean {
  const base64 = Buffer.from(bytes.toString('base64'));
  return values.some((value) => value.includes(bytes) || value.includes(base64));
}

/** A store that answers SERVICE_UNAVAILABLE while `down`, as the Redis store does while Redis is away. */
class FlakyStore implements JobStore {
  down = false;
  failures = 0;
  constructor(private readonly inner: JobStore) {}
  #check(): void {
    if (!this.down) return;
    this.failures += 1;
    throw new AppError(ErrorCode.ServiceUnavailable, 'the job backend (Redis) is unreachable; retry later');
  }
  async create(job: Job): Promise<void> {
    this.#check();
    return this.inner.create(job);
  }
  async get(id: string): Promise<Job | undefined> {
    this.#check();
    return this.inner.get(id);
  }
  async transition(id: string, from: Job['status'], next: Job): Promise<boolean> {
    this.#check();
    return this.inner.transition(id, from, next);
  }
  async list(options: Parameters<JobStore['list']>[0]): ReturnType<JobStore['list']> {
    this.#check();
    return this.inner.list(options);
  }
  async delete(id: string): Promise<boolean> {
    this.#check();
    return this.inner.delete(id);
  }
  async retention(): ReturnType<JobStore['retention']> {
    this.#check();
    return this.inner.retention();
  }
  async close(): Promise<void> {
    return this.inner.close();
  }
}

class FakeRunner implements JobRunner, JobClassifier {
  readonly defaultModelName = 'm';
  calls: ClassifyRequest[] = [];
  /** When set, classify waits for it. */
  gate: Promise<void> | null = null;
  resolveModelName(name: string): string | undefined {
    return name === 'm' ? 'm' : undefined;
  }
  models(): ModelInfo[] {
    return [];
  }
  decodeImage(input: string): Buffer {
    return Buffer.from(input, 'base64');
  }
  async inspectImage(): Promise<{ format: string; width: number; height: number }> {
    return { format: 'png', width: 1, height: 1 };
  }
  validatePrompt(): PromptConfig {
    return {};
  }
  async prepareModel(): Promise<void> {}
  async classify(request: ClassifyRequest): Promise<ClassifyResult> {
    this.calls.push(request);
    if (this.gate !== null) {
      const gate = this.gate;
      await new Promise<void>((resolve, reject) => {
        request.signal?.addEventListener('abort', () => reject(new AppError(ErrorCode.InferenceFailed, 'aborted')));
        void gate.then(resolve);
      });
    }
    // Each image's probabilities from its first byte: results show the bytes arrived intact.
    return {
      probabilities: request.images.map((bytes) => {
        const p = (bytes[0] ?? 0) / 255;
        return request.labels.length === 2 ? [p, 1 - p] : request.labels.map(() => 1 / request.labels.length);
      }),
    };
  }
  async embedImages(): Promise<EmbeddingVectors> {
    throw new Error('unused');
  }
  async embedTexts(): Promise<EmbeddingVectors> {
    throw new Error('unused');
  }
}

function baseJob(id: string, ttlMs = 60_000): Job {
  const createdAt = new Date();
  return {
    id,
    owner: null,
    status: 'queued',
    task: 'classification',
    model: 'm',
    classes: ['a'],
    texts: [],
    imageCount: 1,
    batched: false,
    createdAt,
    expiresAt: new Date(createdAt.getTime() + ttlMs),
    version: 0,
  };
}

async function collect(iterator: AsyncIterableIterator<Job>): Promise<Job[]> {
  const seen: Job[] = [];
  for await (const job of iterator) seen.push(job);
  return seen;
}

export function describeBackendContract(factory: BackendFactory): void {
  {
    const open: Backend[] = [];
    const services: JobService[] = [];
    const make = async (deployment: Deployment): Promise<Backend> => {
      const backend = await deployment.make();
      open.push(backend);
      return backend;
    };
    afterEach(async () => {
      for (const service of services.splice(0)) await service.close().catch(() => undefined);
      for (const backend of open.splice(0)) await backend.close().catch(() => undefined);
    });

    /** An API-side service and a worker on their own backends (one deployment). */
    const startWorker = async (backend: Backend, runner: JobRunner, maxConcurrentJobs = 4): Promise<JobWorker> => {
      const worker = new JobWorker({
        clip: runner,
        ...backend,
        logger: silentLogger(),
        maxConcurrentJobs,
        ttlSeconds: 60,
      });
      worker.start();
      if ('ready' in backend.queue) await (backend.queue as { ready(): Promise<void> }).ready();
      return worker;
    };
    const cluster = async (
      options: {
        workers?: number;
        maxConcurrentJobs?: number;
        maxQueuedJobs?: number;
        maxQueuedImages?: number;
        ttlSeconds?: number;
      } = {},
    ) => {
      const deployment = await factory.create();
      const api = await make(deployment);
      const runner = new FakeRunner();
      const workers: JobWorker[] = [];
      for (let i = 0; i < (options.workers ?? 1); i += 1) {
        const backend = factory.name === 'memory' ? api : await make(deployment);
        workers.push(await startWorker(backend, runner, options.maxConcurrentJobs));
      }
      const jobs = new JobService({
        clip: runner,
        logger: silentLogger(),
        ...api,
        limits: testServiceLimits({
          maxQueuedJobs: options.maxQueuedJobs ?? 256,
          maxQueuedImages: options.maxQueuedImages ?? 1024,
          ttlSeconds: options.ttlSeconds ?? 60,
        }),
      });
      services.push(jobs);
      return { deployment, api, jobs, runner, workers };
    };

    it('should create, read and compare-and-set a job; exactly one of two racing transitions wins', async () => {
      const { store } = await make(await factory.create());
      const job = baseJob(randomUUID());
      await store.create(job);
      await expect(store.create(job)).rejects.toThrow(/already exists/);
      expect(await store.get(job.id)).toEqual(job);
      const running: Job = { ...job, status: 'running', startedAt: new Date(), version: 1 };
      const cancelled: Job = { ...job, status: 'cancelled', startedAt: null, finishedAt: new Date(), version: 1 };
      const outcomes = await Promise.all([
        store.transition(job.id, 'queued', running),
        store.transition(job.id, 'queued', cancelled),
      ]);
      expect(outcomes.filter(Boolean)).toHaveLength(1);
      const stored = await store.get(job.id);
      expect(stored?.status).toBe(outcomes[0] ? 'running' : 'cancelled');
      expect(await store.transition(randomUUID(), 'queued', running)).toBe(false);
    });

    it('should expire jobs at expiresAt and page in creation order with a status filter', async () => {
      const { store } = await make(await factory.create());
      await store.create(baseJob('short', 150));
      const ids = ['j0', 'j1', 'j2', 'j3'];
      for (const id of ids) await store.create(baseJob(id));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await store.get('short')).toBeUndefined();
      const page1 = await store.list({ first: 2 });
      expect(page1.jobs.map((job) => job.id)).toEqual(['j0', 'j1']);
      expect(page1.hasNextPage).toBe(true);
      const page2 = await store.list({ first: 2, after: page1.endCursor ?? undefined });
      expect(page2.jobs.map((job) => job.id)).toEqual(['j2', 'j3']);
      expect(page2.hasNextPage).toBe(false);
      expect((await store.list({ first: 10, status: 'complete' })).jobs).toEqual([]);
      expect(await store.delete('j0')).toBe(true);
      expect(await store.delete('j0')).toBe(false);
    });

    it('should forget the jobs that finished first once finished jobs pass the retention budget, never the one just finished', async () => {
      const started = Date.now();
      // One TTL for all: the later a job finishes, the later it expires (Redis orders by expiry).
      const finished = (job: Job, finishedAtMs: number, texts = job.texts): Job => ({
        ...job,
        texts,
        status: 'complete',
        startedAt: new Date(finishedAtMs),
        finishedAt: new Date(finishedAtMs),
        expiresAt: new Date(finishedAtMs + 60_000),
        version: job.version + 1,
        result: { task: 'text-embedding', embeddings: texts.map(() => [0.5, -0.5]) },
      });
      const queued = (id: string): Job => ({
        ...baseJob(id),
        task: 'text-embedding',
        classes: [],
        texts: ['t'.repeat(2000), 'u'.repeat(2000)],
      });
      const oneJob = factory.retainedBytesOf(finished(queued('r0'), started));
      const { store } = await make(await factory.create(STALL, undefined, Math.floor(2.5 * oneJob)));
      const ids = ['r0', 'r1', 'r2', 'r3'];
      for (const id of [...ids, 'waiting']) await store.create(queued(id));
      for (const [i, id] of ids.entries())
        expect(await store.transition(id, 'queued', finished(queued(id), started + i))).toBe(true);
      // Two fit the budget of 2.5 jobs: the third and fourth to finish pushed out the first and second.
      expect(await store.get('r0')).toBeUndefined();
      expect(await store.get('r1')).toBeUndefined();
      expect((await store.get('r2'))?.status).toBe('complete');
      expect((await store.list({ first: 10 })).jobs.map((job) => job.id)).toEqual(['r2', 'r3', 'waiting']);
      expect(await store.retention()).toEqual({ bytes: 2 * oneJob, jobs: 2, evicted: 2 });

      // A job larger than the whole budget is kept alone; the unfinished one is never counted nor dropped.
      await store.create(queued('huge'));
      const huge = finished(
        queued('huge'),
        started + 10,
        Array.from({ length: 10 }, () => 'h'.repeat(2000)),
      );
      expect(await store.transition('huge', 'queued', huge)).toBe(true);
      expect((await store.list({ first: 10 })).jobs.map((job) => job.id)).toEqual(['waiting', 'huge']);
      expect(await store.retention()).toEqual({ bytes: factory.retainedBytesOf(huge), jobs: 1, evicted: 4 });
      expect(await store.delete('huge')).toBe(true);
      expect(await store.retention()).toEqual({ bytes: 0, jobs: 0, evicted: 4 });
    });

    it('should stop counting a finished job against the retention budget once its TTL runs out', async () => {
      const { store } = await make(await factory.create(STALL, undefined, 1024 * 1024));
      const job = baseJob('brief', 60_000);
      await store.create(job);
      const now = Date.now();
      const done: Job = {
        ...job,
        status: 'cancelled',
        startedAt: null,
        finishedAt: new Date(now),
        expiresAt: new Date(now + 150),
        version: 1,
      };
      expect(await store.transition('brief', 'queued', done)).toBe(true);
      expect((await store.retention()).jobs).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await store.retention()).toEqual({ bytes: 0, jobs: 0, evicted: 0 });
    });

    it('should publish changes to every listener of the deployment', async () => {
      const deployment = await factory.create();
      const a = await make(deployment);
      const b = await make(deployment);
      const seen: number[] = [];
      b.events.on('jobUpdated', (job) => seen.push(job.version));
      await a.events.publish(baseJob('x'));
      await a.events.publish({ ...baseJob('x'), version: 1 });
      await expect.poll(() => seen).toEqual([0, 1]);
    });

    it('should admit atomically against the counts, and release idempotently', async () => {
      const { queue } = await make(await factory.create());
      const limits = { maxJobs: 2, maxImages: 3, maxImageBytes: 100, maxJobsPerOwner: 2, maxImagesPerOwner: 3 };
      const expiresAt = new Date(Date.now() + 60_000);
      const image = (bytes: number) => new Uint8Array(bytes).fill(7);
      const results = await Promise.all(
        [1, 2, 3].map((i) => queue.reserve({ owner: null, id: `r${i}`, images: [image(10)], expiresAt }, limits)),
      );
      expect(results.filter((r) => r.admitted)).toHaveLength(2);
      expect((await queue.counts()).jobs).toBe(2);
      const refused = results.find((r) => !r.admitted);
      expect(refused).toMatchObject({ admitted: false, limit: 'jobs' });
      for (const i of [1, 2, 3]) await queue.release(`r${i}`);
      await queue.release('r1');
      expect(await queue.counts()).toMatchObject({ jobs: 0, images: 0, imageBytes: 0 });
      expect(
        await queue.reserve({ owner: null, id: 'big', images: [1, 2, 3, 4].map(() => image(2)), expiresAt }, limits),
      ).toMatchObject({ admitted: false, limit: 'images' });
      expect(await queue.reserve({ owner: null, id: 'fat', images: [image(101)], expiresAt }, limits)).toMatchObject({
        admitted: false,
        limit: 'imageBytes',
      });
      expect(await queue.counts()).toMatchObject({ jobs: 0, images: 0, imageBytes: 0 });
    });

    it("should admit an owner up to its share while others are still admitted, and release the owner's counts", async () => {
      const { queue } = await make(await factory.create());
      const limits = { maxJobs: 10, maxImages: 100, maxImageBytes: 10_000, maxJobsPerOwner: 2, maxImagesPerOwner: 3 };
      const expiresAt = new Date(Date.now() + 60_000);
      const image = new Uint8Array(4).fill(3);
      const reserve = (id: string, owner: string | null, images = 1) =>
        queue.reserve({ id, owner, images: Array.from({ length: images }, () => image), expiresAt }, limits);
      expect(await reserve('a1', 'owner-a')).toEqual({ admitted: true });
      expect(await reserve('a2', 'owner-a')).toEqual({ admitted: true });
      expect(await reserve('a3', 'owner-a')).toMatchObject({ admitted: false, limit: 'ownerJobs' });
      expect(await reserve('b1', 'owner-b', 3)).toEqual({ admitted: true });
      expect(await reserve('b2', 'owner-b', 1)).toMatchObject({ admitted: false, limit: 'ownerImages' });
      // Without an owner (authentication off) only the queue's own limits apply.
      for (const id of ['n1', 'n2', 'n3']) expect(await reserve(id, null)).toEqual({ admitted: true });
      expect((await queue.counts()).owners).toEqual({
        'owner-a': { jobs: 2, images: 2 },
        'owner-b': { jobs: 1, images: 3 },
      });
      for (const id of ['a1', 'a2', 'a1', 'b1', 'n1', 'n2', 'n3']) await queue.release(id);
      expect(await queue.counts()).toMatchObject({ jobs: 0, images: 0, imageBytes: 0, owners: {} });
      // 1,000 reserve/release cycles per owner leave nothing behind.
      for (let i = 0; i < 1_000; i += 1) {
        await Promise.all([reserve(`x${i}`, 'owner-a'), reserve(`y${i}`, 'owner-b')]);
        await Promise.all([queue.release(`x${i}`), queue.release(`y${i}`)]);
      }
      expect(await queue.counts()).toMatchObject({ jobs: 0, images: 0, owners: {} });
    });

    it("should list only one owner's jobs when asked", async () => {
      const { store } = await make(await factory.create());
      await store.create({ ...baseJob('mine'), owner: 'owner-a' });
      await store.create({ ...baseJob('theirs'), owner: 'owner-b' });
      await store.create(baseJob('nobody'));
      expect((await store.list({ first: 10, owner: 'owner-a' })).jobs.map((job) => job.id)).toEqual(['mine']);
      await store.create({ ...baseJob('mine-too'), owner: 'owner-a' });
      const page1 = await store.list({ first: 1, owner: 'owner-a' });
      expect(page1).toMatchObject({ jobs: [{ id: 'mine' }], hasNextPage: true });
      const page2 = await store.list({ first: 1, owner: 'owner-a', after: page1.endCursor ?? undefined });
      expect(page2).toMatchObject({ jobs: [{ id: 'mine-too' }], hasNextPage: false });
      // A change keeps the owner, and the owner's listing, as they were.
      const mine = (await store.get('mine')) as Job;
      expect(
        await store.transition('mine', 'queued', { ...mine, status: 'running', startedAt: new Date(), version: 1 }),
      ).toBe(true);
      expect((await store.list({ first: 10, owner: 'owner-a', status: 'running' })).jobs.map((job) => job.id)).toEqual([
        'mine',
      ]);
      expect((await store.list({ first: 10 })).jobs.map((job) => job.id)).toEqual([
        'mine',
        'theirs',
        'nobody',
        'mine-too',
      ]);
      expect((await store.get('theirs'))?.owner).toBe('owner-b');
    });

    it('should run a job end to end: watch sees every state in order, image bytes arrive intact, counts return to zero', async () => {
      const { jobs, runner } = await cluster();
      const job = await jobs.submit(OPEN_CALLER, {
        images: [Buffer.from([51]).toString('base64')],
        imagesField: 'image',
        batched: false,
        classes: ['a', 'b'],
      });
      const states = await collect(await jobs.watch(OPEN_CALLER, job.id));
      expect(states.map((state) => state.status)).toEqual(['queued', 'running', 'complete']);
      expect(states.map((state) => state.version)).toEqual([0, 1, 2]);
      const done = await jobs.get(OPEN_CALLER, job.id);
      expect(done?.status === 'complete' && done.result).toEqual({
        task: 'classification',
        images: [{ probabilities: [51 / 255, 1 - 51 / 255] }],
      });
      expect(Array.from(runner.calls[0]?.images[0] ?? [])).toEqual([51]);
      await expect.poll(async () => (await jobs.counts()).jobs).toBe(0);
    });

    it('should take up to maxConcurrentJobs jobs at once, so batches fill across jobs', async () => {
      const { jobs, runner } = await cluster({ maxConcurrentJobs: 3 });
      let open!: () => void;
      runner.gate = new Promise((resolve) => {
        open = resolve;
      });
      const submitted = await Promise.all(
        [1, 2, 3, 4].map((i) =>
          jobs.submit(OPEN_CALLER, {
            images: [Buffer.from([i]).toString('base64')],
            imagesField: 'image',
            batched: false,
            classes: ['a', 'b'],
          }),
        ),
      );
      await expect.poll(() => runner.calls.length, { timeout: 10_000 }).toBe(3);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(runner.calls.length).toBe(3);
      open();
      for (const job of submitted) {
        const states = await collect(await jobs.watch(OPEN_CALLER, job.id));
        expect(states.at(-1)?.status).toBe('complete');
      }
    });

    it('should cancel a queued job and a running one (the worker gives it up), and never complete a cancelled job', async () => {
      const { jobs, runner } = await cluster({ maxConcurrentJobs: 1 });
      runner.gate = new Promise(() => undefined);
      const image = {
        images: [Buffer.from([1]).toString('base64')],
        imagesField: 'image',
        batched: false,
        classes: ['a', 'b'],
      };
      const first = await jobs.submit(OPEN_CALLER, image);
      const second = await jobs.submit(OPEN_CALLER, image);
      await expect
        .poll(async () => (await jobs.get(OPEN_CALLER, first.id))?.status, { timeout: 10_000 })
        .toBe('running');
      const watching = collect(await jobs.watch(OPEN_CALLER, first.id));
      expect((await jobs.cancel(OPEN_CALLER, second.id))?.status).toBe('cancelled');
      expect((await jobs.cancel(OPEN_CALLER, first.id))?.status).toBe('cancelled');
      expect((await watching).map((state) => state.status)).toEqual(['running', 'cancelled']);
      await expect.poll(async () => (await jobs.counts()).jobs, { timeout: 10_000 }).toBe(0);
      expect((await jobs.get(OPEN_CALLER, first.id))?.status).toBe('cancelled');
      expect(runner.calls).toHaveLength(1);
      expect(await jobs.cancel(OPEN_CALLER, randomUUID())).toBeUndefined();
    });

    it('should hold MAX_QUEUED_JOBS across API processes', async () => {
      const { deployment, runner } = await cluster({ maxConcurrentJobs: 1 });
      runner.gate = new Promise(() => undefined);
      const second = await make(deployment);
      const other = new JobService({
        clip: runner,
        logger: silentLogger(),
        ...second,
        limits: testServiceLimits({ maxQueuedJobs: 2, ttlSeconds: 60 }),
      });
      const first = new JobService({
        clip: runner,
        logger: silentLogger(),
        ...(factory.name === 'memory' ? second : await make(deployment)),
        limits: testServiceLimits({ maxQueuedJobs: 2, ttlSeconds: 60 }),
      });
      services.push(other, first);
      const image = {
        images: [Buffer.from([1]).toString('base64')],
        imagesField: 'image',
        batched: false,
        classes: ['a', 'b'],
      };
      await first.submit(OPEN_CALLER, image);
      await other.submit(OPEN_CALLER, image);
      await expect(first.submit(OPEN_CALLER, image)).rejects.toMatchObject({
        code: ErrorCode.Overloaded,
        message: expect.stringMatching(/MAX_QUEUED_JOBS=2/),
      });
      await expect(other.submit(OPEN_CALLER, image)).rejects.toMatchObject({ code: ErrorCode.Overloaded });
    });

    it('should finish a job once when it is delivered twice (compare-and-set decides)', async () => {
      const { jobs, api } = await cluster({ workers: 0 });
      const runner = new FakeRunner();
      const job = await jobs.submit(OPEN_CALLER, {
        images: [Buffer.from([9]).toString('base64')],
        imagesField: 'image',
        batched: false,
        classes: ['a', 'b'],
      });
      const changes: string[] = [];
      api.events.on('jobUpdated', (update) => {
        if (update.id === job.id) changes.push(update.status);
      });
      // Two runs of one delivery's work, as BullMQ may do after a stall: only one completion is stored and announced.
      // Drive a worker through a private queue that carries the same work twice.
      const work = { id: job.id, prompt: {}, job };
      const duplicate = new MemoryJobQueue();
      await duplicate.reserve(
        { id: job.id, owner: null, images: [new Uint8Array([9])], expiresAt: job.expiresAt },
        { maxJobs: 1, maxImages: 1, maxImageBytes: 1, maxJobsPerOwner: 1, maxImagesPerOwner: 1 },
      );
      const twice = new JobWorker({
        clip: runner,
        store: api.store,
        events: api.events,
        queue: duplicate,
        logger: silentLogger(),
        maxConcurrentJobs: 2,
        ttlSeconds: 60,
      });
      twice.start();
      await duplicate.enqueue(work);
      await duplicate.enqueue(work);
      await expect
        .poll(async () => (await jobs.get(OPEN_CALLER, job.id))?.status, { timeout: 10_000 })
        .toBe('complete');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(changes.filter((status) => status === 'complete')).toHaveLength(1);
      expect((await jobs.get(OPEN_CALLER, job.id))?.version).toBe(2);
      await duplicate.close();
    });

    it('should forget a job whose TTL runs out while it waits, image bytes and reservation included, with no worker running', async () => {
      const { jobs, deployment, runner, api } = await cluster({ workers: 0, ttlSeconds: 1 });
      const bytes = Buffer.from(`EXPIRING-IMAGE-${randomUUID()}`);
      // An owned job, so the owner's share is seen released with the rest.
      const owned = { owner: 'owner-e', seesAll: false, operator: false };
      const job = await jobs.submit(owned, {
        images: [bytes.toString('base64')],
        imagesField: 'image',
        batched: false,
        classes: ['a', 'b'],
      });
      expect(await jobs.counts()).toMatchObject({
        jobs: 1,
        waiting: 1,
        images: 1,
        imageBytes: bytes.length,
        owners: { 'owner-e': { jobs: 1, images: 1 } },
      });
      // The check below can see the bytes where they are kept (and would see them in BullMQ's JSON, base64).
      if (deployment.storedValues !== null) expect(holds(await deployment.storedValues(), bytes)).toBe(true);
      await expect.poll(async () => api.store.get(job.id), { timeout: 5000 }).toBeUndefined();
      await expect
        .poll(async () => jobs.counts(), { timeout: 5000, interval: 100 })
        .toMatchObject({ jobs: 0, waiting: 0, images: 0, imageBytes: 0, owners: {} });
      const storedValues = deployment.storedValues;
      if (storedValues !== null)
        await expect.poll(async () => holds(await storedValues(), bytes), { timeout: 5000 }).toBe(false);
      // A worker that comes later finds nothing to run.
      await startWorker(factory.name === 'memory' ? api : await make(deployment), runner);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(runner.calls).toHaveLength(0);
    });

    it('should drop, without running it, work whose job is gone from the store, and release it', async () => {
      const { jobs, deployment, runner, api } = await cluster({ workers: 0 });
      const bytes = Buffer.from(`GONE-IMAGE-${randomUUID()}`);
      const job = await jobs.submit(OPEN_CALLER, {
        images: [bytes.toString('base64')],
        imagesField: 'image',
        batched: false,
        classes: ['a', 'b'],
      });
      // As when the job expired between the expiry sweeps: the queue still holds its work.
      expect(await api.store.delete(job.id)).toBe(true);
      await startWorker(factory.name === 'memory' ? api : await make(deployment), runner);
      await expect
        .poll(async () => jobs.counts(), { timeout: 10_000, interval: 100 })
        .toMatchObject({ jobs: 0, waiting: 0, active: 0, images: 0, imageBytes: 0 });
      expect(runner.calls).toHaveLength(0);
      if (deployment.storedValues !== null) expect(holds(await deployment.storedValues(), bytes)).toBe(false);
    });

    it('should hold a finished job through a store outage longer than any retry count, and store its result once, when the store is back', async () => {
      const deployment = await factory.create();
      const api = await make(deployment);
      const workerSide = factory.name === 'memory' ? api : await make(deployment);
      const flaky = new FlakyStore(workerSide.store);
      const runner = new FakeRunner();
      let openGate!: () => void;
      runner.gate = new Promise((resolve) => {
        openGate = resolve;
      });
      await startWorker({ ...workerSide, store: flaky }, runner, 1);
      const jobs = new JobService({
        clip: runner,
        logger: silentLogger(),
        ...api,
        limits: testServiceLimits({ ttlSeconds: 60 }),
      });
      services.push(jobs);
      const job = await jobs.submit(OPEN_CALLER, {
        images: [Buffer.from([77]).toString('base64')],
        imagesField: 'image',
        batched: false,
        classes: ['a', 'b'],
      });
      await expect.poll(async () => (await jobs.get(OPEN_CALLER, job.id))?.status, { timeout: 10_000 }).toBe('running');
      flaky.down = true;
      openGate();
      // More failed writes than BullMQ's delivery attempts (5): the worker keeps the result and waits.
      await expect.poll(() => flaky.failures, { timeout: 20_000, interval: 100 }).toBeGreaterThan(5);
      expect((await jobs.get(OPEN_CALLER, job.id))?.status).toBe('running');
      flaky.down = false;
      await expect
        .poll(async () => (await jobs.get(OPEN_CALLER, job.id))?.status, { timeout: 10_000 })
        .toBe('complete');
      expect(runner.calls).toHaveLength(1);
      await expect.poll(async () => (await jobs.counts()).jobs, { timeout: 10_000 }).toBe(0);
    }, 40_000);

    it.skipIf(factory.name === 'memory')(
      'should complete a job whose worker met a Redis restart mid-job, leaving nothing RUNNING and running it once',
      async () => {
        const own = await startRedisServer({ persistent: true });
        try {
          // A lock that outlives the outage: the job stays with its worker, which must store its result itself.
          const deployment = await factory.create(
            { lockDurationMs: 30_000, stalledIntervalMs: 30_000, maxStalledCount: 1 },
            own.url,
          );
          const api = await make(deployment);
          const runner = new FakeRunner();
          let openGate!: () => void;
          runner.gate = new Promise((resolve) => {
            openGate = resolve;
          });
          await startWorker(await make(deployment), runner, 1);
          const jobs = new JobService({
            clip: runner,
            logger: silentLogger(),
            ...api,
            limits: testServiceLimits({ ttlSeconds: 60 }),
          });
          services.push(jobs);
          const job = await jobs.submit(OPEN_CALLER, {
            images: [Buffer.from([200]).toString('base64')],
            imagesField: 'image',
            batched: false,
            classes: ['a', 'b'],
          });
          await expect
            .poll(async () => (await jobs.get(OPEN_CALLER, job.id))?.status, { timeout: 10_000 })
            .toBe('running');
          await own.stop();
          openGate();
          await new Promise((resolve) => setTimeout(resolve, 3000));
          await own.restart();
          await expect
            .poll(async () => (await jobs.get(OPEN_CALLER, job.id).catch(() => undefined))?.status, {
              timeout: 20_000,
              interval: 200,
            })
            .toBe('complete');
          const done = await jobs.get(OPEN_CALLER, job.id);
          expect(done?.status === 'complete' && done.result).toEqual({
            task: 'classification',
            images: [{ probabilities: [200 / 255, 1 - 200 / 255] }],
          });
          expect(runner.calls).toHaveLength(1);
          await expect.poll(async () => (await jobs.counts()).jobs, { timeout: 10_000 }).toBe(0);
        } finally {
          for (const service of services.splice(0)) await service.close().catch(() => undefined);
          for (const backend of open.splice(0)) await backend.close().catch(() => undefined);
          await own.dispose();
        }
      },
      60_000,
    );

    it.skipIf(factory.name === 'memory')(
      'should hand a job still running at the drain timeout back to the queue, where another worker completes it',
      async () => {
        // Stall recovery far beyond the test: only a hand-back can move the job to the other worker in time.
        const deployment = await factory.create({
          lockDurationMs: 60_000,
          stalledIntervalMs: 60_000,
          maxStalledCount: 1,
        });
        const leaving = await make(deployment);
        const staying = await make(deployment);
        const api = await make(deployment);
        const stuck = new FakeRunner();
        stuck.gate = new Promise(() => undefined);
        const draining = new JobWorker({
          clip: stuck,
          ...leaving,
          logger: silentLogger(),
          maxConcurrentJobs: 1,
          ttlSeconds: 60,
        });
        draining.start();
        await (leaving.queue as unknown as { ready(): Promise<void> }).ready();
        const jobs = new JobService({
          clip: new FakeRunner(),
          logger: silentLogger(),
          ...api,
          limits: testServiceLimits({ ttlSeconds: 60 }),
        });
        services.push(jobs);
        const job = await jobs.submit(OPEN_CALLER, {
          images: [Buffer.from([200]).toString('base64')],
          imagesField: 'image',
          batched: false,
          classes: ['a', 'b'],
        });
        await expect
          .poll(async () => (await jobs.get(OPEN_CALLER, job.id))?.status, { timeout: 10_000 })
          .toBe('running');
        expect(await draining.drain(200)).toBe(0);
        // Not counted done: it waits in the queue again, still holding its admission.
        await expect.poll(async () => (await jobs.counts()).waiting, { timeout: 5_000 }).toBe(1);
        expect((await jobs.counts()).jobs).toBe(1);
        const finisher = new FakeRunner();
        new JobWorker({
          clip: finisher,
          ...staying,
          logger: silentLogger(),
          maxConcurrentJobs: 1,
          ttlSeconds: 60,
        }).start();
        await expect
          .poll(async () => (await jobs.get(OPEN_CALLER, job.id))?.status, { timeout: 10_000 })
          .toBe('complete');
        const done = await jobs.get(OPEN_CALLER, job.id);
        expect(done?.status === 'complete' && done.result).toEqual({
          task: 'classification',
          images: [{ probabilities: [200 / 255, 1 - 200 / 255] }],
        });
        expect(finisher.calls).toHaveLength(1);
        await expect.poll(async () => (await jobs.counts()).jobs, { timeout: 10_000 }).toBe(0);
      },
      40_000,
    );

    it.skipIf(factory.name === 'memory')(
      'should fail a job with WORKER_LOST once its worker is lost more often than maxStalledCount',
      async () => {
        const deployment = await factory.create({ lockDurationMs: 500, stalledIntervalMs: 300, maxStalledCount: 0 });
        const lost = await make(deployment);
        const survivor = await make(deployment);
        // A worker that hangs and then disappears without a word: its lock is never renewed or released.
        const hanging: JobRunner = {
          prepareModel: async () => undefined,
          classify: () => new Promise(() => undefined),
          embedImages: () => new Promise(() => undefined),
          embedTexts: () => new Promise(() => undefined),
        };
        new JobWorker({ clip: hanging, ...lost, logger: silentLogger(), maxConcurrentJobs: 1, ttlSeconds: 60 }).start();
        await (lost.queue as unknown as { ready(): Promise<void> }).ready();
        const jobs = new JobService({
          clip: new FakeRunner(),
          logger: silentLogger(),
          ...survivor,
          limits: testServiceLimits({ ttlSeconds: 60 }),
        });
        services.push(jobs);
        const job = await jobs.submit(OPEN_CALLER, {
          images: [Buffer.from([1]).toString('base64')],
          imagesField: 'image',
          batched: false,
          classes: ['a', 'b'],
        });
        await expect
          .poll(async () => (await jobs.get(OPEN_CALLER, job.id))?.status, { timeout: 10_000 })
          .toBe('running');
        await lost.queue.close();
        new JobWorker({
          clip: new FakeRunner(),
          ...survivor,
          logger: silentLogger(),
          maxConcurrentJobs: 1,
          ttlSeconds: 60,
        }).start();
        await expect
          .poll(async () => (await jobs.get(OPEN_CALLER, job.id))?.status, { timeout: 20_000 })
          .toBe('failed');
        const failed = await jobs.get(OPEN_CALLER, job.id);
        expect(failed?.status === 'failed' && failed.error.code).toBe(ErrorCode.WorkerLost);
        await expect.poll(async () => (await jobs.counts()).jobs, { timeout: 10_000 }).toBe(0);
      },
      40_000,
    );
  }
}
