/**
 * Job events: a typed event map and the bus both job sides use. `publish` reaches every process of the
 * deployment (MemoryJobEvents: this one; RedisJobEvents: all, over Redis pub/sub); `on` listens here, to
 * changes published anywhere. Pub/sub may lose messages (Redis away) or repeat them: each job carries a
 * `version`, so listeners drop what they have already seen, and `resynced` tells them to re-read the store.
 */
import type { Job } from './types.js';

/** Event name → listener arguments. */
export type JobEventMap = {
  /** A job changed; fires once per stored transition (possibly more than once: compare `version`). */
  jobUpdated: [job: Job];
  /** The bus reconnected: changes may have been missed meanwhile, so watchers re-read their jobs. */
  resynced: [];
};

export type JobEventName = keyof JobEventMap;
export type JobEventListener<K extends JobEventName> = (...args: JobEventMap[K]) => void;

export interface JobEvents {
  /** Announces a stored change to every listener in the deployment. */
  publish(job: Job): Promise<void>;
  /** Adds a listener; the returned function removes it (safe to call twice). */
  on<K extends JobEventName>(event: K, listener: JobEventListener<K>): () => void;
  /** Current listeners of an event (for leak checks and metrics). */
  listenerCount(event: JobEventName): number;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Local fan-out shared by both buses. A throwing listener is isolated: it never breaks the emitter or
 * other listeners.
 */
export class LocalEmitter {
  readonly #listeners: { [K in JobEventName]: Set<JobEventListener<K>> } = {
    jobUpdated: new Set(),
    resynced: new Set(),
  };
  readonly #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  emit<K extends JobEventName>(event: K, ...args: JobEventMap[K]): void {
    const listeners = this.#listeners[event] as Set<JobEventListener<K>>;
    for (const listener of [...listeners]) {
      try {
        listener(...args);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }

  on<K extends JobEventName>(event: K, listener: JobEventListener<K>): () => void {
    const listeners = this.#listeners[event] as Set<JobEventListener<K>>;
    // A wrapper, so the same function added twice is two subscriptions, each removed by its own handle.
    const wrapped: JobEventListener<K> = (...args) => listener(...args);
    listeners.add(wrapped);
    return () => {
      listeners.delete(wrapped);
    };
  }

  listenerCount(event: JobEventName): number {
    return this.#listeners[event].size;
  }
}
