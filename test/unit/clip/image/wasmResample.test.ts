import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resizeWindow, type ResizeWindow, type RgbImage } from '../../../../src/clip/image/pilResize.js';
import { wasmResampleAvailable } from '../../../../src/clip/image/wasmResample.js';
import { assembleResampler, GENERATED_FILE, generatedSource } from '../../../../scripts/build-wasm.js';
import { mulberry32 } from '../../../../scripts/model/rng.js';

function randomImage(random: () => number, width: number, height: number, smooth: boolean): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) {
    // Noise, or a gradient with extremes (0 and 255 runs), which is where the clipping after each pass matters.
    data[i] = smooth
      ? Math.max(0, Math.min(255, Math.round(((i / 3) % width) * (255 / width) * 2 - 64 + random() * 8)))
      : Math.floor(random() * 256);
  }
  return { data, width, height };
}

function randomWindow(random: () => number, outWidth: number, outHeight: number): ResizeWindow {
  const width = 1 + Math.floor(random() * outWidth);
  const height = 1 + Math.floor(random() * outHeight);
  return {
    left: Math.floor(random() * (outWidth - width + 1)),
    top: Math.floor(random() * (outHeight - height + 1)),
    width,
    height,
  };
}

describe('the SIMD resampling kernels (resample.wat)', () => {
  it('should run here (Node ≥ 16 has WebAssembly SIMD)', () => {
    expect(wasmResampleAvailable()).toBe(true);
  });

  it('should give the same bytes as the JavaScript passes on random images, sizes, windows and filters', () => {
    const random = mulberry32(12);
    let cases = 0;
    for (let n = 0; n < 160; n++) {
      const width = 1 + Math.floor(random() * (n < 40 ? 24 : 700));
      const height = 1 + Math.floor(random() * (n < 40 ? 24 : 500));
      const image = randomImage(random, width, height, n % 3 === 0);
      // Downscales, upscales, one axis unchanged (no pass on it), and sizes 1.
      const pick = (size: number) => {
        const r = random();
        if (r < 0.15) return size;
        if (r < 0.55) return Math.max(1, Math.floor(size * (0.05 + random() * 0.9)));
        return 1 + Math.floor(size * (1 + random() * 3));
      };
      const outWidth = pick(width);
      const outHeight = pick(height);
      const window =
        n % 4 === 0
          ? { left: 0, top: 0, width: outWidth, height: outHeight }
          : randomWindow(random, outWidth, outHeight);
      for (const resample of [1, 2, 3, 4, 5]) {
        const reference = resizeWindow(image, outWidth, outHeight, window, resample, 'js');
        const simd = resizeWindow(image, outWidth, outHeight, window, resample);
        const label = `case ${n}: ${width}×${height} → ${outWidth}×${outHeight}, window ${JSON.stringify(window)}, filter ${resample}`;
        expect(simd.length, label).toBe(reference.length);
        if (!Buffer.from(simd).equals(Buffer.from(reference))) {
          const at = simd.findIndex((v, i) => v !== reference[i]);
          expect.fail(`${label}: first difference at byte ${at} (${simd[at]} instead of ${reference[at]})`);
        }
        cases++;
      }
    }
    expect(cases).toBe(800);
  });

  it('should give the same bytes for a 4000×3000-class downscale (large kernels, many taps)', () => {
    const random = mulberry32(7);
    const image = randomImage(random, 1800, 1350, false);
    const window = { left: 37, top: 0, width: 224, height: 224 };
    for (const resample of [1, 3]) {
      expect(
        Buffer.from(resizeWindow(image, 298, 224, window, resample)).equals(
          Buffer.from(resizeWindow(image, 298, 224, window, resample, 'js')),
        ),
      ).toBe(true);
    }
  });

  it('should be the committed assembly of resample.wat (npm run build-wasm)', async () => {
    const bytes = await assembleResampler();
    expect(fs.readFileSync(GENERATED_FILE, 'utf8')).toBe(generatedSource(bytes));
  });
});
