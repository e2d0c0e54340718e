/**
 * @file The user-input boundary for images: base64 / data-URL strings → bytes, and a header-only inspection
 * (format, dimensions) that refuses unsupported formats and decompression bombs before any pixel is decoded.
 * Every refusal is a BAD_USER_INPUT AppError naming the field; messages never contain file system paths.
 */
import sharp, { type Metadata } from 'sharp';
import { badUserInput } from '../../errors.js';
import { readImageHeader } from './headerReader.js';
import type { ImageInfo, ImageLimits } from '../types.js';

export type { ImageInfo, ImageLimits };

/** The formats the server classifies (AVIF is libheif's AV1 flavour; HEIC is not supported). */
export const SUPPORTED_IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'avif', 'tiff'] as const;
export type SupportedImageFormat = (typeof SUPPORTED_IMAGE_FORMATS)[number];

/** What {@link inspectImage} reads from a header: {@link ImageInfo} plus what the decoder needs to know. */
export interface ImageHeader extends ImageInfo {
  format: SupportedImageFormat;
  /** libvips interpretation, e.g. `srgb`, `b-w`, `cmyk`, `rgb16`. */
  colourSpace: string | undefined;
  /** Sample format, e.g. `uchar` (8-bit) or `ushort` (16-bit). */
  depth: string | undefined;
  /** Width and height once EXIF orientation is applied. */
  orientedWidth: number;
  orientedHeight: number;
}

const DATA_URL = /^data:([^,]*?),/i;
const STANDARD_ALPHABET = /^[A-Za-z0-9+/]*$/;
const URL_SAFE_ALPHABET = /^[A-Za-z0-9_-]*$/;
/** Whitespace tolerated inside base64 (line-wrapped MIME output, pretty-printed JSON). */
const BASE64_WHITESPACE = /[\t\n\f\r ]+/g;

/** Base64 characters needed for `bytes` bytes, padded. */
function encodedLength(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

function formatBytes(bytes: number): string {
  return `${bytes} bytes`;
}

/**
 * Decodes a user's image string: a data URL `data:image/<type>;base64,<data>` or bare base64, standard or
 * URL-safe alphabet, with optional whitespace/newlines and optional padding.
 *
 * The encoded length is checked against `maxBytes` before anything is decoded, so an oversized string is
 * refused in O(1); the alphabet is checked strictly, since `Buffer.from(…, 'base64')` silently skips garbage.
 *
 * @param field names the input in messages, e.g. `images[2]`.
 * @param maxBytes largest decoded size accepted, in bytes.
 * @throws AppError BAD_USER_INPUT: empty, not base64, a data URL that is not base64 or not an image type, too large.
 */
export function decodeImageString(input: string, field: string, maxBytes: number): Buffer {
  let payload = input;
  const dataUrl = DATA_URL.exec(input.trimStart());
  if (dataUrl !== null) {
    const [mediaType = '', ...params] = (dataUrl[1] ?? '').split(';').map((part) => part.trim());
    if (!/^image\/[\w.+-]+$/i.test(mediaType)) {
      throw badUserInput(`${field}: data URL has type "${mediaType || 'text/plain'}"; expected image/*`, field);
    }
    if (!params.some((param) => param.toLowerCase() === 'base64')) {
      throw badUserInput(`${field}: data URL is not base64-encoded (expected "data:${mediaType};base64,…")`, field);
    }
    payload = input.trimStart().slice(dataUrl[0].length);
  } else if (/^\s*data:/i.test(input)) {
    throw badUserInput(`${field}: malformed data URL (expected "data:image/<type>;base64,<data>")`, field);
  }

  const maxEncoded = encodedLength(maxBytes);
  const fast = decodeCompactBase64(payload, maxEncoded, maxBytes);
  if (fast !== undefined) return fast;
  // Whitespace can at most be a small fraction of honest input; anything far over the limit is refused unread.
  if (payload.length > 2 * maxEncoded + 1024)
    throw tooLarge(field, Math.floor((payload.length * 3) / 4), maxBytes, true);
  const compact = payload.replace(BASE64_WHITESPACE, '');
  if (compact.length === 0) throw badUserInput(`${field}: empty image`, field);
  if (compact.length > maxEncoded) throw tooLarge(field, Math.floor((compact.length * 3) / 4), maxBytes, true);

  const padding = compact.endsWith('==') ? 2 : compact.endsWith('=') ? 1 : 0;
  const body = compact.slice(0, compact.length - padding);
  const alphabetOk = STANDARD_ALPHABET.test(body) || URL_SAFE_ALPHABET.test(body);
  // Unpadded input may end anywhere except one character into a group; padded input must fill its group.
  const lengthOk = padding === 0 ? body.length % 4 !== 1 : compact.length % 4 === 0;
  if (!alphabetOk || !lengthOk) throw badUserInput(`${field}: not valid base64`, field);

  const bytes = Buffer.from(body, URL_SAFE_ALPHABET.test(body) ? 'base64url' : 'base64');
  if (bytes.length === 0) throw badUserInput(`${field}: empty image`, field);
  if (bytes.length > maxBytes) throw tooLarge(field, bytes.length, maxBytes, false);
  return bytes;
}

/**
 * The common case in one pass and no intermediate string: no whitespace, one alphabet, within the limit. Node's
 * decoder skips characters outside the alphabet silently, but each skipped one shortens the output (for bodies
 * whose length is not 1 mod 4, which are refused anyway), so an exact output length proves the string clean.
 * Undefined whenever that cannot be shown: the strict path below then decides, with its messages.
 */
function decodeCompactBase64(payload: string, maxEncoded: number, maxBytes: number): Buffer | undefined {
  if (payload.length === 0 || payload.length > maxEncoded) return undefined;
  const padding = payload.endsWith('==') ? 2 : payload.endsWith('=') ? 1 : 0;
  const length = payload.length - padding;
  if (length % 4 === 1 || (padding > 0 && payload.length % 4 !== 0)) return undefined;
  const standard = payload.includes('+') || payload.includes('/');
  const urlSafe = payload.includes('-') || payload.includes('_');
  if (standard && urlSafe) return undefined;
  const bytes = Buffer.from(payload, urlSafe ? 'base64url' : 'base64');
  if (bytes.length === 0 || bytes.length > maxBytes || bytes.length !== Math.floor((length * 3) / 4)) return undefined;
  return bytes;
}

function tooLarge(field: string, bytes: number, maxBytes: number, estimated: boolean) {
  const size = estimated ? `about ${formatBytes(bytes)}` : formatBytes(bytes);
  return badUserInput(`${field}: image is ${size}, over the limit of ${formatBytes(maxBytes)}`, field);
}

/** sharp/libvips format names → ours; HEIF is AVIF only when its compression is AV1. */
function supportedFormatOf(format: string, compression: string | undefined): SupportedImageFormat | undefined {
  if (format === 'heif') return compression === 'av1' ? 'avif' : undefined;
  if (format === 'jpg') return 'jpeg';
  if (format === 'tif') return 'tiff';
  return (SUPPORTED_IMAGE_FORMATS as readonly string[]).includes(format) ? (format as SupportedImageFormat) : undefined;
}

/**
 * Reads an image's header and checks it against the limits: non-empty, at most `limits.maxBytes`, a supported
 * format, positive dimensions, and width × height at most `limits.maxPixels` (decompression bombs are refused here,
 * before decoding).
 *
 * JPEG and PNG headers are parsed in a few microseconds ({@link readImageHeader}); every other file, and any JPEG or
 * PNG that reader is not sure about, goes to sharp's `metadata()` (0.3–0.6 ms of CPU, `scripts/bench/headerCheck.ts`). Both give the same header and the
 * same refusals ({@link inspectImageWithSharp} is the sharp path alone, which the tests compare against).
 *
 * @param field names the image in messages, e.g. `images[2]`.
 * @throws AppError BAD_USER_INPUT naming `field` for every refusal.
 */
export async function inspectImage(bytes: Uint8Array, field: string, limits: ImageLimits): Promise<ImageHeader> {
  checkByteSize(bytes, field, limits);
  return checkedHeader(readImageHeader(bytes) ?? (await sharpHeader(bytes, field)), field, limits);
}

/** {@link inspectImage} with every header read by sharp `metadata()`: the reference the fast path must match. */
export async function inspectImageWithSharp(
  bytes: Uint8Array,
  field: string,
  limits: ImageLimits,
): Promise<ImageHeader> {
  checkByteSize(bytes, field, limits);
  return checkedHeader(await sharpHeader(bytes, field), field, limits);
}

function checkByteSize(bytes: Uint8Array, field: string, limits: ImageLimits): void {
  if (bytes.length === 0) throw badUserInput(`${field}: empty image`, field);
  if (bytes.length > limits.maxBytes) throw tooLarge(field, bytes.length, limits.maxBytes, false);
}

/** The header as sharp `metadata()` reads it (no pixels decoded); refuses files it cannot read or formats we do not take. */
async function sharpHeader(bytes: Uint8Array, field: string): Promise<ImageHeader> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw badUserInput(
      `${field}: not an image (unrecognised format); expected one of ${SUPPORTED_IMAGE_FORMATS.join(', ')}`,
      field,
    );
  }
  const format = supportedFormatOf(meta.format, meta.compression);
  if (format === undefined) {
    const name = meta.format === 'heif' ? (meta.compression === 'hevc' ? 'heic' : 'heif') : meta.format;
    throw badUserInput(
      `${field}: unsupported format ${name}; expected one of ${SUPPORTED_IMAGE_FORMATS.join(', ')}`,
      field,
    );
  }
  const { width, height } = meta;
  const header: ImageHeader = {
    format,
    width,
    height,
    colourSpace: meta.space,
    depth: meta.depth,
    orientedWidth: meta.autoOrient?.width ?? width,
    orientedHeight: meta.autoOrient?.height ?? height,
  };
  if (meta.pages !== undefined) header.pages = meta.pages;
  return header;
}

/** Positive dimensions and the pixel limit, checked the same way whichever reader gave the header. */
function checkedHeader(header: ImageHeader, field: string, limits: ImageLimits): ImageHeader {
  const { width, height } = header;
  if (!(width > 0) || !(height > 0)) throw badUserInput(`${field}: image has no pixels (${width}×${height})`, field);
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    throw badUserInput(
      `${field}: ${width}×${height} = ${pixels} pixels exceeds the limit of ${limits.maxPixels}`,
      field,
    );
  }
  return header;
}
