/**
 * Work waiting for a worker: MemoryJobQueue in one process, BullJobQueue (BullMQ on Redis) across a
 * cluster. The queue carries what the store does not: the image bytes and the prompt settings. It also
 * owns admission (`reserve`): the counts of unfinished jobs, images and bytes are the queue's, checked and
 * taken in one atomic step so limits hold across every API process.
 *
 * Work expires with its job: once the job's `expiresAt` passes while it still waits, the queue forgets the
 * work, its image bytes and its reservation, whether or not a worker ever comes.
 */
import type { PromptConfig } from '../clip/index.js';
import type { Job } from './types.js';

/** What a worker needs to run a job besides the stored Job and the reserved image bytes, as an API hands it to the queue. */
export interface JobWork {
  id: string;
  prompt: PromptConfig;
  /** The job as stored when enqueued: the worker's first compare-and-set tries it without reading the store. */
  job: Job;
}

/** Work as a worker takes it: the image bytes are read only once the job is known to run (not expired, not cancelled). */
export interface TakenWork {
  id: string;
  prompt: PromptConfig;
  /** The job as enqueued (possibly stale: a redelivery, a cancel; the compare-and-set then fails and the store is read). */
  job: Job;
  /**
   * The job's image bytes, kept in the queue until `keepUntil` (the running job's expiry, so a redelivery after a
   * lost worker still finds them); undefined when they are gone (the job ended, was cancelled or expired).
   */
  loadImages(keepUntil: Date): Promise<Uint8Array[] | undefined>;
}

/** What `reserve` takes for one job: its image bytes, counted against the limits and kept with the reservation. */
export interface Reservation {
  id: string;
  /** The job's owner (jobs/caller.ts), counted against the per-owner limits; null: no per-owner limit applies. */
  owner: string | null;
  images: Uint8Array[];
  /** The job's expiry as created: the bytes expire then unless a worker runs the job, and the queue releases the reservation. */
  expiresAt: Date;
}

/** Why the queue gave a job up: its worker was lost too often (`stalled`), or every delivery attempt failed (`failed`). */
export type GiveUpReason = 'stalled' | 'failed';

/** Unfinished work, cluster-wide. */
export interface QueueCounts {
  /** Admitted jobs not yet finished (waiting + running). */
  jobs: number;
  /** Jobs waiting for a worker. */
  waiting: number;
  /** Jobs a worker holds. */
  active: number;
  /** Images of unfinished jobs. */
  images: number;
  /** Encoded image bytes of unfinished jobs. */
  imageBytes: number;
  /** Unfinished jobs and their images per owner (keyed hash of an API key); owners with none are absent. */
  owners: Readonly<Record<string, OwnerCounts>>;
}

/** One owner's share of the unfinished work. */
export interface OwnerCounts {
  jobs: number;
  images: number;
}

export interface AdmissionLimits {
  maxJobs: number;
  maxImages: number;
  maxImageBytes: number;
  /** Bounds on one owner's unfinished jobs and images (a fair share of the queue per API key). */
  maxJobsPerOwner: number;
  maxImagesPerOwner: number;
}

/** Which bound refused a job: the queue's, or its owner's share. */
export type AdmissionLimit = 'jobs' | 'images' | 'imageBytes' | 'ownerJobs' | 'ownerImages';

export type Admission = { admitted: true } | { admitted: false; limit: AdmissionLimit; counts: QueueCounts };

/**
 * Runs one job. Resolves when the job is finished with (its terminal state stored, or nothing left to do).
 * Rejects only when its state could not be stored (the process shuts down during a backend outage): the
 * delivery then stays unacknowledged, for another worker to take over.
 */
export type JobHandler = (work: TakenWork, signal: AbortSignal) => Promise<void>;

export interface JobQueue {
  /**
   * Counts the job's images and bytes unless a limit would be passed, and keeps the bytes for the worker, in one
   * atomic step (on Redis one round trip).
   */
  reserve(reservation: Reservation, limits: AdmissionLimits): Promise<Admission>;
  /** Forgets a reservation and the work's image bytes (the job ended, expired or was never enqueued). Idempotent. */
  release(id: string): Promise<void>;
  /** Hands reserved work to the workers, in submission order. */
  enqueue(work: JobWork): Promise<void>;
  /** Starts running work on `handler`, at most `concurrency` at once in this process. */
  process(handler: JobHandler, concurrency: number): void;
  /** Removes waiting work, and aborts the handler running it (in whichever process). */
  cancel(id: string): Promise<void>;
  counts(): Promise<QueueCounts>;
  /** The counts as this process last saw them (exact in memory; refreshed by every Redis call and a poll), for metrics. */
  lastCounts(): QueueCounts;
  /**
   * Called with a job's id when the queue gives it up: its worker was lost more often than the stall bound
   * allows, or its deliveries kept failing. The job's stored state is then the listener's to end.
   */
  onGivenUp(listener: (id: string, reason: GiveUpReason) => void): void;
  /**
   * Stops taking work and waits, at most `timeoutMs`, for running handlers (and, for a queue no other process
   * reads, waiting work). Resolves to the ids of work left unfinished that no other process will run.
   */
  drain(timeoutMs: number): Promise<string[]>;
  /** Releases timers and connections. Idempotent. */
  close(): Promise<void>;
}
