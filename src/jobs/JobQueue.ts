/**
 * Work waiting for a worker: MemoryJobQueue in one process, BullJobQueue (BullMQ on Redis) across a
 * cluster. The queue carries what the store does not: the image bytes and the prompt settings. It also
 * owns admission (`reserve`): the counts of unfinished jobs, images and bytes are the queue's, checked and
 * taken in one atomic step so limits hold across every API process.
 */
import type { PromptConfig } from '../clip/types.js';

/** What a worker needs to run a job besides the stored Job. */
export interface JobWork {
  id: string;
  images: Uint8Array[];
  prompt: PromptConfig;
}

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
}

export interface AdmissionLimits {
  maxJobs: number;
  maxImages: number;
  maxImageBytes: number;
}

export type Admission = { admitted: true } | { admitted: false; limit: 'jobs' | 'images' | 'imageBytes'; counts: QueueCounts };

/**
 * Runs one job. Resolves when the job is finished with (its terminal state stored), or given up because
 * `signal` aborted (cancelled, or the worker is shutting down). Must not throw.
 */
export type JobHandler = (work: JobWork, signal: AbortSignal) => Promise<void>;

export interface JobQueue {
  /** Counts `imageCount` images and `imageBytes` bytes for job `id` unless a limit would be passed. */
  reserve(id: string, imageCount: number, imageBytes: number, limits: AdmissionLimits): Promise<Admission>;
  /** Forgets a reservation (the job ended, expired or was never enqueued). Idempotent. */
  release(id: string): Promise<void>;
  /** Hands work to the workers, in submission order. */
  enqueue(work: JobWork): Promise<void>;
  /** Starts running work on `handler`, at most `concurrency` at once in this process. */
  process(handler: JobHandler, concurrency: number): void;
  /** Removes waiting work, and aborts the handler running it (in whichever process). */
  cancel(id: string): Promise<void>;
  counts(): Promise<QueueCounts>;
  /** The counts as this process last saw them (exact in memory; refreshed by every Redis call and a poll), for metrics. */
  lastCounts(): QueueCounts;
  /** Called with a job's id when its worker was lost more often than the stall bound allows. */
  onLost(listener: (id: string) => void): void;
  /**
   * Stops taking work and waits, at most `timeoutMs`, for running handlers (and, for a queue no other process
   * reads, waiting work). Resolves to the ids of work left unfinished that no other process will run.
   */
  drain(timeoutMs: number): Promise<string[]>;
  /** Releases timers and connections. Idempotent. */
  close(): Promise<void>;
}
