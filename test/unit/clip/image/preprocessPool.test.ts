import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../../../src/errors.js';
import { preprocessImage } from '../../../../src/clip/image/preprocess.js';
import { PreprocessPool } from '../../../../src/clip/image/preprocessPool.js';
import type { ImageLimits } from '../../../../src/clip/types.js';
import { OPENAI_CLIP_PREPROCESSOR } from '../../../fixtures/clipConfigs.js';

const LIMITS: ImageLimits = { maxBytes: 50_000_000, maxPixels: 40_000_000 };

function noiseJpeg(width: number, height: number, sigma = 40): Promise<Buffer> {
  return sharp({
    create: { width, height, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma } },
  })
    .jpeg({ quality: 90 })
    .toBuffer();
}

async function errorOf(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('PreprocessPool', () => {
  const pool = new PreprocessPool({ size: 2 });
  afterAll(() => pool.close());

  it('should give the same floats as preprocessing on the calling thread, bit for bit', async () => {
    const images = await Promise.all([noiseJpeg(640, 480), noiseJpeg(300, 500, 20), noiseJpeg(1600, 1200, 10)]);
    for (const image of images) {
      const [inThread, inWorker] = await Promise.all([
        preprocessImage(image, OPENAI_CLIP_PREPROCESSOR, LIMITS),
        pool.preprocess(image, OPENAI_CLIP_PREPROCESSOR, LIMITS),
      ]);
      expect(inWorker).toBeInstanceOf(Float32Array);
      expect(
        Buffer.from(inWorker.buffer, inWorker.byteOffset, inWorker.byteLength).equals(
          Buffer.from(inThread.buffer, inThread.byteOffset, inThread.byteLength),
        ),
      ).toBe(true);
    }
  });

  it('should copy the bytes unless told to take them, and detach them when it takes them', async () => {
    const image = await noiseJpeg(320, 240);
    const kept = new Uint8Array(image);
    await pool.preprocess(kept, OPENAI_CLIP_PREPROCESSOR, LIMITS);
    expect(kept.byteLength).toBe(image.length);
    // A Buffer that is a window of a larger one (as Node's pooled and base64-decoded Buffers are).
    const padded = Buffer.concat([Buffer.alloc(100, 7), image, Buffer.alloc(50, 9)]);
    const windowed = padded.subarray(100, 100 + image.length);
    const fromWindow = await pool.preprocess(windowed, OPENAI_CLIP_PREPROCESSOR, LIMITS);
    expect(Array.from(fromWindow.subarray(0, 32))).toEqual(
      Array.from((await preprocessImage(image, OPENAI_CLIP_PREPROCESSOR, LIMITS)).subarray(0, 32)),
    );
    expect(windowed.equals(image)).toBe(true);
    const given = new Uint8Array(image);
    await pool.preprocess(given, OPENAI_CLIP_PREPROCESSOR, LIMITS, { transfer: true });
    expect(given.byteLength).toBe(0);
  });

  it('should fail only the bad image, with the code, message and field the calling thread gives', async () => {
    const good = await noiseJpeg(640, 480);
    const bad = Buffer.from('hello, world');
    const truncated = good.subarray(0, good.length >> 1);
    const results = await Promise.allSettled([
      pool.preprocess(good, OPENAI_CLIP_PREPROCESSOR, LIMITS, { field: 'images[0]' }),
      pool.preprocess(bad, OPENAI_CLIP_PREPROCESSOR, LIMITS, { field: 'images[1]' }),
      pool.preprocess(truncated, OPENAI_CLIP_PREPROCESSOR, LIMITS, { field: 'images[2]' }),
      pool.preprocess(good, OPENAI_CLIP_PREPROCESSOR, LIMITS, { field: 'images[3]' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    for (const [bytes, field] of [
      [bad, 'images[1]'],
      [truncated, 'images[2]'],
    ] as const) {
      const fromWorker = await errorOf(pool.preprocess(bytes, OPENAI_CLIP_PREPROCESSOR, LIMITS, { field }));
      const fromThread = await errorOf(preprocessImage(bytes, OPENAI_CLIP_PREPROCESSOR, LIMITS, { field }));
      expect({ code: fromWorker.code, message: fromWorker.message, field: fromWorker.field }).toEqual({
        code: fromThread.code,
        message: fromThread.message,
        field: fromThread.field,
      });
      expect(fromWorker.code).toBe(ErrorCode.BadUserInput);
      expect(fromWorker.field).toBe(field);
    }
  });

  it('should refuse an image over the pixel limit as the calling thread does', async () => {
    const image = await noiseJpeg(400, 300);
    const limits = { maxBytes: LIMITS.maxBytes, maxPixels: 100_000 };
    const fromWorker = await errorOf(pool.preprocess(image, OPENAI_CLIP_PREPROCESSOR, limits, { field: 'files[0]' }));
    const fromThread = await errorOf(preprocessImage(image, OPENAI_CLIP_PREPROCESSOR, limits, { field: 'files[0]' }));
    expect(fromWorker.message).toBe(fromThread.message);
    expect(fromWorker.field).toBe('files[0]');
  });

  it('should run many jobs at once with every answer going to its own caller', async () => {
    const images = await Promise.all(Array.from({ length: 8 }, (_, i) => noiseJpeg(200 + 16 * i, 240)));
    const expected = await Promise.all(images.map((image) => preprocessImage(image, OPENAI_CLIP_PREPROCESSOR, LIMITS)));
    const got = await Promise.all(images.map((image) => pool.preprocess(image, OPENAI_CLIP_PREPROCESSOR, LIMITS)));
    got.forEach((pixels, i) =>
      expect(Array.from(pixels.subarray(0, 64))).toEqual(Array.from(expected[i]!.subarray(0, 64))),
    );
  });

  it('should refuse work after close with SHUTTING_DOWN', async () => {
    const closing = new PreprocessPool({ size: 1 });
    const image = await noiseJpeg(64, 64);
    await closing.preprocess(image, OPENAI_CLIP_PREPROCESSOR, LIMITS);
    await closing.close();
    expect((await errorOf(closing.preprocess(image, OPENAI_CLIP_PREPROCESSOR, LIMITS))).code).toBe(
      ErrorCode.ShuttingDown,
    );
  });

  it('should refuse a size that is not a positive integer', () => {
    expect(() => new PreprocessPool({ size: 0 })).toThrow(TypeError);
  });
});
