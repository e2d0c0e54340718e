/**
 * @file Image bytes → CLIP `pixel_values` (normalised CHW float32), reproducing the reference pipeline
 * (PIL + Hugging Face `CLIPImageProcessor`): EXIF orientation, `convert('RGB')`, shortest-edge resize with
 * PIL's resampling filter, centre crop, rescale, normalise.
 *
 * Decoding is sharp's (off the event loop). Resizing is PIL's own algorithm (Pillow `Resample.c`, ported in pilResize.ts),
 * because libvips aligns and rounds differently: on upscales plain sharp calls were 0.15–0.65 off the reference
 * (mean absolute difference in normalised units); this port matches PIL bit for bit. Only the cropped window
 * is computed, so the cost is bounded by the crop size and the downscale factor, not by the resized size.
 * The port's passes run in WebAssembly SIMD (wasmResample.ts). Large downscales, where even those cost tens of ms,
 * go to libvips instead (`exactResizeMaxPixels`), which is within ~0.004 of PIL on photographs.
 */
import sharp, { type KernelEnum, type OutputInfo } from 'sharp';
import { badUserInput } from '../../errors.js';
import { inspectImage, type ImageHeader } from './imageInput.js';
import { resizeWindow, type ResizeWindow, type RgbImage } from './pilResize.js';
import { openClipGeometry, type Geometry } from './resizeMode.js';
import type { ImageLimits, PreprocessorConfig } from '../types.js';

export { resizeWindow, type ResizeWindow, type RgbImage };

/**
 * How picky the decoder is (sharp `failOn`). 'error' aborts on truncated files (libvips' "premature end of JPEG
 * image", libpng read errors; tested) and on decoding errors. For every format but JPEG that is all it takes.
 */
export const DECODE_FAIL_ON = 'error' as const;

/**
 * libjpeg only warns when the entropy-coded data runs out or breaks before the image the header announces is
 * complete (an 8×8 JPEG whose header says 6000×6000, a damaged scan), and fills the rest with grey. These are its
 * warnings for that (jerror.h: JWRN_HIT_MARKER, JWRN_JPEG_EOF, JWRN_HUFF_BAD_CODE, JWRN_ARITH_BAD_CODE,
 * JWRN_MUST_RESYNC) and libvips' own for a truncated source.
 */
const LOST_JPEG_DATA =
  /premature end of data segment|premature end of JPEG|bad Huffman code|bad arithmetic code|instead of RST/i;

type FailOn = typeof DECODE_FAIL_ON | 'warning';

/**
 * Runs a decode of `header`'s image with the strictness that refuses what would be decoded as filler. A JPEG is
 * decoded with failOn 'warning' first: it stops at libjpeg's first warning, and one of {@link LOST_JPEG_DATA} fails
 * the image. Any other warning (stray bytes before a marker, an unknown JFIF revision or Adobe transform, a bad ICC
 * chunk: the pixel data is whole, and PIL accepts such files) leads to a second decode at 'error', so only those rare
 * files pay twice. Other formats are decoded once at 'error'.
 */
async function decodeStrictly<T>(header: ImageHeader, decode: (failOn: FailOn) => Promise<T>): Promise<T> {
  if (header.format !== 'jpeg') return decode(DECODE_FAIL_ON);
  try {
    return await decode('warning');
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (LOST_JPEG_DATA.test(message)) throw error;
    return decode(DECODE_FAIL_ON);
  }
}

/** Number of floats one image occupies in a batch tensor: `3 × cropHeight × cropWidth`. */
export function pixelValuesLength(config: PreprocessorConfig): number {
  return 3 * config.cropHeight * config.cropWidth;
}

/**
 * The size after a shortest-edge resize, computed as Hugging Face (`get_resize_output_image_size`) and
 * torchvision do: the short edge becomes `shortestEdge`, the long one `int(shortestEdge × long / short)` (truncated).
 */
export function shortestEdgeSize(
  width: number,
  height: number,
  shortestEdge: number,
): { width: number; height: number } {
  if (width <= height) return { width: shortestEdge, height: Math.trunc((shortestEdge * height) / width) };
  return { width: Math.trunc((shortestEdge * width) / height), height: shortestEdge };
}

/**
 * Decodes any supported image to 8-bit RGB as PIL's `ImageOps.exif_transpose` + `convert('RGB')` would:
 * orientation applied; alpha dropped without blending, transparent pixels keeping their colour (for GIFs, the
 * palette colour of the transparent index, as PIL gives it, where libvips would give black); grey and palette
 * expanded; 16-bit reduced to 8; CMYK converted with PIL's formula, not a colour profile; the first frame of an
 * animation. Embedded ICC profiles are ignored, as PIL ignores them.
 *
 * Alpha is removed here, in a pipeline of its own: within one sharp pipeline libvips resizes premultiplied and
 * removes alpha after resizing, which blackens transparent pixels.
 *
 * @param field names the image in error messages (e.g. `images[2]`). @default 'image'
 * @throws AppError BAD_USER_INPUT for everything {@link inspectImage} refuses, and when the image cannot be decoded.
 */
export async function decodeRgb(
  bytes: Uint8Array,
  limits: ImageLimits,
  field = 'image',
  checked?: ImageHeader,
): Promise<RgbImage> {
  // Format and pixel count from the header first: nothing unsupported or oversized reaches a decoder.
  const header = checked ?? (await inspectImage(bytes, field, limits));
  try {
    return await decodeStrictly(header, (failOn) => decodeRgbOnce(bytes, header, limits, failOn));
  } catch (error) {
    throw decodeError(error, field, limits);
  }
}

async function decodeRgbOnce(
  bytes: Uint8Array,
  header: ImageHeader,
  limits: ImageLimits,
  failOn: FailOn,
): Promise<RgbImage> {
  const input = sharp(bytes, {
    failOn,
    limitInputPixels: limits.maxPixels,
    ignoreIcc: true,
    autoOrient: true,
  });
  if (header.colourSpace === 'cmyk' && header.depth === 'uchar') {
    // CMYK kept as CMYK end to end: otherwise sharp round-trips it through sRGB with a built-in profile.
    const { data, info } = await input
      .pipelineColourspace('cmyk')
      .removeAlpha()
      .toColourspace('cmyk')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data: cmykToRgb(checkBands(data, info, 4)), width: info.width, height: info.height };
  }
  const transparent = header.format === 'gif' ? gifTransparentColour(bytes) : undefined;
  if (transparent !== undefined) {
    const { data, info } = await input
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return { data: rgbaToRgb(checkBands(data, info, 4), transparent), width: info.width, height: info.height };
  }
  const { data, info } = await input
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return { data: checkBands(data, info, 3), width: info.width, height: info.height };
}

function checkBands(data: Buffer, info: OutputInfo, channels: number): Uint8Array {
  if (info.channels !== channels || data.length !== info.width * info.height * channels) {
    throw new Error(`decoded to ${info.channels} channels of ${info.width}×${info.height}, expected ${channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/** PIL's `cmyk2rgb` (Convert.c): `(255 - C)(255 - K) / 255` per channel, with its rounding. */
function cmykToRgb(cmyk: Uint8Array): Uint8Array {
  const rgb = new Uint8Array((cmyk.length / 4) * 3);
  for (let i = 0, o = 0; i < cmyk.length; i += 4) {
    const nk = 255 - cmyk[i + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = cmyk[i + c]! * nk + 128; // MULDIV255
      rgb[o++] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return rgb;
}

/** Drops alpha, giving fully transparent pixels `colour`. */
function rgbaToRgb(rgba: Uint8Array, colour: readonly [number, number, number]): Uint8Array {
  const rgb = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0, o = 0; i < rgba.length; i += 4, o += 3) {
    const opaque = rgba[i + 3] !== 0;
    rgb[o] = opaque ? rgba[i]! : colour[0];
    rgb[o + 1] = opaque ? rgba[i + 1]! : colour[1];
    rgb[o + 2] = opaque ? rgba[i + 2]! : colour[2];
  }
  return rgb;
}

/**
 * The colour PIL shows for transparent pixels of a GIF's first frame: its palette's entry at the transparent
 * index (local table, else global). Reads blocks up to the first image descriptor; undefined when there is no
 * transparency or the file is not laid out as expected (libvips then decides).
 */
export function gifTransparentColour(gif: Uint8Array): [number, number, number] | undefined {
  const byte = (i: number): number => gif[i] ?? -1;
  if (gif.length < 13) return undefined;
  let pos = 13;
  let table: { start: number; entries: number } | undefined;
  const packed = byte(10);
  if (packed & 0x80) {
    table = { start: pos, entries: 1 << ((packed & 7) + 1) };
    pos += 3 * table.entries;
  }
  let transparentIndex: number | undefined;
  while (pos < gif.length) {
    const introducer = byte(pos);
    if (introducer === 0x21) {
      // Extension: the graphic control extension (0xF9) carries the transparency flag and index.
      if (byte(pos + 1) === 0xf9 && byte(pos + 2) === 4) {
        transparentIndex = byte(pos + 3) & 1 ? byte(pos + 6) : undefined;
      }
      pos += 2;
      for (let size = byte(pos); size > 0; size = byte(pos)) pos += size + 1;
      if (byte(pos) !== 0) return undefined;
      pos += 1;
    } else if (introducer === 0x2c) {
      if (transparentIndex === undefined) return undefined;
      const local = byte(pos + 9);
      if (local & 0x80) table = { start: pos + 10, entries: 1 << ((local & 7) + 1) };
      if (table === undefined || transparentIndex >= table.entries) return undefined;
      const at = table.start + 3 * transparentIndex;
      if (at + 2 >= gif.length) return undefined;
      return [byte(at), byte(at + 1), byte(at + 2)];
    } else {
      return undefined;
    }
  }
  return undefined;
}

function decodeError(error: unknown, field: string, limits: ImageLimits) {
  const raw = error instanceof Error ? error.message : String(error);
  if (/exceeds pixel limit/i.test(raw)) {
    return badUserInput(`${field}: image exceeds the limit of ${limits.maxPixels} pixels`, field);
  }
  // libvips messages name the loader and the problem ("VipsJpeg: Premature end of input file"); first line only.
  const reason = raw.split('\n')[0]?.trim() ?? '';
  const appError = badUserInput(`${field} could not be decoded: ${reason || 'unknown error'}`, field);
  appError.cause = error;
  return appError;
}

/** The index range `[start, start + count)` of the crop that falls inside the image, and where it lands in the crop. */
interface Span {
  /** First image index inside the crop window. */
  start: number;
  count: number;
  /** Offset of that index within the crop window (> 0 only when the crop is larger than the image). */
  into: number;
}

function cropSpan(size: number, crop: number): Span {
  // Hugging Face's center_crop: offset (size - crop) // 2; a crop larger than the image pads with zeros.
  const offset = Math.floor((size - crop) / 2);
  const start = Math.max(0, offset);
  const end = Math.min(size, offset + crop);
  return { start, count: Math.max(0, end - start), into: start - offset };
}

const SHARP_KERNELS: ReadonlyMap<number, keyof KernelEnum> = new Map<number, keyof KernelEnum>([
  [0, 'nearest'],
  [1, 'lanczos3'],
  [2, 'linear'],
  [3, 'cubic'],
  [4, 'linear'],
  [5, 'linear'],
]);

/**
 * The same resize + window by libvips (off the event loop), for images too large for {@link resizeWindow}
 * to stay cheap. Not bit-exact: libvips box-shrinks large factors before its cubic pass; measured against
 * PIL (mean absolute difference in normalised units) ≤ 0.004 on photo-like images from 1 to 12 MP,
 * up to 0.04 on white noise.
 */
export async function resizeWindowWithSharp(
  image: RgbImage,
  outWidth: number,
  outHeight: number,
  window: ResizeWindow,
  resample: number,
): Promise<Uint8Array> {
  if (window.width === 0 || window.height === 0) return new Uint8Array(0);
  const data = await sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: 3 },
    limitInputPixels: false,
  })
    .resize(outWidth, outHeight, { fit: 'fill', kernel: SHARP_KERNELS.get(resample) ?? 'cubic' })
    .extract(window)
    .raw()
    .toBuffer();
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/**
 * Large JPEGs (shortest side at least 4× the target) are decoded at reduced scale by libjpeg itself (DCT scaling,
 * libvips' shrink-on-load) and resized in the same pipeline: a 4000×3000 photo decodes at 1/8 the pixels. Such
 * images take the libvips resize anyway (not the exact PIL port), and JPEG has no alpha, so one pipeline is safe.
 */
function canShrinkOnLoad(header: ImageHeader, config: PreprocessorConfig): boolean {
  return (
    config.doResize &&
    header.format === 'jpeg' &&
    header.colourSpace !== 'cmyk' &&
    header.depth === 'uchar' &&
    Math.min(header.orientedWidth, header.orientedHeight) >= 4 * config.shortestEdge
  );
}

async function decodeAndResizeJpeg(
  bytes: Uint8Array,
  header: ImageHeader,
  g: Geometry,
  config: PreprocessorConfig,
  limits: ImageLimits,
  field: string,
): Promise<Uint8Array> {
  if (g.window.width === 0 || g.window.height === 0) return new Uint8Array(0);
  const decode = async (failOn: FailOn): Promise<Uint8Array> => {
    const data = await sharp(bytes, { failOn, limitInputPixels: limits.maxPixels, ignoreIcc: true, autoOrient: true })
      .toColourspace('srgb')
      .resize(g.resizedWidth, g.resizedHeight, {
        fit: 'fill',
        kernel: SHARP_KERNELS.get(config.resample) ?? 'cubic',
        fastShrinkOnLoad: true,
      })
      .extract(g.window)
      .raw({ depth: 'uchar' })
      .toBuffer();
    if (data.length !== g.window.width * g.window.height * 3)
      throw new Error(`decoded ${data.length} bytes, expected ${g.window.width}×${g.window.height}×3`);
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
  };
  try {
    return await decodeStrictly(header, decode);
  } catch (error) {
    throw decodeError(error, field, limits);
  }
}

/** Options of {@link preprocessImage} and {@link preprocessInto}. */
export interface PreprocessOptions {
  /** Decode large JPEGs at reduced scale (see canShrinkOnLoad). @default true */
  shrinkOnLoad?: boolean;
  /** Names the image in error messages, e.g. `images[2]`. @default 'image' */
  field?: string;
  /**
   * Largest number of source pixels (those the crop window reads) resized by the bit-exact port of PIL, at
   * ~10 ns per pixel read in its WebAssembly SIMD kernels (~45 ns in plain JavaScript; 2-core Xeon under load):
   * 640×480 reads 480×480 ≈ 2.5 ms; the default ≈ 4 ms, i.e. sources whose short side is up to ~630 px. It runs
   * wherever preprocessing runs (a PREPROCESS_WORKERS thread, or the event loop). Larger downscales go to libvips
   * on its own threads, a little less exactly (see {@link resizeWindowWithSharp}). Upscales are always exact: they
   * read at most the window.
   * 0 sends every downscale to libvips, Infinity none.
   * @default 400_000
   */
  exactResizeMaxPixels?: number;
}

/** Default of {@link PreprocessOptions.exactResizeMaxPixels}. */
export const DEFAULT_EXACT_RESIZE_MAX_PIXELS = 400_000;

/** Where an image goes on its way to `pixel_values` (resize, window, padding): open_clip's modes, or Hugging Face's processor. */
function geometryOf(image: { width: number; height: number }, config: PreprocessorConfig): Geometry {
  if (config.resizeMode !== undefined) return openClipGeometry(image, config, config.resizeMode);
  const resized = config.doResize ? shortestEdgeSize(image.width, image.height, config.shortestEdge) : image;
  const cols = config.doCenterCrop
    ? cropSpan(resized.width, config.cropWidth)
    : { start: 0, count: Math.min(resized.width, config.cropWidth), into: 0 };
  const rows = config.doCenterCrop
    ? cropSpan(resized.height, config.cropHeight)
    : { start: 0, count: Math.min(resized.height, config.cropHeight), into: 0 };
  return {
    resizedWidth: resized.width,
    resizedHeight: resized.height,
    window: { left: cols.start, top: rows.start, width: cols.count, height: rows.count },
    intoX: cols.into,
    intoY: rows.into,
  };
}

/** Source pixels the exact resize of `geometry.window` reads: what its cost is proportional to. */
function sourcePixelsRead(image: RgbImage, g: Geometry): number {
  const scaleX = Math.max(1, image.width / g.resizedWidth);
  const scaleY = Math.max(1, image.height / g.resizedHeight);
  return g.window.width * scaleX * (g.window.height * scaleY);
}

/** 256-entry tables: 8-bit value → rescaled, normalised float, per channel. */
function channelTables(config: PreprocessorConfig): Float32Array[] {
  return [0, 1, 2].map((c) => {
    const table = new Float32Array(256);
    const mean = config.doNormalize ? (config.imageMean[c] ?? 0) : 0;
    const std = config.doNormalize ? (config.imageStd[c] ?? 1) : 1;
    const factor = config.doRescale ? config.rescaleFactor : 1;
    for (let v = 0; v < 256; v++) table[v] = (v * factor - mean) / std;
    return table;
  });
}

const tableCache = new WeakMap<PreprocessorConfig, Float32Array[]>();

function tablesFor(config: PreprocessorConfig): Float32Array[] {
  let tables = tableCache.get(config);
  if (tables === undefined) {
    tables = channelTables(config);
    tableCache.set(config, tables);
  }
  return tables;
}

/** Rescale + normalise the window's RGB pixels into `out` (CHW at `offset`); crop cells outside the window are zero pixels. */
function writePixelValues(
  pixels: Uint8Array,
  g: Geometry,
  config: PreprocessorConfig,
  out: Float32Array,
  offset: number,
): void {
  const cropW = config.cropWidth;
  const plane = cropW * config.cropHeight;
  const { width, height } = g.window;
  const tables = tablesFor(config);
  // Where the crop is larger than the image, Hugging Face pads with zero pixels before normalising, open_clip with fill_color.
  const padded = width < cropW || height < config.cropHeight;
  const fill = config.fillColor ?? 0;
  const [red, green, blue] = tables as [Float32Array, Float32Array, Float32Array];
  if (padded) tables.forEach((table, c) => out.fill(table[fill]!, offset + c * plane, offset + (c + 1) * plane));
  // One pass over the pixels writing all three planes: measured 0.45 against 0.8 ms for a 224×224 window with one pass per plane.
  for (let y = 0; y < height; y++) {
    let o = offset + (g.intoY + y) * cropW + g.intoX;
    const end = o + width;
    for (let p = y * width * 3; o < end; o++, p += 3) {
      out[o] = red[pixels[p]!]!;
      out[o + plane] = green[pixels[p + 1]!]!;
      out[o + 2 * plane] = blue[pixels[p + 2]!]!;
    }
  }
}

/**
 * Resize + crop + rescale + normalise an already decoded image into `out` at `offset`, CHW
 * (`out[offset + c·H·W + y·W + x]`, H = cropHeight, W = cropWidth), with the exact PIL port whatever the size.
 * Synchronous; see {@link PreprocessOptions.exactResizeMaxPixels} for what it costs.
 */
export function pixelValuesInto(image: RgbImage, config: PreprocessorConfig, out: Float32Array, offset = 0): void {
  checkRoom(config, out, offset);
  const g = geometryOf(image, config);
  writePixelValues(
    resizeWindow(image, g.resizedWidth, g.resizedHeight, g.window, config.resample),
    g,
    config,
    out,
    offset,
  );
}

function checkRoom(config: PreprocessorConfig, out: Float32Array, offset: number): void {
  const needed = pixelValuesLength(config);
  if (!Number.isInteger(offset) || offset < 0 || offset + needed > out.length) {
    throw new RangeError(`out has ${out.length} floats; an image needs ${needed} from offset ${offset}`);
  }
}

/**
 * Image bytes → `pixel_values` written into `out` (e.g. a batch tensor) at `offset`, without a copy.
 * `out` needs {@link pixelValuesLength} floats from `offset`, laid out CHW: `out[offset + c·H·W + y·W + x]`.
 *
 * @throws AppError BAD_USER_INPUT when the bytes are refused by {@link inspectImage} or cannot be decoded.
 */
export async function preprocessInto(
  bytes: Uint8Array,
  config: PreprocessorConfig,
  limits: ImageLimits,
  out: Float32Array,
  offset: number,
  options: PreprocessOptions = {},
): Promise<void> {
  checkRoom(config, out, offset);
  const field = options.field ?? 'image';
  const header = await inspectImage(bytes, field, limits);
  if (options.shrinkOnLoad !== false && canShrinkOnLoad(header, config)) {
    const g = geometryOf({ width: header.orientedWidth, height: header.orientedHeight }, config);
    writePixelValues(await decodeAndResizeJpeg(bytes, header, g, config, limits, field), g, config, out, offset);
    return;
  }
  const image = await decodeRgb(bytes, limits, field, header);
  const g = geometryOf(image, config);
  const read = sourcePixelsRead(image, g);
  const exact =
    read <= (options.exactResizeMaxPixels ?? DEFAULT_EXACT_RESIZE_MAX_PIXELS) ||
    read <= g.window.width * g.window.height;
  const pixels = exact
    ? resizeWindow(image, g.resizedWidth, g.resizedHeight, g.window, config.resample)
    : await resizeWindowWithSharp(image, g.resizedWidth, g.resizedHeight, g.window, config.resample);
  writePixelValues(pixels, g, config, out, offset);
}

/**
 * Image bytes → normalised CHW float32 `pixel_values` of shape `[3, cropHeight, cropWidth]`.
 *
 * @throws AppError BAD_USER_INPUT when the bytes are refused by {@link inspectImage} or cannot be decoded.
 */
export async function preprocessImage(
  bytes: Uint8Array,
  config: PreprocessorConfig,
  limits: ImageLimits,
  options: PreprocessOptions = {},
): Promise<Float32Array> {
  const out = new Float32Array(pixelValuesLength(config));
  await preprocessInto(bytes, config, limits, out, 0, options);
  return out;
}
