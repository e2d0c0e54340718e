import { deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../../../src/errors.js';
import { decodeImageString, inspectImage, SUPPORTED_IMAGE_FORMATS } from '../../../../src/clip/image/imageInput.js';
import { preprocessImage } from '../../../../src/clip/image/preprocess.js';
import type { ImageLimits, PreprocessorConfig } from '../../../../src/clip/types.js';
import { OPENAI_CLIP_PREPROCESSOR } from '../../../fixtures/clipConfigs.js';
import { pngChunk } from '../../../utils/fuzzCases.js';

const LIMITS: ImageLimits = { maxBytes: 1_000_000, maxPixels: 40_000_000 };
const CLIP_CONFIG: PreprocessorConfig = OPENAI_CLIP_PREPROCESSOR;

/** Runs `fn` and returns the AppError it throws (failing the test if it throws anything else or nothing). */
async function refusal(fn: () => unknown): Promise<AppError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe(ErrorCode.BadUserInput);
    return error as AppError;
  }
  throw new Error('expected a refusal');
}

/** A PNG whose header claims `width`×`height` but whose data is a token: tiny however large it claims to be. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, RGB, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(64))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

async function samplePng(): Promise<Buffer> {
  return sharp({ create: { width: 8, height: 6, channels: 3, background: '#abcdef' } })
    .png()
    .toBuffer();
}

describe('decodeImageString', () => {
  it('should decode bare base64', async () => {
    const png = await samplePng();
    expect(decodeImageString(png.toString('base64'), 'image', LIMITS.maxBytes).equals(png)).toBe(true);
  });

  it('should decode a data URL', async () => {
    const png = await samplePng();
    expect(
      decodeImageString(`data:image/png;base64,${png.toString('base64')}`, 'image', LIMITS.maxBytes).equals(png),
    ).toBe(true);
    expect(
      decodeImageString(`  DATA:image/PNG;BASE64,${png.toString('base64')}\n`, 'image', LIMITS.maxBytes).equals(png),
    ).toBe(true);
    expect(
      decodeImageString(`data:image/png;name=a.png;base64,${png.toString('base64')}`, 'image', LIMITS.maxBytes).equals(
        png,
      ),
    ).toBe(true);
  });

  it('should decode URL-safe base64, unpadded base64 and base64 with line breaks', () => {
    const bytes = Buffer.from([0xfb, 0xff, 0xbf, 0xfe, 0x01]);
    expect(bytes.toString('base64')).toMatch(/[+/]/);
    expect(decodeImageString(bytes.toString('base64url'), 'image', 100).equals(bytes)).toBe(true);
    expect(decodeImageString(bytes.toString('base64').replace(/=+$/, ''), 'image', 100).equals(bytes)).toBe(true);
    const long = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
    const wrapped = long.toString('base64').replace(/.{76}/g, '$&\r\n');
    expect(decodeImageString(` ${wrapped} `, 'image', 1000).equals(long)).toBe(true);
  });

  it('should refuse strings that are not valid base64', async () => {
    for (const garbage of ['not base64!', 'abc$def', 'QUJD=RA==', 'QUJDR', 'Q===', 'QQ=', 'ab+c_d==', '....']) {
      const error = await refusal(() => decodeImageString(garbage, 'images[2]', 1000));
      expect(error.message).toBe('images[2]: not valid base64');
      expect(error.field).toBe('images[2]');
    }
  });

  it('should accept every clean encoding and refuse every string with one stray character (fast and strict paths agree)', () => {
    let seed = 5;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const stray = ['*', '.', '=', '!', '\u00e9', '\u0000', '%', '"'];
    for (let n = 0; n < 300; n++) {
      const bytes = Buffer.from(
        Array.from({ length: 1 + Math.floor(random() * 200) }, () => Math.floor(random() * 256)),
      );
      const standard = bytes.toString('base64');
      const urlSafe = bytes.toString('base64url');
      for (const encoded of [standard, standard.replace(/=+$/, ''), urlSafe, `data:image/png;base64,${standard}`]) {
        expect(decodeImageString(encoded, 'images[0]', 1000).equals(bytes), encoded).toBe(true);
      }
      const at = Math.floor(random() * (standard.length - 2));
      const broken = `${standard.slice(0, at)}${stray[n % stray.length]}${standard.slice(at)}`;
      expect(() => decodeImageString(broken, 'images[0]', 1000), broken).toThrow(/not valid base64|empty image/);
      if (/[+/]/.test(standard)) {
        const mixed = `${standard.replace(/[+/]/, (c) => c)}`.replace(/[A-Za-z0-9](?=[A-Za-z0-9]*$)/, '_');
        if (/[-_]/.test(mixed))
          expect(() => decodeImageString(mixed, 'images[0]', 1000), mixed).toThrow(/not valid base64/);
      }
    }
  });

  it('should refuse empty input', async () => {
    for (const empty of ['', '   \n', 'data:image/png;base64,']) {
      expect((await refusal(() => decodeImageString(empty, 'image', 1000))).message).toBe('image: empty image');
    }
  });

  it('should refuse a data URL that is not base64 or not an image', async () => {
    const notBase64 = await refusal(() => decodeImageString('data:image/png,rawbytes', 'images[0]', 1000));
    expect(notBase64.message).toMatch(/^images\[0\]: data URL is not base64-encoded/);
    const notImage = await refusal(() => decodeImageString('data:text/plain;base64,aGVsbG8=', 'images[1]', 1000));
    expect(notImage.message).toMatch(/^images\[1\]: data URL has type "text\/plain"; expected image\/\*/);
    const noType = await refusal(() => decodeImageString('data:;base64,aGVsbG8=', 'image', 1000));
    expect(noType.message).toMatch(/expected image\/\*/);
    const malformed = await refusal(() => decodeImageString('data:image/png;base64', 'image', 1000));
    expect(malformed.message).toMatch(/malformed data URL/);
  });

  it('should refuse input over the byte limit, huge strings from their length alone', async () => {
    const over = await refusal(() => decodeImageString(Buffer.alloc(101).toString('base64'), 'image', 100));
    expect(over.message).toMatch(/^image: image is .*over the limit of 100 bytes$/);
    // Exactly at the limit is fine.
    expect(decodeImageString(Buffer.alloc(100).toString('base64'), 'image', 100)).toHaveLength(100);

    const huge = 'A'.repeat(20_000_000);
    const error = await refusal(() => decodeImageString(huge, 'image', 1000));
    // "about": estimated from the encoded length, nothing was decoded.
    expect(error.message).toBe('image: image is about 15000000 bytes, over the limit of 1000 bytes');
  });
});

describe('inspectImage', () => {
  const makers: Record<(typeof SUPPORTED_IMAGE_FORMATS)[number], (s: Sharp) => Sharp> = {
    jpeg: (s) => s.jpeg(),
    png: (s) => s.png(),
    webp: (s) => s.webp(),
    gif: (s) => s.gif(),
    avif: (s) => s.avif({ effort: 0 }),
    tiff: (s) => s.tiff(),
  };

  it.each(SUPPORTED_IMAGE_FORMATS.map((format) => [format]))('should accept %s', async (format) => {
    const bytes = await makers[format](
      sharp({ create: { width: 40, height: 30, channels: 3, background: '#204080' } }),
    ).toBuffer();
    const info = await inspectImage(bytes, 'image', LIMITS);
    expect(info).toMatchObject({ format, width: 40, height: 30 });
    // And it decodes all the way.
    expect(await preprocessImage(bytes, CLIP_CONFIG, LIMITS)).toHaveLength(3 * 224 * 224);
  });

  it('should report the frames of an animated image', async () => {
    // Distinct frames: the GIF encoder merges identical ones.
    const frames = Buffer.concat([0, 120, 240].map((v) => Buffer.alloc(10 * 10 * 3, v)));
    const gif = await sharp(frames, { raw: { width: 10, height: 30, channels: 3, pageHeight: 10 } })
      .gif({ loop: 0 })
      .toBuffer();
    expect(await inspectImage(gif, 'image', LIMITS)).toMatchObject({ format: 'gif', width: 10, height: 10, pages: 3 });
  });

  it('should refuse a text file as not an image', async () => {
    const error = await refusal(() => inspectImage(Buffer.from('just some text\n'), 'images[4]', LIMITS));
    expect(error.message).toBe(
      'images[4]: not an image (unrecognised format); expected one of jpeg, png, webp, gif, avif, tiff',
    );
    expect(error.field).toBe('images[4]');
  });

  it('should refuse images in formats other than the supported ones', async () => {
    // SVG is the one unsupported format this sharp build can read from a buffer (libheif here has no HEVC).
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    );
    const error = await refusal(() => inspectImage(svg, 'image', LIMITS));
    expect(error.message).toBe('image: unsupported format svg; expected one of jpeg, png, webp, gif, avif, tiff');
    // The decoder refuses it too, even when called without inspecting first.
    expect((await refusal(() => preprocessImage(svg, CLIP_CONFIG, LIMITS))).message).toBe(error.message);
    // Formats sharp cannot read at all are "not an image".
    const ppm = Buffer.concat([Buffer.from('P6\n2 2\n255\n'), Buffer.alloc(12, 200)]);
    expect((await refusal(() => inspectImage(ppm, 'image', LIMITS))).message).toMatch(/^image: not an image/);
  });

  it('should refuse empty and oversized bytes', async () => {
    expect((await refusal(() => inspectImage(new Uint8Array(0), 'image', LIMITS))).message).toBe('image: empty image');
    const big = await refusal(() => inspectImage(new Uint8Array(2000), 'image', { maxBytes: 1000, maxPixels: 100 }));
    expect(big.message).toBe('image: image is 2000 bytes, over the limit of 1000 bytes');
  });

  it('should refuse a 20000×20000 image from its header, without decoding it', async () => {
    const bomb = pngHeaderOnly(20_000, 20_000);
    expect(bomb.length).toBeLessThan(200);
    const error = await refusal(() => inspectImage(bomb, 'image', LIMITS));
    expect(error.message).toBe('image: 20000×20000 = 400000000 pixels exceeds the limit of 40000000');
    const viaPreprocess = await refusal(() => preprocessImage(bomb, CLIP_CONFIG, LIMITS));
    // A header-only file could not be decoded at all: the refusal came from the header, before any decoding.
    expect(viaPreprocess.message).toBe(error.message);
    // The same header under the limit passes inspection: the refusal was the pixel count.
    expect(await inspectImage(pngHeaderOnly(2000, 2000), 'image', LIMITS)).toMatchObject({
      format: 'png',
      width: 2000,
      height: 2000,
    });
  });

  it('should refuse a truncated JPEG when decoding it', async () => {
    const jpeg = await sharp({
      create: {
        width: 120,
        height: 90,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 30 },
      },
    })
      .jpeg()
      .toBuffer();
    const truncated = jpeg.subarray(0, Math.floor(jpeg.length * 0.6));
    // The header is intact, so inspection passes; decoding must fail rather than return grey filler.
    await expect(inspectImage(truncated, 'images[1]', LIMITS)).resolves.toMatchObject({ format: 'jpeg' });
    const error = await refusal(() => preprocessImage(truncated, CLIP_CONFIG, LIMITS, { field: 'images[1]' }));
    expect(error.message).toMatch(/^images\[1\] could not be decoded: .*premature end/i);
    expect(error.field).toBe('images[1]');
  });

  it('should refuse a JPEG whose header promises more pixels than its data holds, on the full and the shrink-on-load paths', async () => {
    const pixels = Buffer.alloc(8 * 8 * 3, 0).map((_, i) => (i * 37) % 256);
    const tiny = await sharp(pixels, { raw: { width: 8, height: 8, channels: 3 } })
      .jpeg()
      .toBuffer();
    const frame = tiny.indexOf(Buffer.from([0xff, 0xc0]));
    // 300×300 decodes whole (then resized exactly); 6000×6000 is decoded at reduced scale by libjpeg itself.
    for (const size of [300, 6000]) {
      const patched = Buffer.from(tiny);
      patched.writeUInt16BE(size, frame + 5);
      patched.writeUInt16BE(size, frame + 7);
      await expect(inspectImage(patched, 'image', LIMITS)).resolves.toMatchObject({
        format: 'jpeg',
        width: size,
        height: size,
      });
      const error = await refusal(() => preprocessImage(patched, CLIP_CONFIG, LIMITS));
      expect(error.message).toMatch(/^image could not be decoded: .*premature end of data segment/i);
    }
  });

  it('should still decode a JPEG with a harmless warning (stray bytes before a marker) exactly as the clean file', async () => {
    const jpeg = await sharp({
      create: {
        width: 120,
        height: 90,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 30 },
      },
    })
      .jpeg()
      .toBuffer();
    const scan = jpeg.indexOf(Buffer.from([0xff, 0xda]));
    const stray = Buffer.concat([jpeg.subarray(0, scan), Buffer.from([0x12, 0x34, 0x56]), jpeg.subarray(scan)]);
    // libjpeg warns "3 extraneous bytes before marker 0xda", and PIL reads such files: the pixels are whole.
    await expect(sharp(stray, { failOn: 'warning' }).raw().toBuffer()).rejects.toThrow(/extraneous bytes/);
    expect(await preprocessImage(stray, CLIP_CONFIG, LIMITS)).toEqual(await preprocessImage(jpeg, CLIP_CONFIG, LIMITS));
  });

  it('should refuse a corrupted PNG when decoding it', async () => {
    const png = await sharp({
      create: {
        width: 120,
        height: 90,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 30 },
      },
    })
      .png()
      .toBuffer();
    const corrupted = Buffer.from(png);
    for (let i = 100; i < 160; i++) corrupted[i]! ^= 0x5a; // inside the first IDAT
    const error = await refusal(() => preprocessImage(corrupted, CLIP_CONFIG, LIMITS, { field: 'images[0]' }));
    expect(error.message).toMatch(/^images\[0\] could not be decoded: /);
    expect(error.message).not.toMatch(/\/(tmp|work|home|usr)\//);
  });
});
