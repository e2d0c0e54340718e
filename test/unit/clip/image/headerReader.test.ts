/**
 * The fast JPEG/PNG header reader against sharp itself: for generated images of every common kind it must answer,
 * and answer exactly what sharp's path answers; for anything odd, truncated or mutated it must either give the
 * same answer or step aside (undefined), never throw, and `inspectImage` must end with sharp's header or refusal.
 */
import { deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../../src/errors.js';
import { readImageHeader } from '../../../../src/clip/image/headerReader.js';
import { inspectImage, inspectImageWithSharp, type ImageHeader } from '../../../../src/clip/image/imageInput.js';
import type { ImageLimits } from '../../../../src/clip/types.js';
import { createRng, pngChunk, type Rng } from '../../../utils/fuzzCases.js';

const FIELD = 'images[3]';
/** No limit can refuse: what each reader reads, unfiltered. */
const UNLIMITED: ImageLimits = { maxBytes: 1e9, maxPixels: 1e15 };
const LIMITS: ImageLimits = { maxBytes: 50_000_000, maxPixels: 40_000_000 };

type Outcome = { header: ImageHeader } | { refusal: { message: string; code: string; field: string | undefined } };

/** What a user would get: the header, or the refusal's message, code and field (anything else thrown fails the test). */
async function outcome(run: () => Promise<ImageHeader>): Promise<Outcome> {
  try {
    return { header: await run() };
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return { refusal: { message: error.message, code: error.code, field: error.field } };
  }
}

/**
 * Asserts the fast reader agrees with sharp on `bytes` (its header, when it gives one, is sharp's; `inspectImage`
 * ends with sharp's header or refusal under `limits`). Returns whether the fast reader answered.
 */
async function expectAgreement(name: string, bytes: Uint8Array, limits: ImageLimits = UNLIMITED): Promise<boolean> {
  const fast = readImageHeader(bytes); // a throw here fails the test: it must never throw
  const viaSharp = await outcome(() => inspectImageWithSharp(bytes, FIELD, limits));
  if (fast !== undefined) {
    const unlimited =
      limits === UNLIMITED ? viaSharp : await outcome(() => inspectImageWithSharp(bytes, FIELD, UNLIMITED));
    expect({ header: fast }, name).toStrictEqual(unlimited);
  }
  expect(await outcome(() => inspectImage(bytes, FIELD, limits)), name).toStrictEqual(viaSharp);
  return fast !== undefined;
}

// ---- images ----

/** A noisy non-square RGB image (non-square so that orientations 5–8 show). */
function photo(width = 64, height = 40): Sharp {
  const pixels = Buffer.alloc(width * height * 3);
  const rng = createRng(width * 7 + height);
  for (let i = 0; i < pixels.length; i++)
    pixels[i] = (((i % (width * 3)) * 3 + Math.floor(i / (width * 3)) * 5) & 0xff) ^ rng.int(0, 31);
  return sharp(pixels, { raw: { width, height, channels: 3 } });
}

function jpegSegment(marker: number, data: Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(data.length + 2, 2);
  return Buffer.concat([head, data]);
}

/** `segments` inserted right after SOI. */
function withSegments(jpeg: Buffer, ...segments: Buffer[]): Buffer {
  return Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2)]);
}

interface Segment {
  marker: number;
  /** Offset of the 0xFF. */
  at: number;
  /** The length field (data + 2). */
  length: number;
}

/** The marker segments of a well-formed JPEG up to and including SOS. */
function jpegSegments(jpeg: Buffer): Segment[] {
  const out: Segment[] = [];
  for (let at = 2; at + 4 <= jpeg.length;) {
    const segment = { marker: jpeg[at + 1]!, at, length: jpeg.readUInt16BE(at + 2) };
    out.push(segment);
    if (segment.marker === 0xda) break;
    at += 2 + segment.length;
  }
  return out;
}

function segmentOf(jpeg: Buffer, marker: number): Segment {
  const segment = jpegSegments(jpeg).find((s) => s.marker === marker);
  if (segment === undefined) throw new Error(`no marker 0x${marker.toString(16)}`);
  return segment;
}

/** Where the JPEG's header ends: just after the SOS header. */
function jpegHeaderEnd(jpeg: Buffer): number {
  const sos = segmentOf(jpeg, 0xda);
  return sos.at + 2 + sos.length;
}

function modified(bytes: Buffer, change: (copy: Buffer) => void): Buffer {
  const copy = Buffer.from(bytes);
  change(copy);
  return copy;
}

/** A TIFF structure with one IFD of `entries` ([tag, type, count, inline value]), in either byte order. */
function tiff(
  littleEndian: boolean,
  entries: readonly (readonly [number, number, number, number])[],
  ifdOffset = 8,
): Buffer {
  const b = Buffer.alloc(ifdOffset + 2 + 12 * entries.length + 4);
  const u16 = (v: number, at: number) => (littleEndian ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const u32 = (v: number, at: number) => (littleEndian ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  b.write(littleEndian ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  u32(ifdOffset, 4);
  u16(entries.length, ifdOffset);
  entries.forEach(([tag, type, count, value], i) => {
    const at = ifdOffset + 2 + 12 * i;
    u16(tag, at);
    u16(type, at + 2);
    u32(count, at + 4);
    if (type === 3) u16(value, at + 8);
    else u32(value, at + 8);
  });
  return b;
}

const exifApp1 = (body: Buffer) => jpegSegment(0xe1, Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), body]));
const SHORT = 3;
const LONG = 4;
const orientationEntry = (value: number) => [0x0112, SHORT, 1, value] as const;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function ihdr(
  width: number,
  height: number,
  bitDepth: number,
  colourType: number,
  interlace = 0,
  compression = 0,
  filter = 0,
): Buffer {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data.set([bitDepth, colourType, compression, filter, interlace], 8);
  return pngChunk('IHDR', data);
}

function png(...chunks: Buffer[]): Buffer {
  return Buffer.concat([PNG_SIGNATURE, ...chunks]);
}

const IDAT = pngChunk('IDAT', deflateSync(Buffer.alloc(256)));
const IEND = pngChunk('IEND', Buffer.alloc(0));

interface PngChunkInfo {
  type: string;
  at: number;
  length: number;
}

function pngChunks(bytes: Buffer): PngChunkInfo[] {
  const out: PngChunkInfo[] = [];
  for (let at = 8; at + 8 <= bytes.length; at += 12 + bytes.readUInt32BE(at)) {
    out.push({ type: bytes.toString('latin1', at + 4, at + 8), at, length: bytes.readUInt32BE(at) });
  }
  return out;
}

/** `chunks` inserted right after IHDR. */
function withChunks(bytes: Buffer, ...chunks: Buffer[]): Buffer {
  return Buffer.concat([bytes.subarray(0, 33), ...chunks, bytes.subarray(33)]);
}

/** Where the PNG's header ends for libpng: just after the first IDAT's chunk header. */
function pngHeaderEnd(bytes: Buffer): number {
  const idat = pngChunks(bytes).find((c) => c.type === 'IDAT');
  if (idat === undefined) throw new Error('no IDAT');
  return idat.at + 8;
}

/** Images of every common kind, all of which the fast reader must answer for. */
async function commonImages(): Promise<{ name: string; bytes: Buffer }[]> {
  const exifSource = await photo()
    .withExif({ IFD0: { Copyright: 'someone', ImageDescription: 'a test image' } })
    .jpeg()
    .toBuffer();
  const base = await photo().jpeg().toBuffer();
  const cmyk = await photo().toColourspace('cmyk').jpeg().toBuffer();
  const rgbPng = await photo().png().toBuffer();
  const grey = () => photo().toColourspace('b-w');
  const made: [string, Sharp][] = [
    ['jpeg 4:2:0', photo().jpeg()],
    ['jpeg 4:4:4', photo().jpeg({ chromaSubsampling: '4:4:4' })],
    ['jpeg quality 100', photo().jpeg({ quality: 100 })],
    ['jpeg quality 1', photo().jpeg({ quality: 1 })],
    ['jpeg quantisation table 3', photo().jpeg({ quantisationTable: 3 })],
    ['jpeg optimised coding', photo().jpeg({ optimiseCoding: true })],
    ['jpeg progressive', photo().jpeg({ progressive: true })],
    ['jpeg mozjpeg', photo().jpeg({ mozjpeg: true })],
    ['jpeg progressive, optimised scans', photo().jpeg({ progressive: true, optimiseScans: true })],
    ['jpeg greyscale', grey().jpeg()],
    ['jpeg greyscale progressive', grey().jpeg({ progressive: true })],
    ['jpeg cmyk', photo().toColourspace('cmyk').jpeg()],
    ['jpeg cmyk progressive', photo().toColourspace('cmyk').jpeg({ progressive: true })],
    ['jpeg cmyk with its icc profile', photo().toColourspace('cmyk').keepIccProfile().jpeg()],
    ['jpeg with a p3 icc profile', photo().withIccProfile('p3').jpeg()],
    ['jpeg greyscale with an icc profile', grey().withIccProfile('p3').jpeg()],
    [
      'jpeg with exif',
      photo()
        .withExif({ IFD0: { Copyright: 'someone', Artist: 'me' } })
        .jpeg(),
    ],
    ['jpeg with kept exif', sharp(exifSource).keepExif().jpeg()],
    ['jpeg with exif and orientation 6', sharp(exifSource).keepExif().withMetadata({ orientation: 6 }).jpeg()],
    [
      'jpeg with xmp',
      photo()
        .withXmp(
          '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>',
        )
        .jpeg(),
    ],
    [
      'jpeg with everything',
      photo()
        .withIccProfile('p3')
        .withExif({ IFD0: { Copyright: 'x' } })
        .withMetadata({ orientation: 7, density: 300 })
        .jpeg(),
    ],
    ['jpeg 1×1', sharp({ create: { width: 1, height: 1, channels: 3, background: '#123456' } }).jpeg()],
    ['jpeg 1×300', sharp({ create: { width: 1, height: 300, channels: 3, background: '#123456' } }).jpeg()],
    ['jpeg 6000×1', sharp({ create: { width: 6000, height: 1, channels: 3, background: '#123456' } }).jpeg()],
    ['png rgb', photo().png()],
    ['png rgb, no compression', photo().png({ compressionLevel: 0 })],
    ['png rgba', photo().ensureAlpha(0.5).png()],
    ['png grey', grey().png()],
    ['png grey + alpha', grey().ensureAlpha(0.5).png()],
    ['png palette', photo().png({ palette: true })],
    ['png palette with transparency', photo().ensureAlpha(0.5).png({ palette: true })],
    ['png palette, 2 colours (1-bit)', photo().png({ palette: true, colours: 2 })],
    ['png palette, 4 colours (2-bit)', photo().png({ palette: true, colours: 4 })],
    ['png palette, 16 colours (4-bit)', photo().png({ palette: true, colours: 16 })],
    ['png 16-bit rgb', photo().toColourspace('rgb16').png()],
    ['png 16-bit rgba', photo().toColourspace('rgb16').ensureAlpha(0.5).png()],
    ['png 16-bit grey', photo().toColourspace('grey16').png()],
    ['png 16-bit grey + alpha', photo().toColourspace('grey16').ensureAlpha(0.5).png()],
    ['png interlaced rgb', photo().png({ progressive: true })],
    ['png interlaced palette', photo().png({ progressive: true, palette: true })],
    ['png interlaced 16-bit grey', photo().toColourspace('grey16').png({ progressive: true })],
    ['png with an icc profile', photo().withIccProfile('p3').png()],
    ['png grey with an icc profile', grey().withIccProfile('p3').png()],
    ['png with a density (and eXIf, iCCP)', photo().withMetadata({ density: 300 }).png()],
    ['png palette with metadata', photo().withMetadata().png({ palette: true })],
    ['png 640×480 (several IDATs)', photo(640, 480).png({ compressionLevel: 1 })],
    ['png 1×1', sharp({ create: { width: 1, height: 1, channels: 4, background: '#12345678' } }).png()],
  ];
  const images: { name: string; bytes: Buffer }[] = await Promise.all(
    made.map(async ([name, s]) => ({ name, bytes: await s.toBuffer() })),
  );
  for (let orientation = 1; orientation <= 8; orientation++) {
    images.push({
      name: `jpeg orientation ${orientation}`,
      bytes: await photo().withMetadata({ orientation }).jpeg().toBuffer(),
    });
    images.push({
      name: `jpeg progressive orientation ${orientation}`,
      bytes: await photo().withMetadata({ orientation }).jpeg({ progressive: true }).toBuffer(),
    });
    images.push({
      name: `png orientation ${orientation} (eXIf)`,
      bytes: await photo().withMetadata({ orientation }).png().toBuffer(),
    });
    for (const littleEndian of [true, false]) {
      const entries = [
        [0x010e, 2, 4, 0x00616263] as const,
        orientationEntry(orientation),
        [0x0131, 2, 4, 0x00787978] as const,
      ];
      images.push({
        name: `jpeg crafted ${littleEndian ? 'II' : 'MM'} exif, orientation ${orientation}`,
        bytes: withSegments(base, exifApp1(tiff(littleEndian, entries))),
      });
      images.push({
        name: `png crafted ${littleEndian ? 'II' : 'MM'} eXIf, orientation ${orientation}`,
        bytes: withChunks(rgbPng, pngChunk('eXIf', tiff(littleEndian, entries))),
      });
    }
  }
  const jfif = (minor: number) =>
    jpegSegment(0xe0, Buffer.from([0x4a, 0x46, 0x49, 0x46, 0, 1, minor, 1, 0, 72, 0, 72, 0, 0]));
  const adobe = (transform: number) =>
    jpegSegment(0xee, Buffer.from([0x41, 0x64, 0x6f, 0x62, 0x65, 0, 100, 0, 0, 0, 0, transform]));
  const crafted: [string, Buffer][] = [
    ['jpeg with JFIF 1.01', withSegments(base, jfif(1))],
    ['jpeg with JFIF 1.02 and exif', withSegments(base, jfif(2), exifApp1(tiff(true, [orientationEntry(5)])))],
    ['jpeg with a comment', withSegments(base, jpegSegment(0xfe, Buffer.from('made by a test')))],
    ['jpeg with an empty comment', withSegments(base, jpegSegment(0xfe, Buffer.alloc(0)))],
    [
      'jpeg with APP3…APP15',
      withSegments(
        base,
        ...[0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xef].map((m) =>
          jpegSegment(m, Buffer.from(`app ${m}`)),
        ),
      ),
    ],
    [
      'jpeg with Photoshop APP13',
      withSegments(base, jpegSegment(0xed, Buffer.from('Photoshop 3.0\x008BIM\x04\x04\0\0\0\0\0\0', 'latin1'))),
    ],
    ['jpeg with a restart interval', withSegments(base, jpegSegment(0xdd, Buffer.from([0, 4])))],
    ['jpeg with an Adobe marker, transform 1 (YCbCr)', withSegments(base, adobe(1))],
    ['jpeg with an Adobe marker, transform 0 (RGB)', withSegments(base, adobe(0))],
    ['jpeg with a short APP14 "Adobe"', withSegments(base, jpegSegment(0xee, Buffer.from('Adobe')))],
    [
      'jpeg with an APP1 that is neither exif nor xmp',
      withSegments(base, jpegSegment(0xe1, Buffer.from('something else'))),
    ],
    ['jpeg with a short APP1 "Exif"', withSegments(base, jpegSegment(0xe1, Buffer.from('Exif')))],
    ['jpeg with an APP2 that is not ICC', withSegments(base, jpegSegment(0xe2, Buffer.from('FPXR\0 something')))],
    [
      'jpeg with exif, IFD0 away from the header',
      withSegments(base, exifApp1(tiff(false, [[0x0131, 2, 4, 0x61626300], orientationEntry(8)], 40))),
    ],
    ['jpeg with exif, no orientation', withSegments(base, exifApp1(tiff(true, [[0x0131, 2, 4, 0x61626300]])))],
    ['jpeg with exif, empty IFD0', withSegments(base, exifApp1(tiff(true, [])))],
    [
      'jpeg with exif, orientation in IFD1 only',
      withSegments(
        base,
        exifApp1(
          Buffer.concat([
            modified(tiff(true, [[0x0100, SHORT, 1, 64]]), (t) => t.writeUInt32LE(26, 22)),
            Buffer.from([1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]),
          ]),
        ),
      ),
    ],
    ['jpeg cmyk, YCCK (Adobe transform 2)', modified(cmyk, (b) => (b[segmentOf(cmyk, 0xee).at + 4 + 11] = 2))],
    ['jpeg with SOF1 (extended sequential)', modified(base, (b) => (b[segmentOf(base, 0xc0).at + 1] = 0xc1))],
    ['png with tRNS (grey)', png(ihdr(20, 10, 8, 0), pngChunk('tRNS', Buffer.from([0, 7])), IDAT, IEND)],
    ['png with tRNS (rgb, 16-bit)', png(ihdr(20, 10, 16, 2), pngChunk('tRNS', Buffer.alloc(6, 1)), IDAT, IEND)],
    ['png with tRNS (grey, 1-bit)', png(ihdr(20, 10, 1, 0), pngChunk('tRNS', Buffer.from([0, 1])), IDAT, IEND)],
    ['png grey 2-bit', png(ihdr(20, 10, 2, 0), IDAT, IEND)],
    ['png grey 4-bit', png(ihdr(20, 10, 4, 0), IDAT, IEND)],
    [
      'png with sRGB, gAMA, cHRM, pHYs, tIME, bKGD, sBIT',
      withChunks(
        rgbPng,
        pngChunk('sRGB', Buffer.from([0])),
        pngChunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f])),
        pngChunk('cHRM', Buffer.alloc(32, 1)),
        pngChunk('sBIT', Buffer.from([8, 8, 8])),
        pngChunk('pHYs', Buffer.from([0, 0, 0x0b, 0x13, 0, 0, 0x0b, 0x13, 1])),
        pngChunk('tIME', Buffer.from([0x07, 0xe8, 1, 2, 3, 4, 5])),
        pngChunk('bKGD', Buffer.from([0, 1, 0, 2, 0, 3])),
      ),
    ],
    [
      'png with text chunks',
      withChunks(
        rgbPng,
        pngChunk('tEXt', Buffer.from('Title\0a test')),
        pngChunk('zTXt', Buffer.concat([Buffer.from('Comment\0\0'), deflateSync(Buffer.from('compressed'))])),
        pngChunk('iTXt', Buffer.from('XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta/>')),
      ),
    ],
    [
      'png with eXIf after IDAT',
      Buffer.concat([
        rgbPng.subarray(0, rgbPng.length - 12),
        pngChunk('eXIf', tiff(true, [orientationEntry(6)])),
        rgbPng.subarray(rgbPng.length - 12),
      ]),
    ],
    ['png with a private ancillary chunk', withChunks(rgbPng, pngChunk('prVt', Buffer.from('private')))],
    ['png rgb with a suggested palette', withChunks(rgbPng, pngChunk('PLTE', Buffer.alloc(30, 9)))],
    [
      'png palette with more entries than its bit depth',
      png(ihdr(20, 10, 1, 3), pngChunk('PLTE', Buffer.alloc(768, 3)), IDAT, IEND),
    ],
    [
      'png with bad ancillary and IHDR CRCs',
      modified(withChunks(rgbPng, pngChunk('tEXt', Buffer.from('Title\0x'))), (b) => {
        b[29] = (b[29]! + 1) & 0xff;
        b[33 + 8 + 7] = (b[33 + 8 + 7]! + 1) & 0xff;
      }),
    ],
    ['png with only its IDAT chunk header', png(ihdr(20, 10, 8, 2), IDAT.subarray(0, 8))],
    [
      'png with an IDAT claiming 2³¹ − 1 bytes',
      png(
        ihdr(20, 10, 8, 2),
        modified(IDAT.subarray(0, 8), (b) => b.writeUInt32BE(0x7fffffff, 0)),
      ),
    ],
    ['png 10,000,000 wide (header only)', png(ihdr(10_000_000, 1, 8, 2), IDAT, IEND)],
    ['jpeg 65500 wide (header only)', modified(base, (b) => b.writeUInt16BE(65500, segmentOf(base, 0xc0).at + 7))],
  ];
  for (const [name, bytes] of crafted) images.push({ name, bytes });
  return images;
}

describe('readImageHeader', () => {
  let images: { name: string; bytes: Buffer }[];
  beforeAll(async () => {
    images = await commonImages();
  });

  it('should answer for every common JPEG and PNG, with exactly the header sharp reads', async () => {
    for (const { name, bytes } of images) {
      expect(readImageHeader(bytes), name).toBeDefined();
      expect(await expectAgreement(name, bytes), name).toBe(true);
      expect(await expectAgreement(name, bytes, LIMITS), name).toBe(true);
    }
  });

  it('should read the orientation: 5–8 swap width and height', async () => {
    for (let orientation = 1; orientation <= 8; orientation++) {
      const jpeg = await photo(64, 40).withMetadata({ orientation }).jpeg().toBuffer();
      expect(readImageHeader(jpeg)).toStrictEqual({
        format: 'jpeg',
        width: 64,
        height: 40,
        colourSpace: 'srgb',
        depth: 'uchar',
        orientedWidth: orientation >= 5 ? 40 : 64,
        orientedHeight: orientation >= 5 ? 64 : 40,
      });
    }
  });

  it('should leave files in other formats to sharp', async () => {
    const rgb = photo();
    for (const bytes of [
      await rgb.clone().webp().toBuffer(),
      await rgb.clone().gif().toBuffer(),
      await rgb.clone().tiff().toBuffer(),
      await rgb.clone().avif({ effort: 0 }).toBuffer(),
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'),
      Buffer.from('not an image'),
    ]) {
      expect(readImageHeader(bytes)).toBeUndefined();
      await expectAgreement('other format', bytes, LIMITS);
    }
  });

  it('should refuse decompression bombs from its own reading, with the words sharp would give', async () => {
    const base = await photo().jpeg().toBuffer();
    const sof = segmentOf(base, 0xc0);
    const bombs = [
      modified(base, (b) => {
        b.writeUInt16BE(65000, sof.at + 5);
        b.writeUInt16BE(65000, sof.at + 7);
      }),
      png(ihdr(20_000, 20_000, 8, 2), IDAT, IEND),
      png(ihdr(10_000_000, 5, 8, 3), pngChunk('PLTE', Buffer.alloc(9)), IDAT, IEND),
    ];
    for (const bomb of bombs) {
      expect(readImageHeader(bomb)).toBeDefined();
      expect(await expectAgreement('bomb', bomb, LIMITS)).toBe(true);
      const refused = await outcome(() => inspectImage(bomb, FIELD, LIMITS));
      expect(refused).toMatchObject({
        refusal: {
          code: 'BAD_USER_INPUT',
          field: FIELD,
          message: expect.stringMatching(/pixels exceeds the limit of 40000000$/),
        },
      });
    }
  });

  it('should step aside for everything outside the subset it is sure of, and inspectImage should end as sharp does', async () => {
    const base = await photo().jpeg().toBuffer();
    const cmyk = await photo().toColourspace('cmyk').jpeg().toBuffer();
    const grey = await photo().toColourspace('b-w').jpeg().toBuffer();
    const sof = segmentOf(base, 0xc0);
    const sos = segmentOf(base, 0xda);
    const dht = segmentOf(base, 0xc4);
    const dqt = segmentOf(base, 0xdb);
    const before = (at: number, inserted: Buffer) => Buffer.concat([base.subarray(0, at), inserted, base.subarray(at)]);
    const exif = (body: Buffer) => withSegments(base, exifApp1(body));
    const greySof = segmentOf(grey, 0xc0);
    const twoComponents = Buffer.concat([
      grey.subarray(0, greySof.at + 2),
      Buffer.from([0, 14, 8, 0, 40, 0, 64, 2, 1, 0x11, 0, 2, 0x11, 0]),
      grey.subarray(greySof.at + 2 + greySof.length),
    ]);
    const rgbPng = await photo().png().toBuffer();
    const palettePng = await photo().png({ palette: true }).toBuffer();
    const plte = pngChunks(palettePng).find((c) => c.type === 'PLTE')!;
    const cases: [string, Buffer][] = [
      ['jpeg 12-bit', modified(base, (b) => (b[sof.at + 4] = 12))],
      ['jpeg lossless (SOF3)', modified(base, (b) => (b[sof.at + 1] = 0xc3))],
      ['jpeg arithmetic (SOF9)', modified(base, (b) => (b[sof.at + 1] = 0xc9))],
      ['jpeg arithmetic progressive (SOF10)', modified(base, (b) => (b[sof.at + 1] = 0xca))],
      ['jpeg differential (SOF5)', modified(base, (b) => (b[sof.at + 1] = 0xc5))],
      ['jpeg arithmetic conditioning (DAC)', before(2, jpegSegment(0xcc, Buffer.from([0, 0x10])))],
      ['jpeg with two SOFs', before(sos.at, base.subarray(sof.at, sof.at + 2 + sof.length))],
      ['jpeg SOS before SOF', Buffer.concat([base.subarray(0, 2), base.subarray(sos.at)])],
      ['jpeg EOI before SOS', before(sos.at, Buffer.from([0xff, 0xd9]))],
      ['jpeg with a second SOI', before(2, Buffer.from([0xff, 0xd8]))],
      ['jpeg RST0 in the header', before(2, Buffer.from([0xff, 0xd0]))],
      ['jpeg TEM in the header', before(2, Buffer.from([0xff, 0x01]))],
      ['jpeg DNL in the header', before(2, jpegSegment(0xdc, Buffer.from([0, 40])))],
      ['jpeg JPG marker', before(2, jpegSegment(0xc8, Buffer.from([0])))],
      ['jpeg reserved marker', before(2, jpegSegment(0x02, Buffer.from([0])))],
      ['jpeg garbage between markers', before(sof.at, Buffer.from([1, 2, 3]))],
      ['jpeg fill bytes', before(sof.at, Buffer.from([0xff, 0xff]))],
      ['jpeg stuffed zero between markers', before(sof.at, Buffer.from([0xff, 0x00]))],
      [
        'jpeg JFIF 2.0',
        withSegments(base, jpegSegment(0xe0, Buffer.from([0x4a, 0x46, 0x49, 0x46, 0, 2, 0, 1, 0, 72, 0, 72, 0, 0]))),
      ],
      [
        'jpeg 3 components, Adobe transform 2',
        withSegments(base, jpegSegment(0xee, Buffer.from([0x41, 0x64, 0x6f, 0x62, 0x65, 0, 100, 0, 0, 0, 0, 2]))),
      ],
      ['jpeg cmyk, Adobe transform 1', modified(cmyk, (b) => (b[segmentOf(cmyk, 0xee).at + 4 + 11] = 1))],
      ['jpeg 2 components', twoComponents],
      [
        'jpeg MPF (UltraHDR candidate)',
        withSegments(base, jpegSegment(0xe2, Buffer.from('MPF\0II*\0\x08\0\0\0', 'latin1'))),
      ],
      [
        'jpeg two exif blocks',
        withSegments(base, exifApp1(tiff(true, [orientationEntry(6)])), exifApp1(tiff(true, [orientationEntry(3)]))),
      ],
      [
        'jpeg "Exif" without its two zeros',
        withSegments(
          base,
          jpegSegment(0xe1, Buffer.concat([Buffer.from('Exif\x01\x02', 'latin1'), tiff(true, [orientationEntry(6)])])),
        ),
      ],
      [
        'jpeg exif, unknown byte order',
        exif(modified(tiff(true, [orientationEntry(6)]), (t) => t.write('XX', 0, 'latin1'))),
      ],
      ['jpeg exif, no 42', exif(modified(tiff(true, [orientationEntry(6)]), (t) => (t[2] = 43)))],
      [
        'jpeg exif, IFD0 past the end',
        exif(modified(tiff(true, [orientationEntry(6)]), (t) => t.writeUInt32LE(1000, 4))),
      ],
      ['jpeg exif, IFD0 cut short', exif(tiff(true, [orientationEntry(6), orientationEntry(6)]).subarray(0, 30))],
      ['jpeg exif, too short', exif(Buffer.from('II*\0'))],
      ['jpeg exif, orientation 0', exif(tiff(true, [orientationEntry(0)]))],
      ['jpeg exif, orientation 9', exif(tiff(false, [orientationEntry(9)]))],
      ['jpeg exif, orientation as LONG', exif(tiff(true, [[0x0112, LONG, 1, 6]]))],
      ['jpeg exif, orientation with 2 values', exif(tiff(true, [[0x0112, SHORT, 2, 6]]))],
      ['jpeg exif, orientation twice', exif(tiff(true, [orientationEntry(6), orientationEntry(3)]))],
      ['jpeg height 0', modified(base, (b) => b.writeUInt16BE(0, sof.at + 5))],
      ['jpeg width 0', modified(base, (b) => b.writeUInt16BE(0, sof.at + 7))],
      ['jpeg width 65501', modified(base, (b) => b.writeUInt16BE(65501, sof.at + 7))],
      ['jpeg sampling factor 0', modified(base, (b) => (b[sof.at + 11] = 0x01))],
      ['jpeg sampling factor 5', modified(base, (b) => (b[sof.at + 11] = 0x51))],
      ['jpeg quantisation table 4 in SOF', modified(base, (b) => (b[sof.at + 12] = 4))],
      ['jpeg repeated component id', modified(base, (b) => (b[sof.at + 13] = b[sof.at + 10]!))],
      ['jpeg SOF length wrong', modified(base, (b) => b.writeUInt16BE(sof.length + 1, sof.at + 2))],
      [
        'jpeg scan selectors out of order',
        modified(base, (b) => ([b[sos.at + 5], b[sos.at + 7]] = [b[sos.at + 7]!, b[sos.at + 5]!])),
      ],
      ['jpeg scan selector unknown', modified(base, (b) => (b[sos.at + 5] = 9))],
      ['jpeg scan of 0 components', modified(base, (b) => (b[sos.at + 4] = 0))],
      ['jpeg DHT table 4', modified(base, (b) => (b[dht.at + 4] = 4))],
      ['jpeg DHT table 0x14', modified(base, (b) => (b[dht.at + 4] = 0x14))],
      ['jpeg DHT with too many codes', modified(base, (b) => (b[dht.at + 5] = 200))],
      [
        'jpeg DHT with 300 codes (room for them all)',
        before(
          sof.at,
          jpegSegment(
            0xc4,
            Buffer.concat([
              Buffer.from([0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 200]),
              Buffer.alloc(300, 1),
            ]),
          ),
        ),
      ],
      ['jpeg DQT table 4', modified(base, (b) => (b[dqt.at + 4] = 4))],
      ['jpeg DQT 16-bit (length no longer matches)', modified(base, (b) => (b[dqt.at + 4] = 0x10))],
      ['jpeg DRI of length 5', before(2, jpegSegment(0xdd, Buffer.from([0, 4, 0])))],
      ['jpeg APP segment of length 0', before(2, Buffer.from([0xff, 0xe5, 0, 0]))],
      ['jpeg APP segment of length 1', before(2, Buffer.from([0xff, 0xe5, 0, 1]))],
      ['jpeg tables only', Buffer.concat([base.subarray(0, sof.at), Buffer.from([0xff, 0xd9])])],
      ['jpeg SOI only', base.subarray(0, 2)],
      [
        'png two eXIf chunks',
        withChunks(
          rgbPng,
          pngChunk('eXIf', tiff(true, [orientationEntry(6)])),
          pngChunk('eXIf', tiff(true, [orientationEntry(1)])),
        ),
      ],
      [
        'png eXIf without a TIFF header',
        withChunks(
          rgbPng,
          pngChunk('eXIf', Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff(true, [orientationEntry(6)])])),
        ),
      ],
      ['png eXIf of 3 bytes', withChunks(rgbPng, pngChunk('eXIf', Buffer.from('II*')))],
      ['png eXIf, orientation 9', withChunks(rgbPng, pngChunk('eXIf', tiff(false, [orientationEntry(9)])))],
      [
        'png eXIf, IFD0 past the end',
        withChunks(
          rgbPng,
          pngChunk(
            'eXIf',
            modified(tiff(true, [orientationEntry(6)]), (t) => t.writeUInt32LE(500, 4)),
          ),
        ),
      ],
      ['png APNG (acTL)', withChunks(rgbPng, pngChunk('acTL', Buffer.from([0, 0, 0, 2, 0, 0, 0, 0])))],
      [
        'png "Raw profile type exif" text',
        withChunks(
          rgbPng,
          pngChunk(
            'tEXt',
            Buffer.from('Raw profile type exif\0\nexif\n      24\n49492a00080000000100120103000100000006000000\n'),
          ),
        ),
      ],
      ['png unknown critical chunk', withChunks(rgbPng, pngChunk('CRIT', Buffer.alloc(3)))],
      ['png chunk name with a digit', withChunks(rgbPng, pngChunk('ab1d', Buffer.alloc(3)))],
      ['png chunk name with a lower-case reserved letter', withChunks(rgbPng, pngChunk('abcd', Buffer.alloc(3)))],
      [
        'png chunk length of 2³¹',
        withChunks(
          rgbPng,
          modified(pngChunk('prVt', Buffer.alloc(0)), (c) => c.writeUInt32BE(0x80000000, 0)),
        ),
      ],
      [
        'png IDAT length of 2³¹',
        png(
          ihdr(20, 10, 8, 2),
          modified(IDAT, (c) => c.writeUInt32BE(0x80000000, 0)),
        ),
      ],
      [
        'png ancillary chunk before IHDR',
        Buffer.concat([PNG_SIGNATURE, pngChunk('prVt', Buffer.alloc(2)), rgbPng.subarray(8)]),
      ],
      [
        'png tEXt before IHDR',
        Buffer.concat([PNG_SIGNATURE, pngChunk('tEXt', Buffer.from('a\0b')), rgbPng.subarray(8)]),
      ],
      [
        'png IHDR of 14 bytes',
        png(pngChunk('IHDR', Buffer.concat([ihdr(20, 10, 8, 2).subarray(8, 21), Buffer.alloc(1)])), IDAT, IEND),
      ],
      ['png two IHDRs', png(ihdr(20, 10, 8, 2), ihdr(30, 10, 8, 2), IDAT, IEND)],
      ['png IEND before IDAT', png(ihdr(20, 10, 8, 2), IEND, IDAT)],
      ['png no IDAT', png(ihdr(20, 10, 8, 2), IEND)],
      ['png rgb 4-bit', png(ihdr(20, 10, 4, 2), IDAT, IEND)],
      ['png palette 16-bit', png(ihdr(20, 10, 16, 3), pngChunk('PLTE', Buffer.alloc(3)), IDAT, IEND)],
      ['png colour type 1', png(ihdr(20, 10, 8, 1), IDAT, IEND)],
      ['png colour type 7', png(ihdr(20, 10, 8, 7), IDAT, IEND)],
      ['png bit depth 3', png(ihdr(20, 10, 3, 0), IDAT, IEND)],
      ['png interlace method 2', png(ihdr(20, 10, 8, 2, 2), IDAT, IEND)],
      ['png compression method 1', png(ihdr(20, 10, 8, 2, 0, 1), IDAT, IEND)],
      ['png filter method 64', png(ihdr(20, 10, 8, 2, 0, 0, 64), IDAT, IEND)],
      ['png width 0', png(ihdr(0, 10, 8, 2), IDAT, IEND)],
      ['png height 0', png(ihdr(20, 0, 8, 2), IDAT, IEND)],
      ['png width 10,000,001', png(ihdr(10_000_001, 1, 8, 2), IDAT, IEND)],
      ['png width 2³¹ − 1', png(ihdr(0x7fffffff, 1, 8, 2), IDAT, IEND)],
      ['png width 2³¹', png(ihdr(0x80000000, 1, 8, 2), IDAT, IEND)],
      ['png palette without PLTE', png(ihdr(20, 10, 8, 3), IDAT, IEND)],
      ['png palette, empty PLTE', png(ihdr(20, 10, 8, 3), pngChunk('PLTE', Buffer.alloc(0)), IDAT, IEND)],
      ['png palette, PLTE of 4 bytes', png(ihdr(20, 10, 8, 3), pngChunk('PLTE', Buffer.alloc(4)), IDAT, IEND)],
      ['png palette, PLTE of 771 bytes', png(ihdr(20, 10, 8, 3), pngChunk('PLTE', Buffer.alloc(771)), IDAT, IEND)],
      [
        'png palette, two PLTEs',
        Buffer.concat([
          palettePng.subarray(0, plte.at + 12 + plte.length),
          palettePng.subarray(plte.at, plte.at + 12 + plte.length),
          palettePng.subarray(plte.at + 12 + plte.length),
        ]),
      ],
      ['png signature only', PNG_SIGNATURE],
    ];
    for (const [name, bytes] of cases) {
      expect(readImageHeader(bytes), name).toBeUndefined();
      await expectAgreement(name, bytes, LIMITS);
    }
  });

  it('should agree with sharp on every truncation of a header', async () => {
    const jpeg = await photo().jpeg().toBuffer();
    const exifJpeg = await photo()
      .withIccProfile('p3')
      .withExif({ IFD0: { Copyright: 'x' } })
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    const palette = await photo().ensureAlpha(0.5).png({ palette: true }).toBuffer();
    const grey16 = await photo().toColourspace('grey16').withIccProfile('p3').png().toBuffer();
    const files: [string, Buffer, number, number][] = [
      ['jpeg', jpeg, jpegHeaderEnd(jpeg), 1],
      ['jpeg with icc and exif', exifJpeg, jpegHeaderEnd(exifJpeg), 5],
      ['png palette + tRNS', palette, pngHeaderEnd(palette), 1],
      ['png 16-bit grey with icc', grey16, pngHeaderEnd(grey16), 7],
    ];
    for (const [name, bytes, headerEnd, step] of files) {
      for (let cut = 1; cut < headerEnd + 8; cut += cut < headerEnd - 16 ? step : 1) {
        const answered = await expectAgreement(`${name} cut at ${cut}`, bytes.subarray(0, cut), LIMITS);
        // Whatever follows the header does not matter: once it is whole, the fast reader answers.
        expect(answered, `${name} cut at ${cut} (header ends at ${headerEnd})`).toBe(cut >= headerEnd);
      }
    }
  });

  it('should never throw on mutated headers and, whenever it answers, answer as sharp does', async () => {
    const seeds = await Promise.all([
      photo().jpeg().toBuffer(),
      photo().jpeg({ progressive: true }).toBuffer(),
      photo().toColourspace('b-w').jpeg().toBuffer(),
      photo().toColourspace('cmyk').jpeg().toBuffer(),
      photo()
        .withExif({ IFD0: { Copyright: 'x' } })
        .withMetadata({ orientation: 6 })
        .jpeg()
        .toBuffer(),
      photo().png().toBuffer(),
      photo().ensureAlpha(0.5).png({ palette: true }).toBuffer(),
      photo().toColourspace('rgb16').png({ progressive: true }).toBuffer(),
      photo().toColourspace('b-w').ensureAlpha(0.5).png().toBuffer(),
    ]);
    const rng = createRng(20_260_412);
    let answered = 0;
    const iterations = 1500;
    for (let n = 0; n < iterations; n++) {
      const seed = rng.pick(seeds);
      const headerEnd = seed[0] === 0xff ? jpegHeaderEnd(seed) : pngHeaderEnd(seed);
      const bytes = mutate(seed, headerEnd, rng);
      if (await expectAgreement(`mutation ${n}`, bytes)) answered++;
    }
    // Both outcomes must be exercised for the loop to prove anything.
    expect(answered).toBeGreaterThan(iterations * 0.1);
    expect(answered).toBeLessThan(iterations * 0.9);
  });
});

const INTERESTING = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0c, 0x10, 0x11, 0x12, 0x14, 0x20, 0x22, 0x41, 0x49, 0x4d,
  0x7f, 0x80, 0xc0, 0xc1, 0xc2, 0xc4, 0xd8, 0xd9, 0xda, 0xdb, 0xdd, 0xe0, 0xe1, 0xe2, 0xee, 0xfe, 0xff,
];

/** One to four random edits inside the header (a byte set, flipped, inserted or removed), or a truncation. */
function mutate(seed: Buffer, headerEnd: number, rng: Rng): Buffer {
  let bytes = Buffer.from(seed);
  const edits = rng.int(1, 4);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(0, Math.min(headerEnd + 8, bytes.length - 1));
    const kind = rng.int(0, 9);
    if (kind <= 3) bytes[at] = rng.pick(INTERESTING);
    else if (kind <= 5) bytes[at] = bytes[at]! ^ (1 << rng.int(0, 7));
    else if (kind === 6) bytes[at] = rng.int(0, 255);
    else if (kind === 7) bytes = Buffer.concat([bytes.subarray(0, at), rng.bytes(rng.int(1, 3)), bytes.subarray(at)]);
    else if (kind === 8) bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + rng.int(1, 3))]);
    else bytes = bytes.subarray(0, Math.max(1, at));
  }
  return bytes;
}
