/**
 * Admission: whether a job may be kept. The rule (`exceededLimit`) is in one place for the memory queue and the
 * API's early check (the Redis queue runs the same rule in its reserve script): a job is refused when the queue is
 * full (jobs, images, bytes), or when its owner already holds its fair share of the queue, so one API key flooding
 * the queue cannot refuse everyone else. `AdmissionControl` applies it on the API side, answers OVERLOADED naming the
 * setting, and stops admitting when the service drains (SHUTTING_DOWN).
 */
import { AppError, ErrorCode, UnreachableCaseError } from '../errors.js';
import type { Admission, AdmissionLimit, AdmissionLimits, JobQueue, QueueCounts, Reservation } from './JobQueue.js';

/** What a job would add to the counts. */
export interface AdmissionRequest {
  owner: string | null;
  images: number;
  imageBytes: number;
}

/** The first limit the job would pass, or null when it fits. Jobs without an owner (authentication off) have no share. */
export function exceededLimit(
  counts: QueueCounts,
  request: AdmissionRequest,
  limits: AdmissionLimits,
): AdmissionLimit | null {
  if (counts.jobs >= limits.maxJobs) return 'jobs';
  if (counts.images + request.images > limits.maxImages) return 'images';
  if (counts.imageBytes + request.imageBytes > limits.maxImageBytes) return 'imageBytes';
  if (request.owner === null) return null;
  const own = counts.owners[request.owner] ?? { jobs: 0, images: 0 };
  if (own.jobs >= limits.maxJobsPerOwner) return 'ownerJobs';
  if (own.images + request.images > limits.maxImagesPerOwner) return 'ownerImages';
  return null;
}

/** The cluster-wide bounds on unfinished work, by their settings' names. */
export interface AdmissionSettings {
  /** Queued + running jobs (MAX_QUEUED_JOBS). */
  maxQueuedJobs: number;
  /** Images held by unfinished jobs (MAX_QUEUED_IMAGES). */
  maxQueuedImages: number;
  /** Encoded image bytes held by unfinished jobs (MAX_PENDING_IMAGE_BYTES). */
  maxPendingImageBytes: number;
  /** One API key's queued + running jobs (MAX_QUEUED_JOBS_PER_KEY). */
  maxQueuedJobsPerKey: number;
  /** Images held by one API key's unfinished jobs (MAX_QUEUED_IMAGES_PER_KEY). */
  maxQueuedImagesPerKey: number;
}

type Refusal = Exclude<Admission, { admitted: true }>;

export interface AdmissionControlOptions {
  queue: JobQueue;
  settings: AdmissionSettings;
  /** Images waiting in this process's batchers, which count even when they are not a job's (direct ClipService callers). */
  queuedImages: () => number;
}

export class AdmissionControl {
  readonly #queue: JobQueue;
  readonly #settings: AdmissionSettings;
  readonly #limits: AdmissionLimits;
  readonly #queuedImages: () => number;
  /** Admissions under way: `stopAccepting` waits for them, so none is enqueued after the queue drained. */
  readonly #admitting = new Set<Promise<unknown>>();
  #stopped = false;

  constructor(options: AdmissionControlOptions) {
    this.#queue = options.queue;
    this.#settings = options.settings;
    this.#queuedImages = options.queuedImages;
    this.#limits = {
      maxJobs: options.settings.maxQueuedJobs,
      maxImages: options.settings.maxQueuedImages,
      maxImageBytes: options.settings.maxPendingImageBytes,
      maxJobsPerOwner: options.settings.maxQueuedJobsPerKey,
      maxImagesPerOwner: options.settings.maxQueuedImagesPerKey,
    };
  }

  /** Whether new jobs are refused because the service is draining. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Throws SHUTTING_DOWN once `stopAccepting` was called. */
  assertAccepting(): void {
    if (this.#stopped)
      throw new AppError(ErrorCode.ShuttingDown, 'the server is shutting down and accepts no new jobs');
  }

  /** Refuses every later submission, and resolves once the admissions under way have settled. */
  async stopAccepting(): Promise<void> {
    this.#stopped = true;
    await Promise.allSettled([...this.#admitting]);
  }

  /** Runs one admission past its last SHUTTING_DOWN check, so `stopAccepting` waits for it. */
  async track<T>(admitting: Promise<T>): Promise<T> {
    this.#admitting.add(admitting);
    try {
      return await admitting;
    } finally {
      this.#admitting.delete(admitting);
    }
  }

  /**
   * Throws OVERLOADED when a job of `imageCount` images and `imageBytes` bytes would pass a limit. A check before
   * `reserve`, which alone decides (atomically, cluster-wide): it spares the decoding and the round trips of a job
   * that cannot be kept, and it also counts this process's batchers. It is first made on the counts as last seen,
   * which cost nothing but on Redis can be a second old (another API's burst may have drained since), so a refusal
   * is made only on counts read again: nobody is refused on a stale view.
   */
  async refuseIfSaturated(request: AdmissionRequest): Promise<void> {
    if (this.#saturation(this.#queue.lastCounts(), request) === null) return;
    const refusal = this.#saturation(await this.#queue.counts(), request);
    if (refusal !== null) throw this.#refusal(refusal, request.owner);
  }

  /** Reserves the job's place and bytes in the queue (the deciding, atomic check); throws OVERLOADED when refused. */
  async reserve(reservation: Reservation): Promise<void> {
    const admission = await this.#queue.reserve(reservation, this.#limits);
    if (!admission.admitted) throw this.#refusal(admission, reservation.owner);
  }

  #saturation(queueCounts: QueueCounts, request: AdmissionRequest): Refusal | null {
    const counts = { ...queueCounts, images: Math.max(queueCounts.images, this.#queuedImages()) };
    const limit = exceededLimit(counts, request, this.#limits);
    return limit === null ? null : { admitted: false, limit, counts };
  }

  /**
   * Every image of an unfinished job counts until the job ends, whether it waits in the queue or in a batcher:
   * otherwise jobs admitted while others decode overfill the classifier's queue, which then fails jobs already
   * accepted with OVERLOADED.
   */
  #refusal(admission: Refusal, owner: string | null): AppError {
    const { maxQueuedJobs, maxQueuedImages, maxPendingImageBytes, maxQueuedJobsPerKey, maxQueuedImagesPerKey } =
      this.#settings;
    const own = owner === null ? undefined : admission.counts.owners[owner];
    switch (admission.limit) {
      case 'jobs':
        return new AppError(
          ErrorCode.Overloaded,
          `too many jobs in progress (${admission.counts.jobs}, MAX_QUEUED_JOBS=${maxQueuedJobs}); retry later`,
        );
      case 'images':
        return new AppError(
          ErrorCode.Overloaded,
          `too many images waiting for inference (${admission.counts.images}, MAX_QUEUED_IMAGES=${maxQueuedImages}); retry later`,
        );
      case 'imageBytes':
        return new AppError(
          ErrorCode.Overloaded,
          `too many image bytes held by unfinished jobs (MAX_PENDING_IMAGE_BYTES=${maxPendingImageBytes}); retry later`,
        );
      case 'ownerJobs':
        return new AppError(
          ErrorCode.Overloaded,
          `too many jobs in progress for this API key (${own?.jobs ?? maxQueuedJobsPerKey}, MAX_QUEUED_JOBS_PER_KEY=${maxQueuedJobsPerKey}); retry later`,
        );
      case 'ownerImages':
        return new AppError(
          ErrorCode.Overloaded,
          `too many images waiting for inference for this API key (${own?.images ?? maxQueuedImagesPerKey}, MAX_QUEUED_IMAGES_PER_KEY=${maxQueuedImagesPerKey}); retry later`,
        );
      default:
        throw new UnreachableCaseError(admission.limit);
    }
  }
}
