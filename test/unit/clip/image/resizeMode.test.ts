import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { preprocessImage } from '../../../../src/clip/image/preprocess.js';
import { openClipGeometry, roundHalfEven } from '../../../../src/clip/image/resizeMode.js';
import { parseOpenClipPreprocessCfg } from '../../../../src/clip/layouts/immich.js';

const LIMITS = { maxBytes: 5_000_000, maxPixels: 40_000_000 };
const config = (resizeMode: string, fill = 0) =>
  parseOpenClipPreprocessCfg({
    size: 224,
    resize_mode: resizeMode,
    fill_color: fill,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
  });

describe('open_clip resize modes', () => {
  it("should round as Python's round does: half to even", () => {
    expect([0.5, 1.5, 2.5, 3.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 4, 2, 3]);
  });

  it("shortest: resize the short edge, then centre-crop at torchvision's int(round((size - crop) / 2))", () => {
    // 227 - 224 = 3: torchvision rounds 1.5 to 2, where Hugging Face's (227 - 224) // 2 gives 1.
    expect(openClipGeometry({ width: 227, height: 224 }, config('shortest'), 'shortest')).toEqual({
      resizedWidth: 227,
      resizedHeight: 224,
      window: { left: 2, top: 0, width: 224, height: 224 },
      intoX: 0,
      intoY: 0,
    });
    const g = openClipGeometry({ width: 640, height: 480 }, config('shortest'), 'shortest');
    expect([g.resizedWidth, g.resizedHeight, g.window.left]).toEqual([298, 224, 37]);
  });

  it('squash: both edges to the size, ignoring the aspect ratio', () => {
    expect(openClipGeometry({ width: 100, height: 30 }, config('squash'), 'squash')).toMatchObject({
      resizedWidth: 224,
      resizedHeight: 224,
      window: { left: 0, top: 0, width: 224, height: 224 },
    });
  });

  it('longest: fit the long edge, then centre the image on a fill-colour square', () => {
    expect(openClipGeometry({ width: 448, height: 224 }, config('longest'), 'longest')).toEqual({
      resizedWidth: 224,
      resizedHeight: 112,
      window: { left: 0, top: 0, width: 224, height: 112 },
      intoX: 0,
      intoY: 56,
    });
    // 300×101 → 224×round(75.41…) = 224×75; padded by (224 - 75) // 2 = 74 above.
    expect(openClipGeometry({ width: 300, height: 101 }, config('longest'), 'longest')).toMatchObject({
      resizedHeight: 75,
      intoY: 74,
    });
  });

  it('should fill the padding with fill_color (before normalising) and keep the picture inside', async () => {
    const width = 200;
    const height = 100;
    const pixels = Buffer.alloc(width * height * 3, 0); // black picture
    const png = await sharp(pixels, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer();
    const out = await preprocessImage(png, config('longest', 255), LIMITS);
    const plane = 224 * 224;
    // Row 0 is padding (white: (1 - 0.5) / 0.5 = 1), the middle row is the black picture ((0 - 0.5) / 0.5 = -1).
    for (let c = 0; c < 3; c++) {
      expect(out[c * plane + 5]).toBeCloseTo(1, 6);
      expect(out[c * plane + 112 * 224 + 100]).toBeCloseTo(-1, 6);
    }
    const squashed = await preprocessImage(png, config('squash'), LIMITS);
    expect(squashed[5]).toBeCloseTo(-1, 6);
  });
});
