/**
 * The worker side of jobs: takes work from the JobQueue (up to `maxConcurrentJobs` at once, so the CLIP
 * batchers fill across jobs), runs it on ClipService and moves the stored job running → complete | failed
 * through compare-and-set, so a job delivered twice (BullMQ is at-least-once) is finished once. Cancels
 * arrive as aborted signals from the queue; `drain` finishes running work and fails or hands back the rest.
 */
import { ErrorCode, isAppError, UnreachableCaseError } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  ClassifyRequest,
  ClassifyResult,
  EmbeddingVectors,
  EmbedImagesRequest,
  EmbedTextsRequest,
} from '../clip/types.js';
import type { JobEvents } from './JobEvents.js';
import type { JobQueue, JobWork } from './JobQueue.js';
import type { JobStore } from './JobStore.js';
import { advanceJob, type TransitionDeps } from './transitions.js';
import { type EmbeddingResult, type Job, type JobFailure, type JobResult } from './types.js';

/** The part of ClipService a worker runs jobs on. */
export interface JobRunner {
  classify(request: ClassifyRequest): Promise<ClassifyResult>;
  embedImages(request: EmbedImagesRequest): Promise<EmbeddingVectors>;
  embedTexts(request: EmbedTextsRequest): Promise<EmbeddingVectors>;
}

export interface JobWorkerOptions {
  clip: JobRunner;
  store: JobStore;
  events: JobEvents;
  queue: JobQueue;
  logger: Logger;
  /** Jobs run at once by this worker; the rest wait QUEUED. */
  maxConcurrentJobs: number;
  /** How long a job is kept after its last change, in seconds. */
  ttlSeconds: number;
  /** Called with each state this worker stored. */
  onChanged?: (job: Job) => void;
}

export class JobWorker {
  readonly #clip: JobRunner;
  readonly #queue: JobQueue;
  readonly #logger: Logger;
  readonly #deps: TransitionDeps;
  readonly #maxConcurrentJobs: number;
  #started = false;

  constructor(options: JobWorkerOptions) {
    this.#clip = options.clip;
    this.#queue = options.queue;
    this.#logger = options.logger;
    this.#maxConcurrentJobs = options.maxConcurrentJobs;
    this.#deps = { store: options.store, events: options.events, logger: options.logger, ttlSeconds: options.ttlSeconds, onChanged: options.onChanged };
    if (!Number.isInteger(this.#maxConcurrentJobs) || this.#maxConcurrentJobs < 1) {
      throw new TypeError(`JobWorker: expected maxConcurrentJobs to be an integer >= 1, got ${this.#maxConcurrentJobs}`);
    }
  }

  /** Starts consuming the queue. Idempotent. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#queue.onLost((id) => {
      void this.#fail(id, { code: ErrorCode.WorkerLost, message: 'the worker running the job was lost (crashed or cut off) more often than MAX_STALLED_COUNT allows' });
    });
    this.#queue.process((work, signal) => this.#run(work, signal), this.#maxConcurrentJobs);
  }

  /**
   * Stops taking work and waits, at most `timeoutMs`, for running jobs. Work no other process will run is
   * FAILED with SHUTTING_DOWN, so every watcher sees a terminal state. Resolves to the number failed that way.
   */
  async drain(timeoutMs: number): Promise<number> {
    const leftovers = await this.#queue.drain(timeoutMs);
    const failed = await Promise.all(
      leftovers.map(async (id) => {
        const outcome = await this.#fail(id, { code: ErrorCode.ShuttingDown, message: 'the server shut down before the job finished' });
        await this.#queue.release(id).catch(() => undefined);
        return outcome;
      }),
    );
    return failed.filter(Boolean).length;
  }

  async #fail(id: string, error: JobFailure): Promise<boolean> {
    try {
      const { changed } = await advanceJob(this.#deps, id, (current) => ({
        ...current,
        status: 'failed',
        startedAt: current.status === 'running' ? current.startedAt : null,
        finishedAt: new Date(),
        error,
      }));
      return changed;
    } catch (failure) {
      this.#logger.error({ err: failure, jobId: id }, 'could not fail a job');
      return false;
    }
  }

  async #run(work: JobWork, signal: AbortSignal): Promise<void> {
    try {
      const { job: running } = await advanceJob(this.#deps, work.id, (current) =>
        current.status === 'queued' ? { ...current, status: 'running', startedAt: new Date() } : null,
      );
      // Unknown (expired), cancelled, or already finished by an earlier delivery: nothing to do.
      // A RUNNING job here is a redelivery after its worker was lost: run it again; the CAS below decides.
      if (running === undefined || running.status !== 'running' || signal.aborted) return;
      try {
        const result = await this.#infer(running, work, signal);
        await advanceJob(this.#deps, work.id, (current) =>
          current.status === 'running' ? { ...current, status: 'complete', finishedAt: new Date(), result } : null,
        );
      } catch (error) {
        // A cancel or drain aborted the inference: the job's state is theirs to set.
        if (signal.aborted) return;
        const failure = this.#toFailure(error, running);
        await advanceJob(this.#deps, work.id, (current) =>
          current.status === 'running' ? { ...current, status: 'failed', finishedAt: new Date(), error: failure } : null,
        );
      }
    } catch (error) {
      // The store is unreachable: leave the job to be redelivered (Redis) or failed by drain (memory).
      this.#logger.error({ err: error, jobId: work.id }, 'job transition failed');
      throw error;
    }
  }

  /** The task's inference, checked against the job's shape (one row per input, in order). */
  async #infer(job: Job, work: JobWork, signal: AbortSignal): Promise<JobResult> {
    const { images, prompt } = work;
    switch (job.task) {
      case 'classification':
        return toClassificationResult(await this.#clip.classify({ model: job.model, images, labels: job.classes, prompt, signal }), job);
      case 'image-embedding':
        return toEmbeddingResult(await this.#clip.embedImages({ model: job.model, images, signal }), job.task, job.imageCount);
      case 'text-embedding':
        return toEmbeddingResult(await this.#clip.embedTexts({ model: job.model, texts: job.texts, prompt, signal }), job.task, job.texts.length);
      default:
        throw new UnreachableCaseError(job.task);
    }
  }

  #toFailure(error: unknown, job: Job): JobFailure {
    if (isAppError(error)) return { code: error.code, message: error.message };
    this.#logger.error({ err: error, jobId: job.id, model: job.model }, 'job failed with an unexpected error');
    return { code: ErrorCode.InternalServerError, message: 'internal error' };
  }
}

function toClassificationResult(result: ClassifyResult, job: Job): JobResult {
  const rows = result.probabilities;
  if (rows.length !== job.imageCount || rows.some((row) => row.length !== job.classes.length)) {
    throw new Error(`classifier returned ${rows.length} rows of ${rows[0]?.length ?? 0} for ${job.imageCount} images × ${job.classes.length} classes`);
  }
  return { task: 'classification', images: rows.map((probabilities) => ({ probabilities: [...probabilities] })) };
}

function toEmbeddingResult(result: EmbeddingVectors, task: EmbeddingResult['task'], inputs: number): EmbeddingResult {
  const rows = result.embeddings;
  const width = rows[0]?.length ?? 0;
  if (rows.length !== inputs || width === 0 || rows.some((row) => row.length !== width)) {
    throw new Error(`embedder returned ${rows.length} vectors of ${width} for ${inputs} inputs`);
  }
  return { task, embeddings: rows };
}

