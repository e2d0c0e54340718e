/** The in-process bus: `publish` delivers to this process's listeners before it resolves. */
import { LocalEmitter, type JobEventListener, type JobEventName, type JobEvents } from '../JobEvents.js';
import type { Job } from '../types.js';

export class MemoryJobEvents implements JobEvents {
  readonly #local: LocalEmitter;

  /** @param onListenerError called when a listener throws (default: ignore). */
  constructor(onListenerError: (error: unknown) => void = () => {}) {
    this.#local = new LocalEmitter(onListenerError);
  }

  async publish(job: Job): Promise<void> {
    this.#local.emit('jobUpdated', job);
  }

  on<K extends JobEventName>(event: K, listener: JobEventListener<K>): () => void {
    return this.#local.on(event, listener);
  }

  listenerCount(event: JobEventName): number {
    return this.#local.listenerCount(event);
  }

  async close(): Promise<void> {}
}
