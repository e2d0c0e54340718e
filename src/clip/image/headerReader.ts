/**
 * @file A header reader for JPEG and PNG in about a microsecond of CPU, where sharp's `metadata()` costs 0.3–0.6 ms
 * (a libvips loader is built and torn down per call), twice per image: at submission and in the preprocessing worker
 * (scripts/bench/headerCheck.ts measures both).
 *
 * It answers only for files inside a subset it can read exactly as sharp 0.35 / libvips 8.18 (mozjpeg, libpng
 * 1.6.58, libexif 0.6.26) read them, and returns undefined for everything else, so sharp decides whenever this
 * reader is not sure: the header and the refusals are the same either way. test/unit/clip/image/headerReader.test.ts
 * checks that on generated, crafted, truncated and mutated files against sharp itself; rerun it after upgrading sharp.
 *
 * What libvips reports for these two formats, read from its sources and checked with sharp:
 * - JPEG (`jpeg_read_header`, up to and including the first SOS): 1 component → `b-w`, 3 → `srgb`, 4 → `cmyk`
 *   (YCCK too), always `uchar`; the orientation is the first Exif APP1's IFD0 Orientation (1–8, anything else
 *   reads as 1), and 5–8 swap width and height. The markers are checked as libjpeg checks them: a malformed one
 *   makes sharp refuse the file, so the reader gives way to sharp (which then refuses it with its own words).
 * - PNG (`png_read_info`, up to the first IDAT's chunk header): the space comes from IHDR alone (grey and grey +
 *   alpha → `b-w` / `grey16`, RGB, RGBA and palette → `srgb` / `rgb16`; 16-bit → `ushort`), whatever tRNS, gAMA,
 *   sRGB, iCCP or text chunks say; an eXIf chunk before IDAT gives the orientation as in JPEG. CRCs are not checked
 *   when libvips reads a header, and only critical chunks and truncation are fatal (libpng reports ancillary-chunk
 *   errors as warnings). APNG chunks send the file to sharp.
 */
import type { ImageHeader } from './imageInput.js';

/** JPEG marker codes (the byte after 0xFF). */
const SOI = 0xd8;
const SOF0 = 0xc0; // baseline
const SOF1 = 0xc1; // extended sequential, Huffman
const SOF2 = 0xc2; // progressive, Huffman
const DHT = 0xc4;
const SOS = 0xda;
const DQT = 0xdb;
const DRI = 0xdd;
const APP0 = 0xe0;
const APP1 = 0xe1;
const APP2 = 0xe2;
const APP14 = 0xee;
const APP15 = 0xef;
const COM = 0xfe;

/** libjpeg's JPEG_MAX_DIMENSION: larger images are refused by `jpeg_read_header`. */
const JPEG_MAX_DIMENSION = 65500;
/**
 * The largest PNG width/height libvips is known to accept (it raises libpng's user limits to VIPS_MAX_COORD, checked
 * with sharp: 10,000,001 reads, 2³¹ − 1 does not); anything larger goes to sharp.
 */
const PNG_MAX_DIMENSION = 10_000_000;
/** The EXIF tag holding the orientation. */
const ORIENTATION_TAG = 0x0112;
const EXIF_SHORT = 3;
/** Longest PNG eXIf chunk read here: libexif cuts EXIF data (with the 6-byte "Exif\0\0" libvips prefixes) at 0xfffe. */
const EXIF_MAX_LENGTH = 0xfffe - 6;

/**
 * The header of a JPEG or PNG as sharp's path in `inspectImage` would give it, before the limits are checked; or
 * undefined when the file is in any other format or anything in it is outside what this reader is sure about.
 * Never throws; reads at most up to the first scan (JPEG) or image data chunk (PNG).
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === SOI && bytes[2] === 0xff) return readJpegHeader(bytes);
  if (bytes.length >= 8 && isPngSignature(bytes)) return readPngHeader(bytes);
  return undefined;
}

// ---- JPEG ----

interface JpegFrame {
  width: number;
  height: number;
  componentIds: number[];
}

/** What the APPn segments seen so far told. */
interface JpegMarkers {
  /** IFD0 orientation of the first Exif APP1: 0 when it has none; undefined before any Exif APP1. */
  orientation: number | undefined;
  /** Adobe APP14 transform flags seen (libjpeg warns on those it does not know, per component count). */
  adobeTransforms: number[];
}

function readJpegHeader(b: Uint8Array): ImageHeader | undefined {
  const markers: JpegMarkers = { orientation: undefined, adobeTransforms: [] };
  let frame: JpegFrame | undefined;
  let pos = 2;
  for (;;) {
    // Every marker accepted before the scan has a length. A byte other than 0xFF here is garbage libjpeg skips with
    // a warning, a second 0xFF is fill: both unusual enough to leave to sharp.
    if (pos + 4 > b.length || b[pos] !== 0xff) return undefined;
    const marker = b[pos + 1]!;
    const length = u16be(b, pos + 2);
    const start = pos + 4;
    const end = pos + 2 + length;
    if (length < 2 || end > b.length) return undefined;
    if ((marker >= APP0 && marker <= APP15) || marker === COM) {
      if (!readAppSegment(b, marker, start, end, markers)) return undefined;
    } else if (marker === DQT) {
      if (!isValidDqt(b, start, end)) return undefined;
    } else if (marker === DHT) {
      if (!isValidDht(b, start, end)) return undefined;
    } else if (marker === DRI) {
      if (length !== 4) return undefined;
    } else if (marker === SOF0 || marker === SOF1 || marker === SOF2) {
      // A second SOF is an error in libjpeg; 12-bit, lossless and arithmetic-coded frames are left to sharp.
      if (frame !== undefined) return undefined;
      frame = readJpegFrame(b, start, end);
      if (frame === undefined) return undefined;
    } else if (marker === SOS) {
      if (frame === undefined || !isValidScanHeader(b, start, end, frame.componentIds)) return undefined;
      return jpegHeader(frame, markers);
    } else {
      // SOI again, EOI, RSTn, TEM, DNL, DAC, other SOFs, reserved markers: errors or oddities, sharp decides.
      return undefined;
    }
    pos = end;
  }
}

function jpegHeader(frame: JpegFrame, markers: JpegMarkers): ImageHeader | undefined {
  const components = frame.componentIds.length;
  // libjpeg warns (and guesses) on Adobe transforms other than these; leave those files to sharp.
  const knownTransforms = components === 3 ? [0, 1] : components === 4 ? [0, 2] : [];
  if (markers.adobeTransforms.some((t) => !knownTransforms.includes(t))) return undefined;
  const colourSpace = components === 1 ? 'b-w' : components === 3 ? 'srgb' : 'cmyk';
  const swap = (markers.orientation ?? 0) >= 5;
  return {
    format: 'jpeg',
    width: frame.width,
    height: frame.height,
    colourSpace,
    depth: 'uchar',
    orientedWidth: swap ? frame.height : frame.width,
    orientedHeight: swap ? frame.width : frame.height,
  };
}

/** APPn / COM: only JFIF, Exif, MPF and Adobe segments mean anything to libvips' header. False: leave to sharp. */
function readAppSegment(b: Uint8Array, marker: number, start: number, end: number, markers: JpegMarkers): boolean {
  const size = end - start;
  if (marker === APP0 && size >= 14 && startsWith(b, start, JFIF)) {
    return b[start + 5] === 1; // JFIF major version 2+: libjpeg warns
  }
  if (marker === APP1 && size > 4 && startsWith(b, start, EXIF)) {
    // libvips keeps the first Exif block only; a second one is odd enough to leave to sharp.
    if (markers.orientation !== undefined) return false;
    const orientation = exifOrientation(b, start, end);
    if (orientation === undefined) return false;
    markers.orientation = orientation;
    return true;
  }
  // An MPF block makes libvips try its UltraHDR loader, which may describe the image differently.
  if (marker === APP2 && size > 4 && startsWith(b, start, MPF)) return false;
  if (marker === APP14 && size >= 12 && startsWith(b, start, ADOBE)) markers.adobeTransforms.push(b[start + 11]!);
  return true;
}

/** The orientation of an Exif APP1 (from `start`: "Exif\0\0", then a TIFF structure), as {@link tiffOrientation}. */
function exifOrientation(b: Uint8Array, start: number, end: number): number | undefined {
  if (end - start < 6 || b[start + 4] !== 0 || b[start + 5] !== 0) return undefined;
  return tiffOrientation(b, start + 6, end);
}

/**
 * The IFD0 Orientation of EXIF data (a TIFF structure from `tiff` to `end`), as libexif loads it and libvips reads it:
 * 1–8, or 0 when IFD0 has no Orientation entry. Undefined for anything less plain: another byte order mark, an IFD0
 * not wholly inside the data, several Orientation entries, one that is not a single SHORT in 1–8 (libvips would
 * convert or replace such values: sharp decides).
 */
function tiffOrientation(b: Uint8Array, tiff: number, end: number): number | undefined {
  const size = end - tiff;
  if (size < 8) return undefined;
  let littleEndian: boolean;
  if (b[tiff] === 0x49 && b[tiff + 1] === 0x49) littleEndian = true;
  else if (b[tiff] === 0x4d && b[tiff + 1] === 0x4d) littleEndian = false;
  else return undefined;
  const u16 = (at: number) => (littleEndian ? b[at]! | (b[at + 1]! << 8) : (b[at]! << 8) | b[at + 1]!);
  const u32 = (at: number) => (littleEndian ? u16(at) + u16(at + 2) * 65536 : u16(at) * 65536 + u16(at + 2));
  if (u16(tiff + 2) !== 42) return undefined;
  const ifd0 = u32(tiff + 4);
  if (ifd0 < 8 || ifd0 + 2 > size) return undefined;
  const entries = u16(tiff + ifd0);
  // The whole IFD0, with its next-IFD offset, must lie in the data (libexif would load a truncated one in part).
  if (ifd0 + 2 + 12 * entries + 4 > size) return undefined;
  let orientation = 0;
  for (let i = 0; i < entries; i++) {
    const entry = tiff + ifd0 + 2 + 12 * i;
    if (u16(entry) !== ORIENTATION_TAG) continue;
    if (orientation !== 0) return undefined;
    const value = u16(entry + 8);
    if (u16(entry + 2) !== EXIF_SHORT || u32(entry + 4) !== 1 || value < 1 || value > 8) return undefined;
    orientation = value;
  }
  return orientation;
}

/** SOF0/1/2 as libjpeg's `get_sof` and `initial_setup` check it, narrowed to 8-bit frames of 1, 3 or 4 components. */
function readJpegFrame(b: Uint8Array, start: number, end: number): JpegFrame | undefined {
  if (end - start < 6) return undefined;
  const precision = b[start]!;
  const height = u16be(b, start + 1);
  const width = u16be(b, start + 3);
  const components = b[start + 5]!;
  // Zero dimensions (DNL) and sizes over 65500 are errors in libjpeg: sharp gives the refusal.
  if (precision !== 8 || width === 0 || height === 0 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION)
    return undefined;
  if ((components !== 1 && components !== 3 && components !== 4) || end - start !== 6 + 3 * components)
    return undefined;
  const componentIds: number[] = [];
  for (let c = 0; c < components; c++) {
    const at = start + 6 + 3 * c;
    const id = b[at]!;
    const h = b[at + 1]! >> 4;
    const v = b[at + 1]! & 15;
    // Repeated ids change libjpeg's colour guess and scan matching; bad sampling factors are errors.
    if (componentIds.includes(id) || h < 1 || h > 4 || v < 1 || v > 4 || b[at + 2]! > 3) return undefined;
    componentIds.push(id);
  }
  return { width, height, componentIds };
}

/**
 * The SOS header as libjpeg's `get_sos` checks it: 1–4 components, each naming a frame component not used by an
 * earlier one. libjpeg only finds component `ci` for scan position `i` when `ci ≥ i` (its `cur_comp_info` check),
 * so out-of-order selectors are refused there; the same rule is applied here.
 */
function isValidScanHeader(b: Uint8Array, start: number, end: number, componentIds: readonly number[]): boolean {
  const n = b[start]!;
  if (n < 1 || n > 4 || end - start !== 4 + 2 * n) return false;
  const chosen: number[] = [];
  const searchable = Math.min(componentIds.length, 4);
  for (let i = 0; i < n; i++) {
    const selector = b[start + 1 + 2 * i];
    let found = -1;
    for (let ci = i; ci < searchable; ci++) {
      if (componentIds[ci] === selector) {
        found = ci;
        break;
      }
    }
    if (found < 0 || chosen.includes(found)) return false;
    chosen.push(found);
  }
  return true;
}

/** DQT: tables of 8 or 16 bits, ids 0–3, filling the segment exactly (`get_dqt`). */
function isValidDqt(b: Uint8Array, start: number, end: number): boolean {
  let pos = start;
  while (pos < end) {
    const precision = b[pos]! >> 4;
    const id = b[pos]! & 15;
    if (id > 3 || precision > 1) return false;
    pos += 1 + 64 * (precision + 1);
  }
  return pos === end;
}

/** DHT: tables with ≤ 256 codes, class 0/1 and id 0–3, filling the segment exactly (`get_dht`). */
function isValidDht(b: Uint8Array, start: number, end: number): boolean {
  let pos = start;
  while (end - pos > 16) {
    const index = b[pos]!;
    let count = 0;
    for (let i = 1; i <= 16; i++) count += b[pos + i]!;
    pos += 17;
    if (count > 256 || count > end - pos) return false;
    const id = index & 0x10 ? index - 0x10 : index;
    if (id > 3) return false;
    pos += count;
  }
  return pos === end;
}

// ---- PNG ----

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;
const COLOUR_GREY = 0;
const COLOUR_RGB = 2;
const COLOUR_PALETTE = 3;
const COLOUR_GREY_ALPHA = 4;
const COLOUR_RGBA = 6;

function isPngSignature(b: Uint8Array): boolean {
  return PNG_SIGNATURE.every((byte, i) => b[i] === byte);
}

function readPngHeader(b: Uint8Array): ImageHeader | undefined {
  // IHDR must come first (libpng skips unknown ancillary chunks before it, but that is odd enough for sharp).
  if (b.length < 8 + 25 || u32be(b, 8) !== 13 || chunkType(b, 12) !== 'IHDR') return undefined;
  const width = u32be(b, 16);
  const height = u32be(b, 20);
  const bitDepth = b[24]!;
  const colourType = b[25]!;
  if (!isValidIhdr(width, height, bitDepth, colourType, b[26]!, b[27]!, b[28]!)) return undefined;
  let sawPalette = false;
  let orientation: number | undefined;
  for (let pos = 33; ;) {
    if (pos + 8 > b.length) return undefined;
    const length = u32be(b, pos);
    if (length >= 0x80000000 || !isValidChunkName(b, pos + 4)) return undefined;
    const type = chunkType(b, pos + 4);
    if (type === 'IDAT') {
      // libpng stops after the first IDAT's chunk header; a palette image needs its PLTE before it.
      if (colourType === COLOUR_PALETTE && !sawPalette) return undefined;
      return pngHeader(width, height, bitDepth, colourType, orientation ?? 0);
    }
    // libpng reads every chunk before IDAT in full, CRC included: a truncated one is fatal.
    if (pos + 12 + length > b.length) return undefined;
    if (type === 'PLTE') {
      if (colourType === COLOUR_PALETTE) {
        // For palette images every PLTE error is fatal; elsewhere PLTE is only a suggestion, ignored on error.
        if (sawPalette || length < 3 || length > 768 || length % 3 !== 0) return undefined;
        sawPalette = true;
      }
    } else if (isCritical(b, pos + 4)) {
      return undefined; // a second IHDR, IEND before IDAT, an unknown critical chunk: fatal in libpng
    } else if (type === 'eXIf') {
      // libvips parses it as a JPEG's Exif block (libexif caps its length near 64 KiB; libpng keeps the first of two).
      if (orientation !== undefined || length > EXIF_MAX_LENGTH) return undefined;
      orientation = tiffOrientation(b, pos + 8, pos + 8 + length);
      if (orientation === undefined) return undefined;
    } else if (type === 'acTL' || type === 'fcTL' || type === 'fdAT') {
      return undefined; // an animation: sharp decides
    } else if (
      (type === 'tEXt' || type === 'zTXt' || type === 'iTXt') &&
      length >= RAW_PROFILE.length &&
      startsWith(b, pos + 8, RAW_PROFILE)
    ) {
      return undefined; // ImageMagick's EXIF-in-text ("Raw profile type exif"), which newer libvips reads
    }
    pos += 12 + length;
  }
}

/** `png_check_IHDR` (and libvips' raised size limit). */
function isValidIhdr(
  width: number,
  height: number,
  bitDepth: number,
  colourType: number,
  compression: number,
  filter: number,
  interlace: number,
): boolean {
  if (width === 0 || height === 0 || width > PNG_MAX_DIMENSION || height > PNG_MAX_DIMENSION) return false;
  if (compression !== 0 || filter !== 0 || interlace > 1) return false;
  switch (colourType) {
    case COLOUR_GREY:
      return bitDepth === 1 || bitDepth === 2 || bitDepth === 4 || bitDepth === 8 || bitDepth === 16;
    case COLOUR_PALETTE:
      return bitDepth === 1 || bitDepth === 2 || bitDepth === 4 || bitDepth === 8;
    case COLOUR_RGB:
    case COLOUR_GREY_ALPHA:
    case COLOUR_RGBA:
      return bitDepth === 8 || bitDepth === 16;
    default:
      return false;
  }
}

function pngHeader(
  width: number,
  height: number,
  bitDepth: number,
  colourType: number,
  orientation: number,
): ImageHeader {
  const grey = colourType === COLOUR_GREY || colourType === COLOUR_GREY_ALPHA;
  const wide = bitDepth === 16;
  const swap = orientation >= 5;
  return {
    format: 'png',
    width,
    height,
    colourSpace: wide ? (grey ? 'grey16' : 'rgb16') : grey ? 'b-w' : 'srgb',
    depth: wide ? 'ushort' : 'uchar',
    orientedWidth: swap ? height : width,
    orientedHeight: swap ? width : height,
  };
}

/** libpng's `check_chunk_name`: four ASCII letters, the third (reserved) one upper case. */
function isValidChunkName(b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 4; i++) {
    const c = b[at + i]!;
    const upper = c >= 0x41 && c <= 0x5a;
    if (!(upper || (i !== 2 && c >= 0x61 && c <= 0x7a))) return false;
  }
  return true;
}

function isCritical(b: Uint8Array, at: number): boolean {
  return (b[at]! & 0x20) === 0;
}

function chunkType(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
}

// ---- bytes ----

const JFIF = [0x4a, 0x46, 0x49, 0x46, 0x00] as const; // "JFIF\0"
const EXIF = [0x45, 0x78, 0x69, 0x66] as const; // "Exif" (libvips' test; "\0\0" is checked after)
const MPF = [0x4d, 0x50, 0x46] as const; // "MPF"
const ADOBE = [0x41, 0x64, 0x6f, 0x62, 0x65] as const; // "Adobe"
const RAW_PROFILE = [...'Raw profile type'].map((c) => c.charCodeAt(0));

function startsWith(b: Uint8Array, at: number, prefix: readonly number[]): boolean {
  for (let i = 0; i < prefix.length; i++) if (b[at + i] !== prefix[i]) return false;
  return true;
}

function u16be(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function u32be(b: Uint8Array, at: number): number {
  return b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}
