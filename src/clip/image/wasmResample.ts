/**
 * @file The two passes of Pillow's 8-bit resampler in WebAssembly SIMD (resample.wat, assembled into
 * resampleWasm.generated.ts), for RGB: four lanes per pixel horizontally, sixteen bytes per step vertically, the
 * same int32 fixed-point arithmetic and clipping as the JavaScript passes in pilResize.ts, hence the same bytes
 * (tested on random images). One instance, with its own memory, per thread (each preprocessing worker has one).
 */
import { RESAMPLE_WASM_BASE64 } from './resampleWasm.generated.js';

/** One axis' coefficients as pilResize.ts computes them. */
export interface AxisTable {
  ksize: number;
  first: Int32Array;
  taps: Int32Array;
  weights: Int32Array;
}

/** The little of the WebAssembly JS API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}

interface Exports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  horizontal(
    src: number,
    srcStride: number,
    rowFirst: number,
    rows: number,
    width: number,
    ksize: number,
    first: number,
    taps: number,
    weights: number,
    dst: number,
  ): void;
  vertical(
    temp: number,
    stride: number,
    rowFirst: number,
    height: number,
    ksize: number,
    first: number,
    taps: number,
    weights: number,
    out: number,
  ): void;
}

const PAGE = 65536;
/** Room after each buffer: the kernels touch up to 15 bytes past the last one they compute. */
const PAD = 16;

function aligned(n: number): number {
  return (n + PAD + 15) & ~15;
}

let instance: Exports | null | undefined;

/** The kernels, or null where WebAssembly SIMD is unavailable (then pilResize.ts runs its JavaScript passes). */
function kernels(): Exports | null {
  if (instance !== undefined) return instance;
  try {
    const bytes = Buffer.from(RESAMPLE_WASM_BASE64, 'base64');
    // Small enough (< 4 KB) to compile synchronously on the main thread too.
    const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    instance = new wasm.Instance(new wasm.Module(bytes)).exports as Exports;
  } catch {
    instance = null;
  }
  return instance;
}

/** Whether the SIMD kernels run here. */
export function wasmResampleAvailable(): boolean {
  return kernels() !== null;
}

/** A bump allocator over the instance's memory, grown as needed; offsets are valid until the next grow. */
function layout(exports: Exports, sizes: readonly number[]): number[] {
  const offsets: number[] = [];
  let end = 0;
  for (const size of sizes) {
    offsets.push(end);
    end += aligned(size);
  }
  const have = exports.memory.buffer.byteLength;
  if (end > have) exports.memory.grow(Math.ceil((end - have) / PAGE));
  return offsets;
}

/**
 * Rows `[rowFirst, rowFirst + rows)` of `src` (stride `srcWidth × 3`) resized horizontally with `h` (or, without
 * `h`, columns `[left, left + width)` taken as they are), then vertically with `v` (rows relative to `rowFirst`)
 * when given. Returns `width × (v ? v.first.length : rows)` RGB pixels, or null when the kernels are unavailable.
 */
export function resampleWasm(
  src: Uint8Array,
  srcWidth: number,
  rowFirst: number,
  rows: number,
  left: number,
  width: number,
  h: AxisTable | undefined,
  v: AxisTable | undefined,
): Uint8Array | null {
  const exports = kernels();
  if (exports === null) return null;
  const srcStride = srcWidth * 3;
  const stride = width * 3;
  const height = v === undefined ? rows : v.first.length;
  const tables = [h, v].flatMap((t) =>
    t === undefined ? [0, 0, 0] : [t.first.byteLength, t.taps.byteLength, t.weights.byteLength],
  );
  const [srcAt, tempAt, outAt, hFirst, hTaps, hWeights, vFirst, vTaps, vWeights] = layout(exports, [
    h === undefined ? 0 : rows * srcStride,
    rows * stride,
    v === undefined ? 0 : height * stride,
    ...tables,
  ]) as [number, number, number, number, number, number, number, number, number];
  const memory = new Uint8Array(exports.memory.buffer);
  if (h !== undefined) {
    memory.set(src.subarray(rowFirst * srcStride, (rowFirst + rows) * srcStride), srcAt);
    memory.set(new Uint8Array(h.first.buffer, h.first.byteOffset, h.first.byteLength), hFirst);
    memory.set(new Uint8Array(h.taps.buffer, h.taps.byteOffset, h.taps.byteLength), hTaps);
    memory.set(new Uint8Array(h.weights.buffer, h.weights.byteOffset, h.weights.byteLength), hWeights);
    exports.horizontal(srcAt, srcStride, 0, rows, width, h.ksize, hFirst, hTaps, hWeights, tempAt);
  } else {
    for (let y = 0; y < rows; y++) {
      const from = ((rowFirst + y) * srcWidth + left) * 3;
      memory.set(src.subarray(from, from + stride), tempAt + y * stride);
    }
  }
  if (v === undefined) return memory.slice(tempAt, tempAt + rows * stride);
  memory.set(new Uint8Array(v.first.buffer, v.first.byteOffset, v.first.byteLength), vFirst);
  memory.set(new Uint8Array(v.taps.buffer, v.taps.byteOffset, v.taps.byteLength), vTaps);
  memory.set(new Uint8Array(v.weights.buffer, v.weights.byteOffset, v.weights.byteLength), vWeights);
  exports.vertical(tempAt, stride, rowFirst, height, v.ksize, vFirst, vTaps, vWeights, outAt);
  return memory.slice(outAt, outAt + height * stride);
}
