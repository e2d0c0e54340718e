/**
 * @file Pillow's resampler (`Resample.c`: `precompute_coeffs`, `normalize_coeffs_8bpc`,
 * `ImagingResampleHorizontal/Vertical_8bpc`), ported so that CLIP's reference preprocessing (PIL) is reproduced
 * bit for bit: pixel-centre alignment, the kernel widened on downscales only, fixed-point weights, and 8-bit
 * rounding and clipping between the horizontal and vertical passes. Only the window a centre crop keeps is computed.
 * The passes run in WebAssembly SIMD (wasmResample.ts: the same integer arithmetic, ~4× faster) where available,
 * else in the JavaScript below, which stays the reference the SIMD kernels are tested against bit for bit.
 */
import { resampleWasm } from './wasmResample.js';

/** An 8-bit RGB image, pixels interleaved row by row (`[r, g, b, r, g, b, …]`). */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A rectangle of the resized image: the part the centre crop keeps. */
export interface ResizeWindow {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** A PIL resampling filter: the kernel and its support (half-width, in source pixels at scale 1). */
interface ResampleFilter {
  support: number;
  weight(x: number): number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);

/** Pillow's filters by their `Image.Resampling` ids (NEAREST = 0 is handled apart). Constants as in `Resample.c`. */
const FILTERS: ReadonlyMap<number, ResampleFilter> = new Map([
  [1, { support: 3, weight: (x: number) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) }], // LANCZOS
  [2, { support: 1, weight: (x: number) => Math.max(0, 1 - Math.abs(x)) }], // BILINEAR
  [
    3, // BICUBIC, a = -0.5
    {
      support: 2,
      weight: (x: number) => {
        const a = -0.5;
        const t = Math.abs(x);
        if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
        if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
        return 0;
      },
    },
  ],
  [4, { support: 0.5, weight: (x: number) => (x > -0.5 && x <= 0.5 ? 1 : 0) }], // BOX
  [
    5, // HAMMING
    {
      support: 1,
      weight: (x: number) => {
        const t = Math.abs(x);
        if (t === 0) return 1;
        if (t >= 1) return 0;
        const px = t * Math.PI;
        return (Math.sin(px) / px) * (HAMMING_A + HAMMING_B * Math.cos(px));
      },
    },
  ],
]);

/** Fixed-point precision of Pillow's 8-bit resampler (`PRECISION_BITS = 32 - 8 - 2`). */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);
/** Sums at or above this clip to 255 (`1 << PRECISION_BITS << 8`). */
const CLIP_HIGH = ONE * 256;

/** One axis of a resize: for each wanted output index, the first source index, the tap count and fixed-point weights. */
interface AxisCoefficients {
  /** Max taps per output index; `weights` holds `count × ksize` entries. */
  ksize: number;
  first: Int32Array;
  taps: Int32Array;
  weights: Int32Array;
}

/**
 * Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for output indices `start … start+count-1` of an
 * `inSize → outSize` resize. Pixel centres are aligned ((x + 0.5)·scale), the kernel widens with the scale on
 * downscales only, taps are cut at the edges and the weights renormalised (no clamping).
 */
function axisCoefficients(
  inSize: number,
  outSize: number,
  start: number,
  count: number,
  filter: ResampleFilter,
): AxisCoefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const inverse = 1 / filterScale;
  const first = new Int32Array(count);
  const taps = new Int32Array(count);
  const weights = new Int32Array(count * ksize);
  const w = new Float64Array(ksize);
  for (let i = 0; i < count; i++) {
    const center = (start + i + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const n = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < n; x++) {
      const value = filter.weight((x + xmin - center + 0.5) * inverse);
      w[x] = value;
      sum += value;
    }
    for (let x = 0; x < n; x++) {
      const value = sum === 0 ? (w[x] ?? 0) : (w[x] ?? 0) / sum;
      // C's (int) truncates toward zero after the ±0.5: round half away from zero.
      weights[i * ksize + x] = value < 0 ? Math.trunc(-0.5 + value * ONE) : Math.trunc(0.5 + value * ONE);
    }
    first[i] = xmin;
    taps[i] = n;
  }
  return { ksize, first, taps, weights };
}

/** Pillow's `clip8`: a fixed-point sum (already offset by HALF) → 0…255. */
function clip8(sum: number): number {
  if (sum >= CLIP_HIGH) return 255;
  if (sum <= 0) return 0;
  return sum >> PRECISION_BITS;
}

/**
 * Resizes `image` to `outWidth × outHeight` exactly as Pillow's `Image.resize(…, resample)` does for RGB
 * (horizontal pass first, each pass rounded and clipped to 8 bits), computing only the window
 * `[left, left + width) × [top, top + height)` of the result.
 *
 * @param resample Pillow filter id: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming.
 * @param passes `js` forces the JavaScript passes (the reference); `auto` uses the SIMD kernels where available.
 * @returns `width × height` RGB pixels, interleaved.
 */
export function resizeWindow(
  image: RgbImage,
  outWidth: number,
  outHeight: number,
  window: ResizeWindow,
  resample: number,
  passes: 'auto' | 'js' = 'auto',
): Uint8Array {
  const { left, top, width, height } = window;
  if (left < 0 || top < 0 || width < 0 || height < 0 || left + width > outWidth || top + height > outHeight) {
    throw new RangeError(`window ${width}×${height}+${left}+${top} is outside ${outWidth}×${outHeight}`);
  }
  if (resample === 0) return nearestWindow(image, outWidth, outHeight, window);
  const filter = FILTERS.get(resample);
  if (filter === undefined) throw new RangeError(`unsupported resample filter ${resample}; expected 0–5 (PIL ids)`);
  const src = image.data;
  const needHorizontal = outWidth !== image.width;
  const needVertical = outHeight !== image.height;

  // Rows of the source the vertical pass reads (all of the window's rows when there is no vertical pass).
  const vertical = needVertical ? axisCoefficients(image.height, outHeight, top, height, filter) : undefined;
  let rowFirst = top;
  let rowEnd = top + height;
  if (vertical !== undefined && height > 0) {
    rowFirst = vertical.first[0] ?? 0;
    rowEnd = (vertical.first[height - 1] ?? 0) + (vertical.taps[height - 1] ?? 0);
  }
  const rows = rowEnd - rowFirst;
  const horizontal = needHorizontal ? axisCoefficients(image.width, outWidth, left, width, filter) : undefined;
  if (passes === 'auto' && width > 0 && rows > 0 && height > 0) {
    const out = resampleWasm(src, image.width, rowFirst, rows, left, width, horizontal, vertical);
    if (out !== null) return out;
  }

  // Horizontal pass: source rows [rowFirst, rowEnd) → `width` columns, 8-bit.
  let temp: Uint8Array;
  const tempStride = width * 3;
  if (horizontal !== undefined) {
    const { ksize, first, taps, weights } = horizontal;
    temp = new Uint8Array(rows * tempStride);
    const srcStride = image.width * 3;
    for (let y = 0; y < rows; y++) {
      const rowBase = (rowFirst + y) * srcStride;
      let o = y * tempStride;
      // Hot loop: indices are in range by construction, hence the non-null assertions (no per-tap branches).
      for (let x = 0; x < width; x++) {
        const k = x * ksize;
        const end = k + taps[x]!;
        let p = rowBase + first[x]! * 3;
        let r = HALF;
        let g = HALF;
        let b = HALF;
        // Int32 arithmetic is exact here: |sum| < 2^31 for every Pillow filter (Pillow sums in INT32 too).
        for (let t = k; t < end; t++, p += 3) {
          const wt = weights[t]!;
          r = (r + Math.imul(src[p]!, wt)) | 0;
          g = (g + Math.imul(src[p + 1]!, wt)) | 0;
          b = (b + Math.imul(src[p + 2]!, wt)) | 0;
        }
        temp[o++] = clip8(r);
        temp[o++] = clip8(g);
        temp[o++] = clip8(b);
      }
    }
  } else {
    temp = new Uint8Array(rows * tempStride);
    for (let y = 0; y < rows; y++) {
      const from = ((rowFirst + y) * image.width + left) * 3;
      temp.set(src.subarray(from, from + tempStride), y * tempStride);
    }
  }
  if (vertical === undefined) return temp;

  // Vertical pass over the horizontally resized rows.
  const out = new Uint8Array(height * tempStride);
  const { ksize, first, taps, weights } = vertical;
  // Row by row into an accumulator: sequential memory access, several times faster than column walks.
  const acc = new Int32Array(tempStride);
  for (let y = 0; y < height; y++) {
    const k = y * ksize;
    const end = k + taps[y]!;
    acc.fill(HALF);
    let base = (first[y]! - rowFirst) * tempStride;
    for (let t = k; t < end; t++, base += tempStride) {
      const wt = weights[t]!;
      for (let i = 0; i < tempStride; i++) acc[i] = (acc[i]! + Math.imul(temp[base + i]!, wt)) | 0;
    }
    const outBase = y * tempStride;
    for (let i = 0; i < tempStride; i++) out[outBase + i] = clip8(acc[i]!);
  }
  return out;
}

/** PIL's NEAREST resize (an affine transform sampling at pixel centres), windowed. */
function nearestWindow(image: RgbImage, outWidth: number, outHeight: number, window: ResizeWindow): Uint8Array {
  const { left, top, width, height } = window;
  const sx = image.width / outWidth;
  const sy = image.height / outHeight;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const iy = Math.min(image.height - 1, Math.trunc((top + y + 0.5) * sy));
    for (let x = 0; x < width; x++) {
      const ix = Math.min(image.width - 1, Math.trunc((left + x + 0.5) * sx));
      const p = (iy * image.width + ix) * 3;
      const o = (y * width + x) * 3;
      out[o] = image.data[p] ?? 0;
      out[o + 1] = image.data[p + 1] ?? 0;
      out[o + 2] = image.data[p + 2] ?? 0;
    }
  }
  return out;
}
