/**
 * Watching jobs: an async iterator per watcher over one job's states, fed by the bus (JobEvents) and by the store
 * (the current state, and a re-read after the bus reconnects). Only versions newer than the last one pass, so
 * repeated, stale or reordered deliveries are dropped; the iterator ends after a terminal state. The open watchers
 * are counted, and `whenGone` lets a shutdown await the last one instead of polling the count.
 */
import { AppError, ErrorCode } from '../errors.js';
import { canAccess, visibleTo, type Caller } from './caller.js';
import type { JobEvents } from './JobEvents.js';
import type { JobStore } from './JobStore.js';
import { isTerminal, type Job } from './types.js';

export interface JobWatchersOptions {
  store: JobStore;
  events: JobEvents;
}

/** One watcher: `offer` feeds it states; `seen` tells whether any passed. */
interface Watcher {
  iterator: AsyncIterableIterator<Job>;
  offer: (job: Job) => void;
  seen: () => boolean;
}

export class JobWatchers {
  readonly #store: JobStore;
  readonly #events: JobEvents;
  #open = 0;
  /** Called when the last open watcher finishes. */
  readonly #goneListeners = new Set<() => void>();

  constructor(options: JobWatchersOptions) {
    this.#store = options.store;
    this.#events = options.events;
  }

  /** Open watchers in this process. */
  get count(): number {
    return this.#open;
  }

  /**
   * Resolves to an iterator over the job's states: the current one first, then every change; it ends
   * after a terminal state. Rejects with AppError NOT_FOUND for an unknown job, or one not `caller`'s to see.
   * Stopping early (`return()`) removes the listener at once.
   */
  async watch(caller: Caller, id: string): Promise<AsyncIterableIterator<Job>> {
    // Listen first, then read: a change stored after the read is published after the listener exists, so none is missed.
    const watcher = this.#openWatcher(caller, id);
    try {
      const current = visibleTo(caller, await this.#store.get(id));
      if (current === undefined && !watcher.seen()) {
        throw new AppError(ErrorCode.NotFound, `job ${JSON.stringify(id)} not found (unknown or expired)`);
      }
      if (current !== undefined) watcher.offer(current);
      return watcher.iterator;
    } catch (error) {
      await watcher.iterator.return?.();
      throw error;
    }
  }

  /** Resolves to true once no watcher is open, or to false after `timeoutMs` if some still are. */
  whenGone(timeoutMs: number): Promise<boolean> {
    if (this.#open === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (gone: boolean): void => {
        clearTimeout(timer);
        this.#goneListeners.delete(onGone);
        resolve(gone);
      };
      const onGone = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#goneListeners.add(onGone);
    });
  }

  #closed(): void {
    this.#open -= 1;
    if (this.#open > 0) return;
    for (const listener of [...this.#goneListeners]) listener();
  }

  /** A watcher of one job, counted as open until it finishes. After a bus reconnect it re-reads the store. */
  #openWatcher(caller: Caller, id: string): Watcher {
    const buffer: Job[] = [];
    let lastVersion = -1;
    let finished = false;
    let pending: ((result: IteratorResult<Job>) => void) | null = null;
    this.#open += 1;

    const unsubscribe = (): void => {
      offUpdated();
      offResynced();
    };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      unsubscribe();
      if (pending !== null) {
        const resolve = pending;
        pending = null;
        resolve({ value: undefined, done: true });
      }
      this.#closed();
    };
    const offer = (job: Job): void => {
      if (job.id !== id || finished || job.version <= lastVersion || !canAccess(caller, job)) return;
      lastVersion = job.version;
      if (pending !== null) {
        const resolve = pending;
        pending = null;
        if (isTerminal(job)) finish();
        resolve({ value: job, done: false });
      } else {
        // Nothing follows a terminal state: stop listening now, even if the consumer is slow to read it.
        if (isTerminal(job)) unsubscribe();
        buffer.push(job);
      }
    };
    const offUpdated = this.#events.on('jobUpdated', offer);
    const offResynced = this.#events.on('resynced', () => {
      void this.#store.get(id).then(
        (job) => job !== undefined && offer(job),
        () => undefined,
      );
    });

    const iterator: AsyncIterableIterator<Job> = {
      next: () => {
        const job = buffer.shift();
        if (job !== undefined) {
          // After a terminal state the iterator is done; the next `next()` reports it.
          if (isTerminal(job)) finish();
          return Promise.resolve({ value: job, done: false });
        }
        if (finished) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          pending = resolve;
        });
      },
      return: () => {
        finish();
        return Promise.resolve({ value: undefined, done: true });
      },
      throw: (error?: unknown) => {
        finish();
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return { iterator, offer, seen: () => lastVersion >= 0 };
  }
}
