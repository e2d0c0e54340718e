/**
 * Image bytes → 8-bit RGB as PIL's `ImageOps.exif_transpose` + `convert('RGB')` gives them, decoded by sharp (off the
 * event loop), and the strictness that refuses what a decoder would fill with grey. What changes here is how formats
 * decode: colour spaces, transparency, truncated files and the errors they give.
 */
import sharp, { type OutputInfo } from 'sharp';
import { badUserInput } from '../../errors.js';
import { inspectImage, type ImageHeader } from './imageInput.js';
import type { RgbImage } from './pilResize.js';
import type { ImageLimits } from '../types.js';

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

export type FailOn = typeof DECODE_FAIL_ON | 'warning';

/**
 * Runs a decode of `header`'s image with the strictness that refuses what would be decoded as filler. A JPEG is
 * decoded with failOn 'warning' first: it stops at libjpeg's first warning, and one of {@link LOST_JPEG_DATA} fails
 * the image. Any other warning (stray bytes before a marker, an unknown JFIF revision or Adobe transform, a bad ICC
 * chunk: the pixel data is whole, and PIL accepts such files) leads to a second decode at 'error', so only those rare
 * files pay twice. Other formats are decoded once at 'error'.
 */
export async function decodeStrictly<T>(header: ImageHeader, decode: (failOn: FailOn) => Promise<T>): Promise<T> {
  if (header.format !== 'jpeg') return decode(DECODE_FAIL_ON);
  try {
    return await decode('warning');
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (LOST_JPEG_DATA.test(message)) throw error;
    return decode(DECODE_FAIL_ON);
  }
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

export function decodeError(error: unknown, field: string, limits: ImageLimits): Error {
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
