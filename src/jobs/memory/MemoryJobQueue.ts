/**
 * The in-process queue: a FIFO of work, handlers run here with bounded concurrency, reservations in a Map.
 * Nobody else reads it, so `drain` waits for waiting work too and reports what is left. Waiting work has an
 * unref'd timer at its job's expiry, so an expired job's bytes and reservation go even when no worker runs.
 */
import { exceededLimit } from '../admission.js';
import type {
  Admission,
  AdmissionLimits,
  JobHandler,
  JobQueue,
  JobWork,
  OwnerCounts,
  QueueCounts,
  Reservation,
} from '../JobQueue.js';

// setTimeout fires at once for delays over 2^31-1 ms (~24.8 days); later expiries are left to the worker, which drops them.
const MAX_TIMER_MS = 2 ** 31 - 1;

export class MemoryJobQueue implements JobQueue {
  readonly #reservations = new Map<
    string,
    { owner: string | null; images: Uint8Array[]; imageBytes: number; expiresAt: Date }
  >();
  /** Per owner, only while it has unfinished jobs. */
  readonly #owners = new Map<string, OwnerCounts>();
  readonly #waiting: JobWork[] = [];
  readonly #expiryTimers = new Map<string, NodeJS.Timeout>();
  readonly #running = new Map<string, AbortController>();
  #images = 0;
  #imageBytes = 0;
  #handler: JobHandler | null = null;
  #concurrency = 1;
  #draining = false;
  #idleWaiters: (() => void)[] = [];

  async reserve(reservation: Reservation, limits: AdmissionLimits): Promise<Admission> {
    const { id, owner, images, expiresAt } = reservation;
    const imageBytes = images.reduce((sum, bytes) => sum + bytes.byteLength, 0);
    const counts = this.#counts();
    const limit = exceededLimit(counts, { owner, images: images.length, imageBytes }, limits);
    if (limit !== null) return { admitted: false, limit, counts };
    this.#reservations.set(id, { owner, images, imageBytes, expiresAt });
    this.#images += images.length;
    this.#imageBytes += imageBytes;
    if (owner !== null) {
      const own = this.#owners.get(owner) ?? { jobs: 0, images: 0 };
      this.#owners.set(owner, { jobs: own.jobs + 1, images: own.images + images.length });
    }
    return { admitted: true };
  }

  async release(id: string): Promise<void> {
    const reservation = this.#reservations.get(id);
    if (reservation === undefined) return;
    this.#reservations.delete(id);
    this.#images -= reservation.images.length;
    this.#imageBytes -= reservation.imageBytes;
    const own = reservation.owner === null ? undefined : this.#owners.get(reservation.owner);
    if (reservation.owner !== null && own !== undefined) {
      if (own.jobs <= 1) this.#owners.delete(reservation.owner);
      else this.#owners.set(reservation.owner, { jobs: own.jobs - 1, images: own.images - reservation.images.length });
    }
    this.#wakeIfIdle();
  }

  async enqueue(work: JobWork): Promise<void> {
    this.#waiting.push(work);
    this.#armExpiry(work);
    // Next macrotask: the submitter gets the QUEUED job back before it can start running.
    setImmediate(() => this.#pump());
  }

  process(handler: JobHandler, concurrency: number): void {
    this.#handler = handler;
    this.#concurrency = concurrency;
    setImmediate(() => this.#pump());
  }

  async cancel(id: string): Promise<void> {
    if (this.#unqueue(id)) await this.release(id);
    this.#running.get(id)?.abort();
  }

  async counts(): Promise<QueueCounts> {
    return this.#counts();
  }

  lastCounts(): QueueCounts {
    return this.#counts();
  }

  onGivenUp(): void {
    // A worker in this process cannot be lost without the process.
  }

  async drain(timeoutMs: number): Promise<string[]> {
    // Work keeps flowing while draining: nobody else will run what waits here. With no handler (the worker never
    // started: no model could run) nothing would run it, so there is nothing to wait for.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#handler === null ? Promise.resolve() : this.#whenIdle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.#draining = true;
    const left = [...this.#reservations.keys()];
    this.#clearWaiting();
    for (const controller of this.#running.values()) controller.abort();
    return left;
  }

  async close(): Promise<void> {
    this.#draining = true;
    this.#clearWaiting();
    for (const controller of this.#running.values()) controller.abort();
  }

  /** At the job's expiry, work still waiting is dropped with its bytes and reservation (the store forgets the job then too). */
  #armExpiry(work: JobWork): void {
    const expiresAt = this.#reservations.get(work.id)?.expiresAt;
    if (expiresAt === undefined) return;
    const delayMs = expiresAt.getTime() - Date.now();
    if (delayMs > MAX_TIMER_MS) return;
    const timer = setTimeout(
      () => {
        if (this.#unqueue(work.id)) void this.release(work.id);
      },
      Math.max(0, delayMs),
    );
    timer.unref();
    this.#expiryTimers.set(work.id, timer);
  }

  /** Takes waiting work out of the FIFO; false when it was not waiting. */
  #unqueue(id: string): boolean {
    clearTimeout(this.#expiryTimers.get(id));
    this.#expiryTimers.delete(id);
    const index = this.#waiting.findIndex((work) => work.id === id);
    if (index < 0) return false;
    this.#waiting.splice(index, 1);
    return true;
  }

  #clearWaiting(): void {
    for (const timer of this.#expiryTimers.values()) clearTimeout(timer);
    this.#expiryTimers.clear();
    this.#waiting.length = 0;
  }

  #counts(): QueueCounts {
    return {
      jobs: this.#reservations.size,
      waiting: this.#waiting.length,
      active: this.#running.size,
      images: this.#images,
      imageBytes: this.#imageBytes,
      owners: Object.fromEntries(this.#owners),
    };
  }

  #pump(): void {
    const handler = this.#handler;
    if (handler === null || this.#draining) return;
    while (this.#running.size < this.#concurrency && this.#waiting.length > 0) {
      const work = this.#waiting.shift() as JobWork;
      clearTimeout(this.#expiryTimers.get(work.id));
      this.#expiryTimers.delete(work.id);
      const controller = new AbortController();
      this.#running.set(work.id, controller);
      // The bytes live as long as the reservation: a cancelled or released job's are gone, as in Redis.
      const taken = { ...work, loadImages: async () => this.#reservations.get(work.id)?.images };
      void handler(taken, controller.signal)
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
