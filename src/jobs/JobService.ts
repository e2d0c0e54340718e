/**
 * The API side of jobs (classification, image embedding, text embedding), composed from its parts: a submission is
 * validated (validation.ts), admitted against the cluster-wide counts (admission.ts), stored QUEUED and handed to
 * the JobQueue; a cancel is a compare-and-set in the store, then an abort to whichever worker runs the job; reads
 * and watchers (watching.ts) are answered from the store and the bus.
 *
 * Nothing about a job lives only in this process: its state is in the JobStore, its images travel in the
 * JobQueue, its changes on JobEvents. The backends and this process's worker are given (createJobs.ts builds them
 * for a role), so the service is the same in one process and on a cluster.
 */
import { randomUUID } from 'node:crypto';
import { AppError, ErrorCode, badUserInput } from '../errors.js';
import type { Logger } from '../logger.js';
import { AdmissionControl, type AdmissionSettings } from './admission.js';
import { visibleTo, type Caller } from './caller.js';
import type { JobClassifiers } from './classifierPort.js';
import type { JobEvents } from './JobEvents.js';
import type { JobQueue, OwnerCounts, QueueCounts } from './JobQueue.js';
import { InvalidCursorError, type JobPage, type JobStore } from './JobStore.js';
import type { JobWorker } from './JobWorker.js';
import type { RetentionStats } from './retention.js';
import { rankBySimilarity, type SimilarityRanking } from './similarity.js';
import { advanceJob, jobLogFields, publishChange, type TransitionDeps } from './transitions.js';
import { JOB_STATUSES, type EmbeddingResult, type Job, type JobStatus, type SubmitJobInput } from './types.js';
import {
  SubmissionValidator,
  type FetchImageUrl,
  type JobClassifier,
  type JobPlan,
  type SubmissionLimits,
} from './validation.js';
import { JobWatchers } from './watching.js';

/** The settings the API side of jobs applies (each names its setting in src/config.ts). */
export interface JobServiceLimits extends SubmissionLimits, AdmissionSettings {
  /** How long a job is kept after its last change, in seconds (JOB_TTL_SECONDS). */
  ttlSeconds: number;
}

export interface JobServiceOptions {
  /** Model names and input checks. */
  clip: JobClassifier;
  logger: Logger;
  store: JobStore;
  events: JobEvents;
  queue: JobQueue;
  /** The worker of this process, drained by `drain` (the api role has none). */
  worker?: JobWorker | undefined;
  /** Images given as http(s) URLs are fetched with it; without it they are refused. */
  fetchImageUrl?: FetchImageUrl | undefined;
  /** Stored classifiers (classify by `classifier` instead of `classes`); without it such jobs are refused. */
  classifiers?: JobClassifiers | undefined;
  limits: JobServiceLimits;
}

export interface ListJobsInput {
  status?: JobStatus | undefined;
  /** Page size, 1..MAX_PAGE_SIZE; default DEFAULT_PAGE_SIZE. */
  first?: number | undefined;
  after?: string | undefined;
}

/** Live numbers for metrics and readiness. */
export interface JobStats {
  /** Jobs waiting for a worker (cluster-wide with Redis, refreshed every second). */
  queued: number;
  /** Admitted jobs not waiting: running, or between admission and the queue (cluster-wide with Redis). */
  running: number;
  /** Images held by unfinished jobs (cluster-wide with Redis). */
  pendingImages: number;
  pendingImageBytes: number;
  /** Unfinished jobs and their images per owner, by the keyed hash of its API key (cluster-wide with Redis). */
  owners: Readonly<Record<string, OwnerCounts>>;
  /** Open `watch` iterators in this process. */
  watchers: number;
  draining: boolean;
  /** Jobs that reached each status since start, as stored by this process (a job counts once per status it passed). */
  totals: Record<JobStatus, number>;
}

/** The page size of `list` when the caller names none. */
const DEFAULT_PAGE_SIZE = 20;
/** Largest page `list` answers (and `unfinishedOn` reads): one page of jobs is one reply, in memory and on Redis. */
const MAX_PAGE_SIZE = 100;

export class JobService {
  readonly events: JobEvents;
  readonly #store: JobStore;
  readonly #queue: JobQueue;
  readonly #worker: JobWorker | undefined;
  readonly #logger: Logger;
  readonly #deps: TransitionDeps;
  readonly #limits: JobServiceLimits;
  readonly #validator: SubmissionValidator;
  readonly #admission: AdmissionControl;
  readonly #watchers: JobWatchers;
  readonly #totals = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
  readonly #storedListeners = new Set<(job: Job) => void>();
  readonly #onChanged: (job: Job) => void;

  constructor(options: JobServiceOptions) {
    const { clip, limits } = options;
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < 1)
        throw new TypeError(`JobService: expected ${name} to be an integer >= 1, got ${value}`);
    }
    this.#limits = limits;
    this.#logger = options.logger;
    this.#store = options.store;
    this.events = options.events;
    this.#queue = options.queue;
    this.#worker = options.worker;
    this.#validator = new SubmissionValidator({
      clip,
      limits,
      fetchImageUrl: options.fetchImageUrl,
      classifiers: options.classifiers,
    });
    this.#admission = new AdmissionControl({
      queue: this.#queue,
      settings: limits,
      queuedImages: () => clip.queuedImages?.() ?? 0,
    });
    this.#watchers = new JobWatchers({ store: this.#store, events: this.events });
    // Totals count the changes this process stores (its submissions and cancels, and its worker's transitions).
    const onChanged = (job: Job): void => {
      this.#totals[job.status] += 1;
      for (const listener of this.#storedListeners) listener(job);
    };
    this.#onChanged = onChanged;
    this.#deps = {
      store: this.#store,
      events: this.events,
      logger: this.#logger,
      ttlSeconds: limits.ttlSeconds,
      onChanged,
    };
    this.#worker?.onStored(onChanged);
  }

  /**
   * Calls `listener` with every job state this process stores: its submissions and cancels, and its worker's
   * transitions (per-process metrics: summed over the processes of a deployment, each change counts once).
   */
  onStored(listener: (job: Job) => void): () => void {
    this.#storedListeners.add(listener);
    return () => this.#storedListeners.delete(listener);
  }

  /**
   * Validates and admits a job of `caller`'s (its owner from now on), stores it QUEUED and enqueues it for a worker.
   * Throws AppError BAD_USER_INPUT naming the field, OVERLOADED when saturated (or when the caller's key holds its
   * share of the queue), SHUTTING_DOWN while draining, SERVICE_UNAVAILABLE when the backend (Redis) is unreachable.
   */
  async submit(caller: Caller, input: SubmitJobInput): Promise<Job> {
    this.#admission.assertAccepting();
    const plan = await this.#validator.planFor(caller, input);
    const owner = caller.owner;
    // Refuse early under overload, before spending time decoding or fetching images we would not keep.
    const refuseEarly = (images: number): Promise<void> =>
      this.#admission.refuseIfSaturated({ owner, images, imageBytes: 0 });
    const { images, imageBytes } =
      plan.images === null
        ? await refuseEarly(0).then(() => ({ images: [], imageBytes: 0 }))
        : await this.#validator.takeImages(plan.images, refuseEarly);
    // Checked again: the awaits above let other submissions (or a drain) in.
    this.#admission.assertAccepting();
    return this.#admission.track(this.#admitAndEnqueue(plan, owner, images, imageBytes));
  }

  async #admitAndEnqueue(plan: JobPlan, owner: string | null, images: Uint8Array[], imageBytes: number): Promise<Job> {
    const id = randomUUID();
    await this.#admission.refuseIfSaturated({ owner, images: images.length, imageBytes });
    const now = new Date();
    // The reservation and the queued work expire with the job: nothing of it outlives its TTL in the queue.
    const expiresAt = new Date(now.getTime() + this.#limits.ttlSeconds * 1000);
    await this.#admission.reserve({ id, owner, images, expiresAt });
    const job: Job = {
      id,
      owner,
      status: 'queued',
      task: plan.task,
      model: plan.model,
      classes: plan.classes,
      texts: plan.texts,
      imageCount: images.length,
      batched: plan.batched,
      ...(plan.classifier === undefined ? {} : { classifier: plan.classifier }),
      createdAt: now,
      expiresAt,
      version: 0,
    };
    try {
      await this.#store.create(job);
    } catch (error) {
      await this.#queue.release(id).catch(() => undefined);
      throw error;
    }
    this.#onChanged(job);
    this.#logger.info(jobLogFields(job), 'job queued');
    publishChange(this.#deps, job);
    try {
      await this.#queue.enqueue({ id, prompt: plan.prompt, job });
    } catch (error) {
      // Stored but never queued (the backend went away in between): fail it, so nobody waits for it forever.
      await this.#queue.release(id).catch(() => undefined);
      const failure = {
        code: ErrorCode.ServiceUnavailable,
        message: 'the job queue was unreachable; submit the job again',
      };
      await advanceJob(this.#deps, id, (current) => ({
        ...current,
        status: 'failed',
        startedAt: null,
        finishedAt: new Date(),
        error: failure,
      })).catch(() => undefined);
      throw error;
    }
    return job;
  }

  /** The job, or undefined when unknown, expired, or not `caller`'s to see. */
  async get(caller: Caller, id: string): Promise<Job | undefined> {
    return visibleTo(caller, await this.#store.get(id));
  }

  /** The queued and running jobs on `model` (its resolved name), in creation order, across every process sharing the store. */
  async unfinishedOn(model: string): Promise<Job[]> {
    const found: Job[] = [];
    for (const status of ['queued', 'running'] as const) {
      let after: string | undefined;
      for (;;) {
        const page = await this.#store.list({ status, first: MAX_PAGE_SIZE, after });
        found.push(...page.jobs.filter((job) => job.model === model));
        if (!page.hasNextPage || page.endCursor === null) break;
        after = page.endCursor;
      }
    }
    return found.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /** The jobs `caller` may see (its own; every job for an admin), in creation order. Throws BAD_USER_INPUT for a bad `first` or `after`. */
  async list(caller: Caller, input: ListJobsInput = {}): Promise<JobPage> {
    const first = input.first ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw badUserInput(`first: expected an integer between 1 and ${MAX_PAGE_SIZE}, got ${first}`, 'first');
    }
    // A caller that sees only its own jobs has an owner; one without would see nothing.
    const owner = caller.seesAll ? undefined : caller.owner;
    if (owner === null) return { jobs: [], endCursor: null, hasNextPage: false };
    try {
      return await this.#store.list({ status: input.status, first, after: input.after, owner });
    } catch (error) {
      if (error instanceof InvalidCursorError) throw badUserInput(`after: ${error.message}`, 'after');
      throw error;
    }
  }

  /**
   * Cancels a queued or running job (it becomes CANCELLED at once; the worker running it, in whichever
   * process, abandons its inference). A finished job is returned unchanged; undefined when the job is unknown or not
   * `caller`'s to see (an owner never changes, so the check before the change holds for it).
   */
  async cancel(caller: Caller, id: string): Promise<Job | undefined> {
    if ((await this.get(caller, id)) === undefined) return undefined;
    const { job, changed } = await advanceJob(this.#deps, id, (current) => ({
      ...current,
      status: 'cancelled',
      startedAt: current.status === 'running' ? current.startedAt : null,
      finishedAt: new Date(),
    }));
    if (changed) {
      await this.#queue.cancel(id);
      // A cancelled job no longer counts against admission, even while its worker is still letting go of it.
      await this.#queue.release(id);
    }
    return job;
  }

  /**
   * Resolves to an iterator over the job's states: the current one first, then every change; it ends
   * after a terminal state. Rejects with AppError NOT_FOUND for an unknown job, or one not `caller`'s to see.
   * Stopping early (`return()`) removes the listener at once.
   */
  watch(caller: Caller, id: string): Promise<AsyncIterableIterator<Job>> {
    return this.#watchers.watch(caller, id);
  }

  /**
   * Resolves to true once no `watch` iterator is open in this process (their subscribers were sent the terminal
   * states), or to false after `timeoutMs` if some still are.
   */
  whenWatchersGone(timeoutMs: number): Promise<boolean> {
    return this.#watchers.whenGone(timeoutMs);
  }

  /**
   * For every vector of the `queries` job, the `k` most similar vectors of the `candidates` job (cosine, best first):
   * e.g. texts against images for retrieval. Both must be COMPLETE embedding jobs of one model (the vectors of two
   * models live in different spaces). NOT_FOUND for an unknown job; BAD_USER_INPUT naming the argument otherwise.
   */
  async rank(
    caller: Caller,
    queriesId: string,
    candidatesId: string,
    k: number,
  ): Promise<{ rankings: SimilarityRanking[]; queries: Job; candidates: Job }> {
    if (!Number.isInteger(k) || k < 1) throw badUserInput(`k: expected a positive integer, got ${k}`, 'k');
    const [queries, candidates] = await Promise.all([
      this.#completeEmbedding(caller, queriesId, 'queries'),
      this.#completeEmbedding(caller, candidatesId, 'candidates'),
    ]);
    if (queries.model !== candidates.model) {
      throw badUserInput(
        `candidates: job ${candidatesId} ran on ${candidates.model} and job ${queriesId} on ${queries.model}; vectors of different models cannot be compared`,
        'candidates',
      );
    }
    // Ranking runs on the event loop: bound it to the size of its purpose, a full text job against a full image job
    // (1000 × 64 × 768 multiply-adds at the defaults, ~50 ms), so two 1000-text jobs cannot stall the server.
    const pairs = queries.result.embeddings.length * candidates.result.embeddings.length;
    const maxPairs = this.#limits.maxTextsPerJob * this.#limits.maxImagesPerJob;
    if (pairs > maxPairs) {
      throw badUserInput(
        `candidates: ${queries.result.embeddings.length} queries × ${candidates.result.embeddings.length} candidates = ${pairs} pairs, over the limit of ${maxPairs} (MAX_TEXTS_PER_JOB × MAX_IMAGES_PER_JOB)`,
        'candidates',
      );
    }
    return {
      rankings: rankBySimilarity(queries.result, candidates.result, k),
      queries: queries.job,
      candidates: candidates.job,
    };
  }

  async #completeEmbedding(
    caller: Caller,
    id: string,
    field: string,
  ): Promise<{ job: Job; model: string; result: EmbeddingResult }> {
    const job = await this.get(caller, id);
    if (job === undefined)
      throw new AppError(
        ErrorCode.NotFound,
        `${field}: job ${JSON.stringify(id.slice(0, 100))} not found (unknown or expired)`,
      );
    if (job.status !== 'complete')
      throw badUserInput(`${field}: job ${job.id} is ${job.status}; rank when it is complete`, field);
    if (job.result.task === 'classification')
      throw badUserInput(`${field}: job ${job.id} is a classification, not an embedding job`, field);
    return { job, model: job.model, result: job.result };
  }

  /** What finished jobs hold against MAX_RETAINED_JOB_BYTES (one backend round trip on Redis). */
  async retention(): Promise<RetentionStats> {
    return this.#store.retention();
  }

  /** Whether new jobs are refused because the service is draining. */
  get draining(): boolean {
    return this.#admission.stopped;
  }

  /** Cluster-wide unfinished work (one backend round trip); `stats` shows the last value seen. */
  async counts(): Promise<QueueCounts> {
    return this.#queue.counts();
  }

  stats(): JobStats {
    const counts = this.#queue.lastCounts();
    return {
      queued: counts.waiting,
      running: counts.jobs - counts.waiting,
      pendingImages: counts.images,
      pendingImageBytes: counts.imageBytes,
      owners: counts.owners,
      watchers: this.#watchers.count,
      draining: this.#admission.stopped,
      totals: { ...this.#totals },
    };
  }

  /**
   * Stops accepting jobs (SHUTTING_DOWN) and drains this process's worker, if any: it waits, at most
   * `timeoutMs`, for accepted work to finish; work no other process will run is FAILED with SHUTTING_DOWN,
   * so every watcher sees a terminal state. Resolves to the number of jobs failed that way.
   */
  async drain(timeoutMs: number): Promise<number> {
    await this.#admission.stopAccepting();
    if (this.#worker === undefined) return 0;
    const { jobs } = this.#queue.lastCounts();
    if (jobs > 0) this.#logger.info({ unfinishedJobs: jobs, timeoutMs }, 'draining jobs');
    return this.#worker.drain(timeoutMs);
  }

  /** Releases the queue, the bus and the store. Call after drain(). Idempotent. */
  async close(): Promise<void> {
    void this.#admission.stopAccepting();
    await this.#queue.close();
    await this.events.close();
    await this.#store.close();
  }
}
