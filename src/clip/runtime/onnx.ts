/**
 * The only place that talks to onnxruntime-node: sessions, their options, and tensors in and out.
 * Each graph's session lives in its own worker thread (onnxWorker.js) because onnxruntime-node's
 * `session.run` blocks the calling thread for the whole inference; here we keep the proxy that posts
 * feeds to it (transferring, not copying, the buffers) and restarts it if it ever dies.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isMainThread, Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import type { GraphOptimizationLevel } from '../../config.js';
import { applyOrtTelemetry } from './telemetry.js';
import { registerOnnxThreads } from './threadCpu.js';
import {
  ExecutionProviderUnavailableError,
  type ExecutionProvider,
  type ProviderFailure,
} from './executionProviders.js';

export interface OnnxSessionOptions {
  /** Threads one inference may use; the machine's core count is right when one batch runs at a time. */
  intraOpThreads: number;
  /** See ORT_GRAPH_OPTIMIZATION. */
  graphOptimizationLevel: GraphOptimizationLevel;
  /** Idle intra-op threads spin waiting for work: a little faster alone, but they steal cores from image decoding. See ORT_ALLOW_SPINNING; absent: they do not. */
  allowSpinning?: boolean;
  /** The execution providers, in priority order (ONNX Runtime runs each node on the first that supports it). See ORT_EXECUTION_PROVIDERS; absent: the CPU alone. */
  executionProviders?: readonly ExecutionProvider[];
  /** Whether ONNX Runtime may queue its usage telemetry (the ORT_TELEMETRY setting); absent: it may not. */
  telemetry?: boolean;
}

/** What the worker hands to `InferenceSession.create`: our settings in ONNX Runtime's words. */
export function sessionOptionsFor(options: OnnxSessionOptions): InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: options.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: options.graphOptimizationLevel,
    executionProviders: [...(options.executionProviders ?? ['cpu'])],
    enableCpuMemArena: true,
    enableMemPattern: true,
    extra: { session: { intra_op: { allow_spinning: options.allowSpinning ? '1' : '0' } } },
  };
}

/** A float input may be declared float32 or float16 by the graph (the `_fp16` variants). */
type FloatKind = 'float32' | 'float16';

export type FeedValue =
  | { kind: 'float'; data: Float32Array; dims: number[] }
  | { kind: 'int64'; data: BigInt64Array; dims: number[] }
  | { kind: 'int32'; data: Int32Array; dims: number[] };

/** A graph input or output as the session declares it: a dimension is fixed (a number) or symbolic (a string). */
export interface ValueInfo {
  name: string;
  /** ONNX Runtime's tensor type name (`float32`, `float16`, `int64`, `int32`, …). */
  type: string;
  shape: readonly (number | string)[];
}

/** The size of dimension `axis` when the graph fixes it, else undefined (symbolic or unknown). */
export function fixedDim(info: ValueInfo, axis: number): number | undefined {
  const dim = info.shape[axis];
  return typeof dim === 'number' && dim > 0 ? dim : undefined;
}

export interface OutputValue {
  data: Float32Array;
  dims: number[];
}

/** What crosses the thread boundary (see onnxWorker.js). */
type WireFeed = {
  type: 'float32' | 'float16' | 'int64' | 'int32';
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array;
  dims: number[];
};
type WireOutputs = Record<string, { type: string; data: Float32Array | Uint16Array; dims: number[] }>;
type WireReply =
  | { id: number; ok: false; error: { message: string } & Partial<ProviderFailure> }
  | {
      id: number;
      ok: true;
      inputNames?: string[];
      outputNames?: string[];
      /** On load: the metadata; on run: the output tensors. */
      inputs?: ValueInfo[];
      outputs?: ValueInfo[] | WireOutputs;
      /** load: the worker thread's id and its session's intra-op pool threads (Linux). */
      threads?: number[];
      /** runEach: the index of the item whose outputs this partial reply carries. */
      partial?: number;
      /** runEach: the final reply, after every partial one. */
      count?: number;
    };

const WORKER_URL = new URL('./onnxWorker.js', import.meta.url);

/**
 * Where a session lives: a worker thread (the default), or a child process, for a graph loaded once and dropped,
 * whose memory must go back to the operating system (glibc keeps what a worker thread's session freed, so a one-off
 * 600 MB graph would stay in the server's RSS for good).
 */
export type SessionIsolation = 'thread' | 'process';

/** The side of a worker thread or a child process that OnnxGraph talks to. */
interface SessionHost {
  postMessage(message: unknown, transfer: ArrayBuffer[]): void;
  on(event: 'message', listener: (reply: WireReply) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'exit', listener: (code: number | null) => void): unknown;
  terminate(): Promise<unknown>;
}

function startHost(
  isolation: SessionIsolation,
  workerData: { path: string; sessionOptions: InferenceSession.SessionOptions },
  telemetry: boolean,
): SessionHost {
  // A worker thread's session reads this process's environment, which only the main thread can change.
  if (isMainThread) applyOrtTelemetry(telemetry);
  if (isolation === 'thread') return new Worker(WORKER_URL, { workerData });
  const env = { ...process.env };
  applyOrtTelemetry(telemetry, env);
  // Advanced serialisation carries typed arrays (copied: a process boundary has no transfer).
  const child = fork(fileURLToPath(WORKER_URL), [JSON.stringify(workerData)], {
    env,
    serialization: 'advanced',
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return {
    postMessage: (message) => child.send(message as object),
    on: (event: 'message' | 'error' | 'exit', listener: (value: never) => void) =>
      child.on(event, listener as (...args: unknown[]) => void),
    terminate: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', resolve);
        child.kill();
      }),
  };
}

interface Pending {
  resolve: (reply: WireReply & { ok: true }) => void;
  reject: (error: Error) => void;
  /** Partial replies (runEach), before the final one. */
  onPartial?: (reply: WireReply & { ok: true }) => void;
}

/** One loaded ONNX graph, served by its own worker thread. */
export class OnnxGraph {
  readonly path: string;
  inputNames: readonly string[] = [];
  outputNames: readonly string[] = [];
  /** The inputs and outputs as the session declares them (types and fixed or symbolic dimensions). */
  inputs: readonly ValueInfo[] = [];
  outputs: readonly ValueInfo[] = [];
  readonly #options: OnnxSessionOptions;
  #floatInputs = new Map<string, FloatKind>();
  #worker: Promise<SessionHost> | null = null;
  readonly #isolation: SessionIsolation;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #released = false;

  private constructor(path: string, options: OnnxSessionOptions, isolation: SessionIsolation) {
    this.path = path;
    this.#options = options;
    this.#isolation = isolation;
  }

  static async load(
    path: string,
    options: OnnxSessionOptions,
    isolation: SessionIsolation = 'thread',
  ): Promise<OnnxGraph> {
    const graph = new OnnxGraph(path, options, isolation);
    await graph.#ensureWorker();
    return graph;
  }

  hasInput(name: string): boolean {
    return this.inputNames.includes(name);
  }

  hasOutput(name: string): boolean {
    return this.outputNames.includes(name);
  }

  input(name: string): ValueInfo | undefined {
    return this.inputs.find((info) => info.name === name);
  }

  output(name: string): ValueInfo | undefined {
    return this.outputs.find((info) => info.name === name);
  }

  /** Runs the graph; feeds the graph does not declare are dropped, so callers may always offer e.g. attention_mask. */
  async run(feeds: Record<string, FeedValue>, outputs: readonly string[]): Promise<Record<string, OutputValue>> {
    const worker = await this.#ensureWorker();
    const transfer: ArrayBuffer[] = [];
    const wire = this.#wireFeeds(feeds, transfer);
    const reply = await this.#call(worker, { type: 'run', feeds: wire, outputs: [...outputs] }, transfer);
    return this.#readOutputs(reply.outputs as WireOutputs | undefined, outputs);
  }

  /**
   * Runs the graph once per feed set, in order, inside the worker (one message, not one per run): how a graph whose
   * batch dimension is fixed at 1 serves a batch the Batcher gathered.
   */
  async runEach(
    feedsList: readonly Record<string, FeedValue>[],
    outputs: readonly string[],
    onEach?: (index: number, result: Record<string, OutputValue>) => void,
  ): Promise<Record<string, OutputValue>[]> {
    const worker = await this.#ensureWorker();
    const transfer: ArrayBuffer[] = [];
    const wire = feedsList.map((feeds) => this.#wireFeeds(feeds, transfer));
    const results: Record<string, OutputValue>[] = [];
    await this.#call(worker, { type: 'runEach', feedsList: wire, outputs: [...outputs] }, transfer, (reply) => {
      const index = reply.partial!;
      const result = this.#readOutputs(reply.outputs as WireOutputs | undefined, outputs);
      results[index] = result;
      onEach?.(index, result);
    });
    if (results.length !== feedsList.length || results.includes(undefined as never)) {
      throw new Error(`${this.path}: ${feedsList.length} runs gave ${results.filter(Boolean).length} results`);
    }
    return results;
  }

  #wireFeeds(feeds: Record<string, FeedValue>, transfer: ArrayBuffer[]): Record<string, WireFeed> {
    const wire: Record<string, WireFeed> = {};
    for (const [name, value] of Object.entries(feeds)) {
      if (!this.hasInput(name)) continue;
      const feed = this.#toWire(name, value);
      wire[name] = feed;
      // Callers hand over fresh buffers per batch; transferring them saves a copy of up to ~20 MB.
      const buffer = feed.data.buffer as ArrayBuffer;
      if (feed.data.byteOffset === 0 && feed.data.byteLength === buffer.byteLength && !transfer.includes(buffer))
        transfer.push(buffer);
    }
    for (const name of this.inputNames) {
      if (!(name in wire))
        throw new Error(`${this.path}: the graph needs an input named ${name}, which was not provided`);
    }
    return wire;
  }

  #readOutputs(tensors: WireOutputs | undefined, outputs: readonly string[]): Record<string, OutputValue> {
    const out: Record<string, OutputValue> = {};
    for (const name of outputs) {
      const tensor = tensors?.[name];
      if (!tensor) throw new Error(`${this.path}: no output named ${name}`);
      if (tensor.type !== 'float16' && tensor.type !== 'float32')
        throw new Error(`expected a float32 or float16 output, got ${tensor.type}`);
      const data =
        tensor.type === 'float16' ? float16ToFloat32(tensor.data as Uint16Array) : (tensor.data as Float32Array);
      out[name] = { data, dims: tensor.dims };
    }
    return out;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const worker = await this.#worker?.catch(() => null);
    if (!worker) return;
    await this.#call(worker, { type: 'release' }, []).catch(() => undefined);
    await worker.terminate();
  }

  /** The worker, started (and the session loaded) on first use and again after a crash. */
  #ensureWorker(): Promise<SessionHost> {
    if (this.#released) return Promise.reject(new Error(`${this.path}: the session was released`));
    this.#worker ??= this.#startWorker().catch((error: unknown) => {
      this.#worker = null;
      throw error;
    });
    return this.#worker;
  }

  async #startWorker(): Promise<SessionHost> {
    const worker = startHost(
      this.#isolation,
      { path: this.path, sessionOptions: sessionOptionsFor(this.#options) },
      this.#options.telemetry ?? false,
    );
    worker.on('message', (reply: WireReply) => {
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      if (reply.ok && reply.partial !== undefined) {
        try {
          pending.onPartial?.(reply);
        } catch (error) {
          this.#pending.delete(reply.id);
          pending.reject(error instanceof Error ? error : new Error(String(error)));
        }
        return;
      }
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply);
      else pending.reject(this.#replyError(reply.error));
    });
    const fail = (error: Error) => {
      this.#worker = null;
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    worker.on('error', (error) => fail(new Error(`${this.path}: the inference worker failed: ${error.message}`)));
    worker.on('exit', (code) => {
      if (!this.#released) fail(new Error(`${this.path}: the inference worker exited with code ${code}`));
    });
    try {
      const loaded = await this.#call(worker, { type: 'load' }, []);
      this.inputNames = loaded.inputNames ?? [];
      this.outputNames = loaded.outputNames ?? [];
      this.inputs = loaded.inputs ?? [];
      this.outputs = (loaded.outputs as ValueInfo[] | undefined) ?? [];
      // Another process's threads are not this process's CPU time.
      if (this.#isolation === 'thread') registerOnnxThreads(loaded.threads ?? []);
      this.#floatInputs = new Map(
        this.inputs
          .filter((m) => m.type === 'float32' || m.type === 'float16')
          .map((m) => [m.name, m.type as FloatKind]),
      );
      return worker;
    } catch (error) {
      await worker.terminate();
      throw error;
    }
  }

  #replyError(error: { message: string } & Partial<ProviderFailure>): Error {
    if (error.provider !== undefined && error.reason !== undefined && error.detail !== undefined) {
      return new ExecutionProviderUnavailableError(this.path, {
        provider: error.provider,
        reason: error.reason,
        detail: error.detail,
      });
    }
    return new Error(`${this.path}: ${error.message}`);
  }

  #call(
    worker: SessionHost,
    message: Record<string, unknown>,
    transfer: ArrayBuffer[],
    onPartial?: (reply: WireReply & { ok: true }) => void,
  ): Promise<WireReply & { ok: true }> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, onPartial === undefined ? { resolve, reject } : { resolve, reject, onPartial });
      worker.postMessage({ ...message, id }, transfer);
    });
  }

  #toWire(name: string, value: FeedValue): WireFeed {
    if (value.kind === 'int64') return { type: 'int64', data: value.data, dims: value.dims };
    if (value.kind === 'int32') return { type: 'int32', data: value.data, dims: value.dims };
    if (this.#floatInputs.get(name) === 'float16')
      return { type: 'float16', data: float32ToFloat16(value.data), dims: value.dims };
    return { type: 'float32', data: value.data, dims: value.dims };
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half from float, round-to-nearest-even (Node 20 has no Float16Array). */
function float32ToFloat16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    f32[0] = src[i]!;
    const x = u32[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && half & 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
    out[i] = sign | half;
  }
  return out;
}

function float16ToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * 2 ** -14 * (mant / 1024);
    else if (exp === 0x1f) out[i] = mant ? NaN : sign * Infinity;
    else out[i] = sign * 2 ** (exp - 15) * (1 + mant / 1024);
  }
  return out;
}
