/**
 * Job events: a typed event map and the bus interface JobService emits on. In-process here; a Redis
 * pub/sub bus can implement the same interface so subscribers on other instances see the changes.
 */
import { EventEmitter } from 'node:events';
import type { Job } from './types.js';

/** Event name → listener arguments. `jobUpdated` fires on every status change, with the new state. */
export type JobEventMap = {
  jobUpdated: [job: Job];
};

export type JobEventName = keyof JobEventMap;
export type JobEventListener<K extends JobEventName> = (...args: JobEventMap[K]) => void;

export interface JobEvents {
  emit<K extends JobEventName>(event: K, ...args: JobEventMap[K]): void;
  /** Adds a listener; the returned function removes it (safe to call twice). */
  on<K extends JobEventName>(event: K, listener: JobEventListener<K>): () => void;
  /** Current listeners of an event (for leak checks and metrics). */
  listenerCount(event: JobEventName): number;
}

/** The in-process bus. A throwing listener is isolated: it never breaks the emitter or other listeners. */
export class MemoryJobEvents implements JobEvents {
  readonly #emitter = new EventEmitter<JobEventMap>();
  readonly #onListenerError: (error: unknown) => void;

  /** @param onListenerError called when a listener throws (default: ignore). */
  constructor(onListenerError: (error: unknown) => void = () => {}) {
    // Every live subscription is a listener; their number is bounded by connections, not by this limit.
    this.#emitter.setMaxListeners(0);
    this.#onListenerError = onListenerError;
  }

  emit<K extends JobEventName>(event: K, ...args: JobEventMap[K]): void {
    const listeners = this.#emitter.listeners(event) as unknown as JobEventListener<K>[];
    for (const listener of listeners) {
      try {
        listener(...args);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }

  on<K extends JobEventName>(event: K, listener: JobEventListener<K>): () => void {
    const wrapped = listener as unknown as Parameters<EventEmitter<JobEventMap>['on']>[1];
    this.#emitter.on(event, wrapped);
    return () => {
      this.#emitter.off(event, wrapped);
    };
  }

  listenerCount(event: JobEventName): number {
    return this.#emitter.listenerCount(event);
  }
}
