/**
 * The only importer of onnxruntime-node: sessions, their options, and tensors in and out.
 * `session.run` executes on ONNX Runtime's own threads, so inference never blocks the event loop.
 */
import * as ort from 'onnxruntime-node';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface OnnxSessionOptions {
  /** Threads one inference may use; the machine's core count is right when one batch runs at a time. */
  intraOpThreads: number;
  /** @default 'all' */
  graphOptimizationLevel: GraphOptimizationLevel;
}

/** A float input may be declared float32 or float16 by the graph (the `_fp16` variants). */
type FloatKind = 'float32' | 'float16';

export type FeedValue =
  | { kind: 'float'; data: Float32Array; dims: number[] }
  | { kind: 'int64'; data: BigInt64Array; dims: number[] };

export interface OutputValue {
  data: Float32Array;
  dims: number[];
}

/** One loaded ONNX graph. */
export class OnnxGraph {
  readonly path: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly #session: ort.InferenceSession;
  readonly #floatInputs: Map<string, FloatKind>;

  private constructor(path: string, session: ort.InferenceSession) {
    this.path = path;
    this.#session = session;
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
    this.#floatInputs = new Map();
    for (const meta of session.inputMetadata) {
      if (meta.isTensor && (meta.type === 'float32' || meta.type === 'float16')) {
        this.#floatInputs.set(meta.name, meta.type);
      }
    }
  }

  static async load(path: string, options: OnnxSessionOptions): Promise<OnnxGraph> {
    const session = await ort.InferenceSession.create(path, {
      intraOpNumThreads: options.intraOpThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: options.graphOptimizationLevel,
      enableCpuMemArena: true,
      enableMemPattern: true,
    });
    return new OnnxGraph(path, session);
  }

  hasInput(name: string): boolean {
    return this.inputNames.includes(name);
  }

  hasOutput(name: string): boolean {
    return this.outputNames.includes(name);
  }

  /** Runs the graph; feeds the graph does not declare are dropped, so callers may always offer e.g. attention_mask. */
  async run(feeds: Record<string, FeedValue>, outputs: readonly string[]): Promise<Record<string, OutputValue>> {
    const tensors: Record<string, ort.Tensor> = {};
    for (const [name, value] of Object.entries(feeds)) {
      if (!this.hasInput(name)) continue;
      tensors[name] = this.#toTensor(name, value);
    }
    for (const name of this.inputNames) {
      if (!(name in tensors)) throw new Error(`${this.path}: the graph needs an input named ${name}, which was not provided`);
    }
    const result = await this.#session.run(tensors, [...outputs]);
    const out: Record<string, OutputValue> = {};
    for (const name of outputs) {
      const tensor = result[name];
      if (tensor === undefined) throw new Error(`${this.path}: no output named ${name}`);
      out[name] = { data: toFloat32(tensor), dims: tensor.dims.map(Number) };
      tensor.dispose();
    }
    return out;
  }

  async release(): Promise<void> {
    await this.#session.release();
  }

  #toTensor(name: string, value: FeedValue): ort.Tensor {
    if (value.kind === 'int64') return new ort.Tensor('int64', value.data, value.dims);
    if (this.#floatInputs.get(name) === 'float16') {
      return new ort.Tensor('float16', float32ToFloat16(value.data), value.dims);
    }
    return new ort.Tensor('float32', value.data, value.dims);
  }
}

function toFloat32(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return new Float32Array(tensor.data as Float32Array);
  if (tensor.type === 'float16') return float16ToFloat32(tensor.data as Uint16Array);
  throw new Error(`expected a float32 or float16 output, got ${tensor.type}`);
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
      if (rem > mid || (rem === mid && (half & 1))) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
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
