/**
 * Where jobs live between submission and expiry: MemoryJobStore in one process, RedisJobStore across a
 * cluster. Changes go through compare-and-set `transition`, because several processes (APIs cancelling,
 * workers running a job BullMQ delivered twice) may race on one job: exactly one of them wins.
 */
import type { RetentionStats } from './retention.js';
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
  /** Only jobs of this owner (keyed hash of an API key); every job when absent. */
  owner?: string | undefined;
  /** Page size (the caller bounds it). */
  first: number;
  /** An opaque cursor from a previous page's `endCursor`: jobs created after that one. */
  after?: string | undefined;
}

export interface JobStore {
  /** Stores a new job; it expires at `job.expiresAt`. Throws when the id exists. */
  create(job: Job): Promise<void>;
  /** The job, or undefined when unknown or expired. */
  get(id: string): Promise<Job | undefined>;
  /**
   * Replaces the job with `next` only if it is still stored with status `from` and version `next.version - 1`
   * (its expiry follows `next.expiresAt`). Resolves to whether it did: false means someone else changed
   * the job first (or it expired), and the caller's change must not be announced.
   */
  transition(id: string, from: JobStatus, next: Job): Promise<boolean>;
  /** Jobs in creation order, optionally filtered by status. Throws InvalidCursorError for a foreign cursor. */
  list(options: ListJobsOptions): Promise<JobPage>;
  /** Forgets a job; false when it was unknown. */
  delete(id: string): Promise<boolean>;
  /**
   * What finished jobs hold against the retention budget (MAX_RETAINED_JOB_BYTES, see retention.ts). A store with a
   * budget forgets the jobs that finished first, before their TTL, once a finishing job takes it over the budget.
   */
  retention(): Promise<RetentionStats>;
  /** Releases timers and connections; the store is unusable afterwards. Idempotent. */
  close(): Promise<void>;
}

/** `after` is not a cursor this store produced. */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

const CURSOR_PREFIX = 'job:';

/** Cursors are creation sequence numbers, opaque to clients; shared by both stores so pages look alike. */
export function encodeCursor(seq: number): string {
  return Buffer.from(`${CURSOR_PREFIX}${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString();
  const seq = Number(text.slice(CURSOR_PREFIX.length));
  if (!text.startsWith(CURSOR_PREFIX) || !Number.isSafeInteger(seq) || seq < 0 || encodeCursor(seq) !== cursor) {
    throw new InvalidCursorError(`not a job cursor: ${JSON.stringify(cursor.slice(0, 64))}`);
  }
  return seq;
}
