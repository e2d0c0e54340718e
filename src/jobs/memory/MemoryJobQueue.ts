/**
 * The in-process queue: a FIFO of work, handlers run here with bounded concurrency, reservations in a Map.
 * Nobody else reads it, so `drain` waits for waiting work too and reports what is left.
 */
import type { Admission, AdmissionLimits, JobHandler, JobQueue, JobWork, QueueCounts } from '../JobQueue.js';

interface Reservation {
  images: number;
  imageBytes: number;
}

export class MemoryJobQueue implements JobQueue {
  readonly #reservations = new Map<string, Reservation>();
  readonly #waiting: JobWork[] = [];
  readonly #running = new Map<string, AbortController>();
  #images = 0;
  #imageBytes = 0;
  #handler: JobHandler | null = null;
  #concurrency = 1;
  #draining = false;
  #idleWaiters: (() => void)[] = [];

  async reserve(id: string, imageCount: number, imageBytes: number, limits: AdmissionLimits): Promise<Admission> {
    const counts = this.#counts();
    if (counts.jobs >= limits.maxJobs) return { admitted: false, limit: 'jobs', counts };
    if (counts.images + imageCount > limits.maxImages) return { admitted: false, limit: 'images', counts };
    if (counts.imageBytes + imageBytes > limits.maxImageBytes) return { admitted: false, limit: 'imageBytes', counts };
    this.#reservations.set(id, { images: imageCount, imageBytes });
    this.#images += imageCount;
    this.#imageBytes += imageBytes;
    return { admitted: true };
  }

  async release(id: string): Promise<void> {
    const reservation = this.#reservations.get(id);
    if (reservation === undefined) return;
    this.#reservations.delete(id);
    this.#images -= reservation.images;
    this.#imageBytes -= reservation.imageBytes;
    this.#wakeIfIdle();
  }

  async enqueue(work: JobWork): Promise<void> {
    this.#waiting.push(work);
    // Next macrotask: the submitter gets the QUEUED job back before it can start running.
    setImmediate(() => this.#pump());
  }

  process(handler: JobHandler, concurrency: number): void {
    this.#handler = handler;
    this.#concurrency = concurrency;
    setImmediate(() => this.#pump());
  }

  async cancel(id: string): Promise<void> {
    const index = this.#waiting.findIndex((work) => work.id === id);
    if (index >= 0) {
      this.#waiting.splice(index, 1);
      await this.release(id);
    }
    this.#running.get(id)?.abort();
  }

  async counts(): Promise<QueueCounts> {
    return this.#counts();
  }

  lastCounts(): QueueCounts {
    return this.#counts();
  }

  onLost(): void {
    // A worker in this process cannot be lost without the process.
  }

  async drain(timeoutMs: number): Promise<string[]> {
    // Work keeps flowing while draining: nobody else will run what waits here.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#whenIdle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.#draining = true;
    const left = [...this.#reservations.keys()];
    this.#waiting.length = 0;
    for (const controller of this.#running.values()) controller.abort();
    return left;
  }

  async close(): Promise<void> {
    this.#draining = true;
    this.#waiting.length = 0;
    for (const controller of this.#running.values()) controller.abort();
  }

  #counts(): QueueCounts {
    return {
      jobs: this.#reservations.size,
      waiting: this.#waiting.length,
      active: this.#running.size,
      images: this.#images,
      imageBytes: this.#imageBytes,
    };
  }

  #pump(): void {
    const handler = this.#handler;
    if (handler === null || this.#draining) return;
    while (this.#running.size < this.#concurrency && this.#waiting.length > 0) {
      const work = this.#waiting.shift() as JobWork;
      const controller = new AbortController();
      this.#running.set(work.id, controller);
      void handler(work, controller.signal)
        .catch(() => undefined)
        .finally(async () => {
          this.#running.delete(work.id);
          await this.release(work.id);
          this.#pump();
        });
    }
  }

  #whenIdle(): Promise<void> {
    if (this.#reservations.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #wakeIfIdle(): void {
    if (this.#reservations.size !== 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
