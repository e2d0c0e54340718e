/**
 * The in-process JobStore: a Map in creation order, each entry with an unref'd expiry timer, so a
 * job disappears at its `expiresAt` without keeping the process alive. Finished jobs are also held to the
 * retention budget (retention.ts): past it, those that finished first are forgotten before their TTL.
 */
import { decodeCursor, encodeCursor, type JobPage, type JobStore, type ListJobsOptions } from '../JobStore.js';
import { estimatedJobHeapBytes, type RetentionStats } from '../retention.js';
import { isTerminal, type Job, type JobStatus } from '../types.js';

interface Entry {
  job: Job;
  /** Creation sequence number: the cursor, stable while other jobs come and go. */
  seq: number;
  timer: NodeJS.Timeout;
}

// setTimeout fires at once for delays over 2^31-1 ms (~24.8 days); longer TTLs re-arm.
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface MemoryJobStoreOptions {
  /** The clock, in ms since the epoch (tests may pass a fake); default Date.now. */
  now?: () => number;
  /**
   * MAX_RETAINED_JOB_BYTES: the estimated heap bytes finished jobs may hold before the oldest are forgotten
   * early; no bound when omitted.
   */
  maxRetainedBytes?: number;
}

export class MemoryJobStore implements JobStore {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #maxRetainedBytes: number;
  /** Finished jobs' estimated bytes by id, in the order they finished (a Map keeps insertion order). */
  readonly #finished = new Map<string, number>();
  #retainedBytes = 0;
  #evicted = 0;
  #nextSeq = 0;
  #closed = false;

  constructor(options: MemoryJobStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    const max = options.maxRetainedBytes ?? Number.POSITIVE_INFINITY;
    if (!(max > 0))
      throw new TypeError(`MemoryJobStore: expected maxRetainedBytes to be a positive number, got ${max}`);
    this.#maxRetainedBytes = max;
  }

  /** Jobs currently held (expired ones are removed by their timers). */
  get size(): number {
    return this.#entries.size;
  }

  async create(job: Job): Promise<void> {
    this.#assertOpen();
    if (this.#entries.has(job.id)) throw new Error(`job ${job.id} already exists`);
    const seq = this.#nextSeq++;
    this.#entries.set(job.id, { job, seq, timer: this.#arm(job) });
  }

  async get(id: string): Promise<Job | undefined> {
    return this.#live(id)?.job;
  }

  async transition(id: string, from: JobStatus, job: Job): Promise<boolean> {
    this.#assertOpen();
    const entry = this.#live(id);
    if (entry === undefined || entry.job.status !== from || entry.job.version !== job.version - 1) return false;
    clearTimeout(entry.timer);
    entry.job = job;
    entry.timer = this.#arm(job);
    if (isTerminal(job)) this.#retain(job);
    return true;
  }

  async list(options: ListJobsOptions): Promise<JobPage> {
    const afterSeq = options.after === undefined ? -1 : decodeCursor(options.after);
    const now = this.#now();
    const jobs: Job[] = [];
    let endSeq: number | null = null;
    let hasNextPage = false;
    for (const entry of this.#entries.values()) {
      if (entry.seq <= afterSeq || entry.job.expiresAt.getTime() <= now) continue;
      if (options.status !== undefined && entry.job.status !== options.status) continue;
      if (options.owner !== undefined && entry.job.owner !== options.owner) continue;
      if (jobs.length === options.first) {
        hasNextPage = true;
        break;
      }
      jobs.push(entry.job);
      endSeq = entry.seq;
    }
    return { jobs, endCursor: endSeq === null ? null : encodeCursor(endSeq), hasNextPage };
  }

  async delete(id: string): Promise<boolean> {
    return this.#remove(id);
  }

  async retention(): Promise<RetentionStats> {
    return { bytes: this.#retainedBytes, jobs: this.#finished.size, evicted: this.#evicted };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const entry of this.#entries.values()) clearTimeout(entry.timer);
    this.#entries.clear();
    this.#finished.clear();
    this.#retainedBytes = 0;
  }

  /** Counts a job that just finished against the budget, then forgets the oldest finished jobs while over it. */
  #retain(job: Job): void {
    const bytes = estimatedJobHeapBytes(job);
    this.#finished.set(job.id, bytes);
    this.#retainedBytes += bytes;
    for (const id of this.#finished.keys()) {
      if (this.#retainedBytes <= this.#maxRetainedBytes || id === job.id) break;
      this.#remove(id);
      this.#evicted += 1;
    }
  }

  /** The one way a job leaves the store (deleted, expired, evicted): its timer and its retained bytes go with it. */
  #remove(id: string): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    clearTimeout(entry.timer);
    this.#entries.delete(id);
    const bytes = this.#finished.get(id);
    if (bytes !== undefined) {
      this.#finished.delete(id);
      this.#retainedBytes -= bytes;
    }
    return true;
  }

  /** The entry unless expired; a timer that fired late must not resurrect a job past its TTL. */
  #live(id: string): Entry | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.job.expiresAt.getTime() <= this.#now()) {
      this.#remove(id);
      return undefined;
    }
    return entry;
  }

  #arm(job: Job): NodeJS.Timeout {
    const delayMs = Math.max(0, job.expiresAt.getTime() - this.#now());
    const timer = setTimeout(
      () => {
        const entry = this.#entries.get(job.id);
        if (entry === undefined || entry.timer !== timer) return;
        if (delayMs > MAX_TIMER_MS || entry.job.expiresAt.getTime() > this.#now()) {
          entry.timer = this.#arm(entry.job);
          return;
        }
        this.#remove(job.id);
      },
      Math.min(delayMs, MAX_TIMER_MS),
    );
    timer.unref();
    return timer;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('job store is closed');
  }
}
