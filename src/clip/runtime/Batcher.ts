/**
 * Dynamic micro-batching: items from any number of callers are gathered into one run of up to
 * `maxBatchSize`, waiting at most `maxWaitMs` after the first item for more to arrive. While a batch
 * runs, new items queue; the next batch starts as soon as the previous one ends, without waiting again,
 * so under load batches fill themselves and when idle a lone item pays at most `maxWaitMs`.
 */
import { AppError, ErrorCode } from '../../errors.js';

export interface BatcherOptions<I, O> {
  /** Shown in errors and logs, e.g. `clip-vit-base-patch32/image`. */
  name: string;
  /** Largest batch one run takes. */
  maxBatchSize: number;
  /** How long the first item of a batch may wait for company, in milliseconds. */
  maxWaitMs: number;
  /** Items allowed to wait (not counting the running batch); past it `add` rejects with OVERLOADED. */
  maxQueued: number;
  /** Batches allowed in flight at once (one per model replica). @default 1 */
  concurrency?: number;
  /**
   * A batch takes at most its share (1 / `concurrency`) of what waits, even when the other runners are busy. For runners
   * whose cost is per item, such as a graph with a fixed batch of 1 that runs its items one by one: a runner that frees
   * up first must not take the whole queue while another is about to free up and would then sit idle. @default false
   */
  fairShare?: boolean;
  /**
   * Runs one batch: must return exactly one output per input, in order. It may hand over outputs early through
   * `deliver(index, output)` (a fixed-batch graph runs its items one by one): those callers are answered at once.
   */
  run: (items: I[], deliver: (index: number, output: O) => void) => Promise<O[]>;
  /** Told after each run, for metrics. */
  onBatch?: (size: number, durationMs: number) => void;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class Batcher<I, O> {
  readonly #options: BatcherOptions<I, O>;
  #queue: Pending<I, O>[] = [];
  readonly #running = new Set<Promise<void>>();
  readonly #concurrency: number;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #hurried = false;

  constructor(options: BatcherOptions<I, O>) {
    for (const key of ['maxBatchSize', 'maxQueued'] as const) {
      if (!Number.isInteger(options[key]) || options[key] < 1) {
        throw new TypeError(`Expected \`${key}\` to be an integer ≥ 1, got ${options[key]}`);
      }
    }
    if (!(options.maxWaitMs >= 0)) throw new TypeError(`Expected \`maxWaitMs\` to be ≥ 0, got ${options.maxWaitMs}`);
    this.#options = options;
    this.#concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(this.#concurrency) || this.#concurrency < 1) {
      throw new TypeError(`Expected \`concurrency\` to be an integer ≥ 1, got ${options.concurrency}`);
    }
  }

  /** Items waiting for a batch. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Resolves with this item's output once its batch has run. An aborted signal drops a still-queued item. */
  add(item: I, signal?: AbortSignal): Promise<O> {
    if (this.#stopped) return Promise.reject(new AppError(ErrorCode.ShuttingDown, 'The server is shutting down'));
    // An aborted item rejects with its signal's reason, as fetch does.
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#queue.length >= this.#options.maxQueued) {
      return Promise.reject(
        new AppError(
          ErrorCode.Overloaded,
          `The ${this.#options.name} queue is full (${this.#queue.length} waiting); retry later`,
        ),
      );
    }
    return new Promise<O>((resolve, reject) => {
      const pending: Pending<I, O> = { item, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        pending.onAbort = () => {
          const index = this.#queue.indexOf(pending);
          if (index >= 0) {
            this.#queue.splice(index, 1);
            reject(signal.reason);
          }
        };
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      this.#queue.push(pending);
      this.#schedule();
    });
  }

  /**
   * Stops waiting for batches to fill: what is queued is dispatched now, and what comes later as soon as a runner is
   * free. A model being stopped calls it so that the work it waits for is not held back by the batch wait.
   */
  hurry(): void {
    this.#hurried = true;
    if (this.#queue.length > 0) this.#dispatch();
  }

  /** Refuses new items and waits until everything queued has run. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    while (this.#queue.length > 0 || this.#running.size > 0) {
      if (this.#timer) {
        clearTimeout(this.#timer);
        this.#timer = null;
        this.#dispatch();
      }
      await Promise.all(this.#running);
    }
  }

  /** Refuses new items, rejects every queued one with `reason`, and waits only for the batch already running. */
  async abort(reason: Error): Promise<void> {
    this.#stopped = true;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    for (const pending of this.#queue.splice(0)) {
      if (pending.onAbort) pending.signal?.removeEventListener('abort', pending.onAbort);
      pending.reject(reason);
    }
    await Promise.all(this.#running);
  }

  #schedule(): void {
    if (this.#running.size >= this.#concurrency) return; // a running batch dispatches the next when it ends
    if (this.#queue.length >= this.#options.maxBatchSize || this.#options.maxWaitMs === 0 || this.#hurried) {
      this.#dispatch();
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      this.#dispatch();
    }, this.#options.maxWaitMs);
  }

  #dispatch(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const size = this.#batchSize();
    while (this.#running.size < this.#concurrency && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, size);
      for (const pending of batch) {
        if (pending.onAbort) pending.signal?.removeEventListener('abort', pending.onAbort);
      }
      const running: Promise<void> = this.#runBatch(batch).finally(() => {
        this.#running.delete(running);
        if (this.#queue.length > 0) this.#dispatch();
      });
      this.#running.add(running);
    }
  }

  /**
   * The size of each batch a dispatch starts: what waits, split evenly between the free runners rather than given to
   * one of them, or with `fairShare` between all the runners, busy ones included.
   */
  #batchSize(): number {
    const sharers = this.#options.fairShare === true ? this.#concurrency : this.#concurrency - this.#running.size;
    return Math.min(this.#options.maxBatchSize, Math.ceil(this.#queue.length / sharers));
  }

  async #runBatch(batch: Pending<I, O>[]): Promise<void> {
    const started = performance.now();
    const delivered = new Set<number>();
    const deliver = (index: number, output: O): void => {
      const pending = batch[index];
      if (pending === undefined || delivered.has(index)) return;
      delivered.add(index);
      pending.resolve(output);
    };
    try {
      const outputs = await this.#options.run(
        batch.map((p) => p.item),
        deliver,
      );
      if (outputs.length !== batch.length) {
        throw new Error(`${this.#options.name}: batch of ${batch.length} gave ${outputs.length} outputs`);
      }
      this.#options.onBatch?.(batch.length, performance.now() - started);
      batch.forEach((p, i) => {
        if (!delivered.has(i)) p.resolve(outputs[i]!);
      });
    } catch (error) {
      const left = batch.filter((_, i) => !delivered.has(i));
      if (batch.length === 1 || left.length === 1) {
        left[0]?.reject(error);
        return;
      }
      // One bad input must fail only its own caller: rerun the items not yet answered one by one to find it.
      for (const pending of left) await this.#runBatch([pending]);
    }
  }
}
