/**
 * Where jobs live between submission and expiry. Asynchronous throughout, because the planned Redis
 * implementation is; the in-process one is MemoryJobStore.
 */
import type { Job, JobStatus } from './types.js';

/** A page of `list`, in creation order. */
export interface JobPage {
  jobs: Job[];
  /** Pass as `after` to get the next page; null when the page is empty. */
  endCursor: string | null;
  hasNextPage: boolean;
}

export interface ListJobsOptions {
  /** Only jobs in this status. */
  status?: JobStatus | undefined;
  /** Page size (the caller bounds it). */
  first: number;
  /** An opaque cursor from a previous page's `endCursor`: jobs created after that one. */
  after?: string | undefined;
}

export interface JobStore {
  /** Stores a new job; it expires at `job.expiresAt`. */
  create(job: Job): Promise<void>;
  /** The job, or undefined when unknown or expired. */
  get(id: string): Promise<Job | undefined>;
  /**
   * Replaces a stored job (its expiry follows the new `expiresAt`). Returns false, storing nothing,
   * when the job is unknown or has expired meanwhile.
   */
  update(job: Job): Promise<boolean>;
  /** Jobs in creation order, optionally filtered by status. Throws InvalidCursorError for a foreign cursor. */
  list(options: ListJobsOptions): Promise<JobPage>;
  /** Forgets a job; false when it was unknown. */
  delete(id: string): Promise<boolean>;
  /** Releases timers and connections; the store is unusable afterwards. Idempotent. */
  close(): Promise<void>;
}

/** `after` is not a cursor this store produced. */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}
