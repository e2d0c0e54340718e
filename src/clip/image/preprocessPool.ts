/**
 * @file A small pool of worker threads that turn image bytes into `pixel_values` (decode, exact resize, normalise:
 * preprocess.ts, the same code as in-thread), so that the ~10 ms of JavaScript resizing per photo never holds the event loop that
 * serves HTTP, websockets and JSON. The bytes go to a worker by transfer (a copy is made first unless the caller
 * hands them over), the floats come back by transfer. A refused image fails only its own job, with the same
 * AppError (code, message, field) the in-thread path throws; a worker that dies fails the jobs it held and is
 * replaced.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AppError, ErrorCode } from '../../errors.js';
import type { PreprocessOptions } from './preprocess.js';
import type { ImageLimits, PreprocessorConfig } from '../types.js';

/** One job, as posted to a worker. `bytes` is transferred. */
export interface PreprocessRequest {
  id: number;
  bytes: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
  config: PreprocessorConfig;
  limits: ImageLimits;
  options: PreprocessOptions;
}

/** A worker's answer: the floats (transferred), or the error to rebuild. */
export type PreprocessResponse =
  | { id: number; pixels: Float32Array; error?: undefined }
  | {
      id: number;
      pixels?: undefined;
      error:
        { app: true; code: ErrorCode; message: string; field: string | undefined } | { app: false; message: string };
    };

export interface PreprocessPoolOptions {
  /** Worker threads. */
  size: number;
}

/** Options of one {@link PreprocessPool.preprocess} call. */
export interface PoolPreprocessOptions extends PreprocessOptions {
  /**
   * Hand `bytes`' memory to the worker (no copy): `bytes` must then cover its whole ArrayBuffer and the caller
   * must not read it again (it is detached). Otherwise the bytes are copied once, then transferred. @default false
   */
  transfer?: boolean;
}

interface Job {
  request: PreprocessRequest;
  resolve: (pixels: Float32Array) => void;
  reject: (error: unknown) => void;
}

interface Slot {
  worker: Worker;
  running: Map<number, Job>;
}

/**
 * Jobs each worker holds at once. Two: while one image decodes in libvips (on libuv's threads) the worker's
 * JavaScript resizes the other, so a single worker keeps about one core busy.
 */
const JOBS_PER_WORKER = 2;

export class PreprocessPool {
  readonly size: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;

  constructor(options: PreprocessPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1)
      throw new TypeError(`Expected \`size\` to be an integer ≥ 1, got ${options.size}`);
    this.size = options.size;
  }

  /** Jobs waiting for a worker (not counting those running). */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Image bytes → normalised CHW float32 `pixel_values` of shape `[3, cropHeight, cropWidth]`, on a worker thread.
   * @throws AppError exactly as preprocessImage does (BAD_USER_INPUT naming `options.field`).
   */
  preprocess(
    bytes: Uint8Array,
    config: PreprocessorConfig,
    limits: ImageLimits,
    options: PoolPreprocessOptions = {},
  ): Promise<Float32Array> {
    if (this.#closed) return Promise.reject(new AppError(ErrorCode.ShuttingDown, 'The server is shutting down'));
    const { transfer = false, ...rest } = options;
    const owned =
      transfer &&
      bytes.byteOffset === 0 &&
      bytes.byteLength === bytes.buffer.byteLength &&
      bytes.buffer instanceof ArrayBuffer;
    // `new Uint8Array(view)` copies just the view (a Buffer's slice() would share its whole, possibly pooled, memory).
    const buffer = owned ? bytes.buffer : new Uint8Array(bytes).buffer;
    const request: PreprocessRequest = {
      id: this.#nextId++,
      bytes: buffer,
      byteOffset: 0,
      byteLength: bytes.byteLength,
      config,
      limits,
      options: rest,
    };
    return new Promise<Float32Array>((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#dispatch();
    });
  }

  /** Stops the workers; jobs still queued or running are rejected with SHUTTING_DOWN. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const stopped = new AppError(ErrorCode.ShuttingDown, 'The server is shutting down');
    for (const job of this.#queue.splice(0)) job.reject(stopped);
    const slots = this.#slots.splice(0);
    for (const slot of slots) for (const job of slot.running.values()) job.reject(stopped);
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const slot = this.#freeSlot();
      if (slot === undefined) return;
      const job = this.#queue.shift()!;
      try {
        slot.worker.postMessage(job.request, [job.request.bytes]);
      } catch (error) {
        // Not cloneable (cannot happen for the pool's own copies): this job fails, the worker stays free.
        job.reject(error);
        continue;
      }
      slot.running.set(job.request.id, job);
      slot.worker.ref();
    }
  }

  /** The least busy worker with room, starting one while the pool is below its size. */
  #freeSlot(): Slot | undefined {
    let best: Slot | undefined;
    for (const slot of this.#slots)
      if (slot.running.size < JOBS_PER_WORKER && (best === undefined || slot.running.size < best.running.size))
        best = slot;
    if ((best === undefined || best.running.size > 0) && this.#slots.length < this.size) return this.#startWorker();
    return best;
  }

  #startWorker(): Slot {
    const worker = new Worker(workerEntry(), { name: 'clip-preprocess' });
    const slot: Slot = { worker, running: new Map() };
    this.#slots.push(slot);
    worker.unref();
    worker.on('message', (response: PreprocessResponse) => {
      const job = slot.running.get(response.id);
      if (job === undefined) return;
      slot.running.delete(response.id);
      if (slot.running.size === 0) worker.unref();
      if (response.error === undefined) job.resolve(response.pixels);
      else if (response.error.app) {
        const { code, message, field } = response.error;
        job.reject(new AppError(code, message, field === undefined ? {} : { field }));
      } else job.reject(new Error(response.error.message));
      this.#dispatch();
    });
    worker.on('error', (error) => this.#lose(slot, error));
    worker.on('exit', (code) => this.#lose(slot, new Error(`the preprocessing worker exited (code ${code})`)));
    return slot;
  }

  /** A worker died: its jobs fail (not the queued ones), a new worker takes over the queue. */
  #lose(slot: Slot, error: Error): void {
    const at = this.#slots.indexOf(slot);
    if (at < 0) return;
    this.#slots.splice(at, 1);
    for (const job of slot.running.values()) job.reject(error);
    slot.running.clear();
    void slot.worker.terminate();
    if (!this.#closed) this.#dispatch();
  }
}

const here = fileURLToPath(import.meta.url);

/**
 * The worker's entry file. Built code (dist/) has preprocessWorker.js beside this module. Run from the TypeScript
 * sources (vitest, which does not transform worker entries), the worker and what it imports are bundled once by
 * esbuild (a dev dependency, present wherever the sources run) into node_modules/.cache, where its packages resolve.
 */
function workerEntry(): URL {
  if (!here.endsWith('.ts')) return new URL('./preprocessWorker.js', import.meta.url);
  return sourceBundle();
}

let bundled: URL | undefined;

function sourceBundle(): URL {
  if (bundled !== undefined) return bundled;
  const root = path.resolve(path.dirname(here), '..', '..', '..');
  const dir = path.join(root, 'node_modules', '.cache', 'clip-preprocess-worker');
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, 'preprocessWorker.mjs');
  const temp = `${out}.${process.pid}.${os.hostname()}.tmp`;
  // Synchronous on purpose: the Worker constructor needs the file now; a build takes ~50 ms, once per process.
  const result = esbuildSync(path.join(path.dirname(here), 'preprocessWorker.ts'), temp);
  if (result !== undefined) throw new Error(`could not bundle the preprocessing worker: ${result}`);
  fs.renameSync(temp, out);
  bundled = new URL(`file://${out}`);
  return bundled;
}

/** esbuild's CLI, run synchronously (its JS API's buildSync is CommonJS-only). Returns an error message, or undefined. */
function esbuildSync(entry: string, outfile: string): string | undefined {
  const root = path.resolve(path.dirname(here), '..', '..', '..');
  const binary = path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'esbuild.cmd' : 'esbuild');
  const args = [
    entry,
    '--bundle',
    '--platform=node',
    '--format=esm',
    '--packages=external',
    `--outfile=${outfile}`,
    '--log-level=error',
  ];
  const run = spawnSync(binary, args, { encoding: 'utf8' });
  if (run.status === 0) return undefined;
  return run.error?.message ?? run.stderr.trim();
}
