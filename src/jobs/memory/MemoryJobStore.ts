/**
 * The in-process JobStore: a Map in creation order, each entry with an unref'd expiry timer, so a
 * job disappears at its `expiresAt` without keeping the process alive.
 */
import { decodeCursor, encodeCursor, type JobPage, type JobStore, type ListJobsOptions } from '../JobStore.js';
import type { Job, JobStatus } from '../types.js';

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
}

export class MemoryJobStore implements JobStore {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  #nextSeq = 0;
  #closed = false;

  constructor(options: MemoryJobStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
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
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    clearTimeout(entry.timer);
    this.#entries.delete(id);
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const entry of this.#entries.values()) clearTimeout(entry.timer);
    this.#entries.clear();
  }

  /** The entry unless expired; a timer that fired late must not resurrect a job past its TTL. */
  #live(id: string): Entry | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.job.expiresAt.getTime() <= this.#now()) {
      clearTimeout(entry.timer);
      this.#entries.delete(id);
      return undefined;
    }
    return entry;
  }

  #arm(job: Job): NodeJS.Timeout {
    const delayMs = Math.max(0, job.expiresAt.getTime() - this.#now());
    const timer = setTimeout(() => {
      const entry = this.#entries.get(job.id);
      if (entry === undefined || entry.timer !== timer) return;
      if (delayMs > MAX_TIMER_MS || entry.job.expiresAt.getTime() > this.#now()) {
        entry.timer = this.#arm(entry.job);
        return;
      }
      this.#entries.delete(job.id);
    }, Math.min(delayMs, MAX_TIMER_MS));
    timer.unref();
    return timer;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('job store is closed');
  }
}
