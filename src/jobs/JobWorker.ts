/**
 * The worker side of jobs: takes work from the JobQueue (up to `maxConcurrentJobs` at once, so the CLIP
 * batchers fill across jobs), runs it on ClipService and moves the stored job running → complete | failed
 * through compare-and-set, so a job delivered twice (BullMQ is at-least-once) is finished once. Cancels
 * arrive as aborted signals from the queue; `drain` finishes running work and fails or hands back the rest.
 *
 * A store write that meets a backend outage is retried until the backend is back (or the job is cancelled, or
 * the worker stops), with the computed result held meanwhile: a job is never left RUNNING because its final
 * state could not be written. Until then its delivery stays unacknowledged, so a worker that dies while
 * waiting loses nothing: stalled-job recovery delivers the job again and the compare-and-set decides.
 */
import { AppError, ErrorCode, isAppError, UnreachableCaseError } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  ClassifyRequest,
  ClassifyResult,
  EmbeddingVectors,
  EmbedImagesRequest,
  EmbedTextsRequest,
} from '../clip/index.js';
import type { JobClassifiers } from './classifierPort.js';
import type { JobEvents } from './JobEvents.js';
import type { GiveUpReason, JobQueue, TakenWork } from './JobQueue.js';
import type { JobStore } from './JobStore.js';
import { retryWhileUnreachable } from './retry.js';
import { advanceJob, type TransitionDeps } from './transitions.js';
import { type EmbeddingResult, type Job, type JobFailure, type JobResult } from './types.js';

/** The part of ClipService a worker runs jobs on. */
export interface JobRunner {
  /** Resolves once the model runs, starting it when lazy or stopped; throws MODEL_UNAVAILABLE when it cannot load. */
  prepareModel(model: string): Promise<void>;
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
  /** Runs classifications on stored classifiers; such a job fails without it. */
  classifiers?: JobClassifiers | undefined;
}

export class JobWorker {
  readonly #clip: JobRunner;
  readonly #classifiers: JobClassifiers | undefined;
  readonly #queue: JobQueue;
  readonly #logger: Logger;
  readonly #deps: TransitionDeps;
  readonly #maxConcurrentJobs: number;
  readonly #storedListeners = new Set<(job: Job) => void>();
  /** Aborted once drained: ends the retries of writes waiting for the backend. */
  readonly #stopping = new AbortController();
  #started = false;

  constructor(options: JobWorkerOptions) {
    this.#clip = options.clip;
    this.#classifiers = options.classifiers;
    this.#queue = options.queue;
    this.#logger = options.logger;
    this.#maxConcurrentJobs = options.maxConcurrentJobs;
    const onChanged = (job: Job): void => {
      for (const listener of this.#storedListeners) listener(job);
    };
    this.#deps = {
      store: options.store,
      events: options.events,
      logger: options.logger,
      ttlSeconds: options.ttlSeconds,
      onChanged,
    };
    if (!Number.isInteger(this.#maxConcurrentJobs) || this.#maxConcurrentJobs < 1) {
      throw new TypeError(
        `JobWorker: expected maxConcurrentJobs to be an integer >= 1, got ${this.#maxConcurrentJobs}`,
      );
    }
  }

  /** Calls `listener` with every state this worker stores (per-process totals); the returned function removes it. */
  onStored(listener: (job: Job) => void): () => void {
    this.#storedListeners.add(listener);
    return () => this.#storedListeners.delete(listener);
  }

  /** Starts consuming the queue. Idempotent. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#queue.onGivenUp((id, reason) => void this.#fail(id, givenUpFailure(reason)));
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
        const outcome = await this.#fail(id, {
          code: ErrorCode.ShuttingDown,
          message: 'the server shut down before the job finished',
        });
        await this.#queue.release(id).catch(() => undefined);
        return outcome;
      }),
    );
    this.#stopping.abort();
    return failed.filter(Boolean).length;
  }

  async #fail(id: string, error: JobFailure): Promise<boolean> {
    try {
      const { changed } = await this.#persist(id, () =>
        advanceJob(this.#deps, id, (current) => ({
          ...current,
          status: 'failed',
          startedAt: current.status === 'running' ? current.startedAt : null,
          finishedAt: new Date(),
          error,
        })),
      );
      return changed;
    } catch (failure) {
      this.#logger.error({ err: failure, jobId: id }, 'could not fail a job');
      return false;
    }
  }

  async #run(work: TakenWork, signal: AbortSignal): Promise<void> {
    try {
      // A lazy or stopped model starts here; its jobs wait QUEUED while it loads, and fail if it cannot.
      try {
        await this.#clip.prepareModel(work.job.model);
        // A classifier still building holds its jobs QUEUED until its weights are ready.
        if (work.job.classifier !== undefined)
          await this.#classifiersFor(work.job).prepare(work.job.classifier, work.job.model, signal);
      } catch (error) {
        if (signal.aborted) return;
        await this.#fail(work.id, this.#toFailure(error, work.job));
        return;
      }
      const { job: running } = await this.#persist(
        work.id,
        () =>
          advanceJob(
            this.#deps,
            work.id,
            (current) =>
              current.status === 'queued' ? { ...current, status: 'running', startedAt: new Date() } : null,
            work.job,
          ),
        signal,
      );
      // Unknown (expired), cancelled, or already finished by an earlier delivery: nothing to do.
      // A RUNNING job here is a redelivery after its worker was lost: run it again; the CAS below decides.
      if (running === undefined || running.status !== 'running' || signal.aborted) {
        if (running === undefined)
          this.#logger.info({ jobId: work.id }, 'job gone (expired or deleted) before it ran; dropped');
        return;
      }
      let outcome: (current: Job) => Job | null;
      try {
        const result = await this.#infer(running, work, signal);
        outcome = (current) =>
          current.status === 'running' ? { ...current, status: 'complete', finishedAt: new Date(), result } : null;
      } catch (error) {
        // A cancel or drain aborted the inference: the job's state is theirs to set.
        if (signal.aborted) return;
        const failure = this.#toFailure(error, running);
        outcome = (current) =>
          current.status === 'running'
            ? { ...current, status: 'failed', finishedAt: new Date(), error: failure }
            : null;
      }
      // Held through an outage: the result is stored once the backend is back, not recomputed.
      await this.#persist(work.id, () => advanceJob(this.#deps, work.id, outcome, running), signal);
    } catch (error) {
      // Stopped (cancel, shutdown) while the store was unreachable, or the store failed otherwise: the delivery stays
      // unacknowledged, for a redelivery (Redis) or drain (memory) to settle.
      this.#logger.error({ err: error, jobId: work.id }, 'job transition failed');
      throw error;
    }
  }

  /** Retries `write` while the store is unreachable, until it succeeds, `signal` aborts or the worker stops. */
  #persist<T>(id: string, write: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return retryWhileUnreachable(write, {
      signal: signal === undefined ? this.#stopping.signal : AbortSignal.any([signal, this.#stopping.signal]),
      onOutage: (error) =>
        this.#logger.warn({ err: error, jobId: id }, 'the job store is unreachable; retrying until it is back'),
    });
  }

  /** The task's inference, checked against the job's shape (one row per input, in order). */
  async #infer(job: Job, work: TakenWork, signal: AbortSignal): Promise<JobResult> {
    const { prompt } = work;
    const images =
      job.imageCount === 0 ? [] : await this.#persist(job.id, () => work.loadImages(job.expiresAt), signal);
    if (images === undefined)
      throw new AppError(
        ErrorCode.InternalServerError,
        "the job's images are gone from the queue (the job ended or expired meanwhile)",
      );
    switch (job.task) {
      case 'classification':
        if (job.classifier !== undefined)
          return toClassificationResult(
            await this.#classifiersFor(job).classify({ id: job.classifier, model: job.model, images, signal }),
            job,
          );
        return toClassificationResult(
          await this.#clip.classify({ model: job.model, images, labels: job.classes, prompt, signal }),
          job,
        );
      case 'image-embedding':
        return toEmbeddingResult(
          await this.#clip.embedImages({ model: job.model, images, signal }),
          job.task,
          job.imageCount,
        );
      case 'text-embedding':
        return toEmbeddingResult(
          await this.#clip.embedTexts({ model: job.model, texts: job.texts, prompt, signal }),
          job.task,
          job.texts.length,
        );
      default:
        throw new UnreachableCaseError(job.task);
    }
  }

  #classifiersFor(job: Job): JobClassifiers {
    if (this.#classifiers === undefined)
      throw new AppError(ErrorCode.ModelUnavailable, `this worker keeps no classifiers; job ${job.id} needs one`);
    return this.#classifiers;
  }

  #toFailure(error: unknown, job: Job): JobFailure {
    if (isAppError(error)) return { code: error.code, message: error.message };
    this.#logger.error({ err: error, jobId: job.id, model: job.model }, 'job failed with an unexpected error');
    return { code: ErrorCode.InternalServerError, message: 'internal error' };
  }
}

function givenUpFailure(reason: GiveUpReason): JobFailure {
  switch (reason) {
    case 'stalled':
      return {
        code: ErrorCode.WorkerLost,
        message: 'the worker running the job was lost (crashed or cut off) more often than MAX_STALLED_COUNT allows',
      };
    case 'failed':
      return { code: ErrorCode.InternalServerError, message: 'the job could not be run: every delivery of it failed' };
    default:
      throw new UnreachableCaseError(reason);
  }
}

function toClassificationResult(result: ClassifyResult, job: Job): JobResult {
  const rows = result.probabilities;
  if (rows.length !== job.imageCount || rows.some((row) => row.length !== job.classes.length)) {
    throw new Error(
      `classifier returned ${rows.length} rows of ${rows[0]?.length ?? 0} for ${job.imageCount} images × ${job.classes.length} classes`,
    );
  }
  return { task: 'classification', images: rows.map((probabilities) => ({ probabilities: [...probabilities] })) };
}

function toEmbeddingResult(result: EmbeddingVectors, task: EmbeddingResult['task'], inputs: number): EmbeddingResult {
  const rows = result.embeddings;
  const width = rows[0]?.length ?? 0;
  if (rows.length !== inputs || width === 0 || rows.some((row) => row.length !== width)) {
    throw new Error(`embedder returned ${rows.length} vectors of ${width} for ${inputs} inputs`);
  }
  return result.tokens === undefined ? { task, embeddings: rows } : { task, embeddings: rows, tokens: result.tokens };
}
