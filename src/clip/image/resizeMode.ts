/**
 * @file Where an image goes on its way into the crop, for each of open_clip's `resize_mode`s (the immich layout's
 * `preprocess_cfg.json`), computed exactly as open_clip's eval transforms (`transform.py`, `image_transform`) do on a PIL image:
 * - `shortest`: torchvision `Resize(size)` (short edge → size, long edge `int(size · long / short)`), then
 *   `CenterCrop(size)` at `int(round((resized - size) / 2))`: Python's round, half to even, which differs from
 *   Hugging Face's `(resized - size) // 2` when the difference is 3 mod 4.
 * - `squash`: `Resize((size, size))`: both edges to the size, aspect ignored, no crop.
 * - `longest`: `ResizeKeepRatio(size, longest=1)` (each edge `round(edge / max(h / size, w / size))`, half to even),
 *   then `CenterCropOrPad(size, fill=fill_color)`: padded left/top by `(size - edge) // 2`, the fill colour around.
 * The resampling itself stays the exact port of PIL (pilResize.ts), as torchvision resizes PIL images with PIL.
 */
import type { PreprocessorConfig, ResizeMode } from '../types.js';
import type { ResizeWindow } from './pilResize.js';

/** Resized size, the window of it that lands in the crop, and where that window's first pixel goes (> 0 when padding). */
export interface Geometry {
  resizedWidth: number;
  resizedHeight: number;
  window: ResizeWindow;
  intoX: number;
  intoY: number;
}

/** Python 3's `round()` for the non-negative values met here: to nearest, ties to even. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** torchvision `center_crop` of `size` from `length` (crop ≤ length): offset `int(round((length - size) / 2))`. */
function centreCrop(length: number, size: number): { start: number; count: number; into: number } {
  if (length <= size) {
    // Smaller than the crop: CenterCropOrPad pads (left/top gets the floor half); torchvision CenterCrop pads the same way.
    return { start: 0, count: length, into: Math.floor((size - length) / 2) };
  }
  return { start: roundHalfEven((length - size) / 2), count: size, into: 0 };
}

/** The geometry of one image under an open_clip resize mode, for a square (or rectangular) crop of the config's size. */
export function openClipGeometry(
  image: { width: number; height: number },
  config: PreprocessorConfig,
  mode: ResizeMode,
): Geometry {
  const cropW = config.cropWidth;
  const cropH = config.cropHeight;
  let resizedWidth: number;
  let resizedHeight: number;
  switch (mode) {
    case 'squash':
      resizedWidth = cropW;
      resizedHeight = cropH;
      break;
    case 'longest': {
      const ratio = Math.max(image.height / cropH, image.width / cropW);
      resizedWidth = Math.max(1, roundHalfEven(image.width / ratio));
      resizedHeight = Math.max(1, roundHalfEven(image.height / ratio));
      break;
    }
    case 'shortest': {
      if (cropW !== cropH) {
        // open_clip's non-square case (ResizeKeepRatio with longest=0): each edge round(edge / min ratio).
        const ratio = Math.min(image.height / cropH, image.width / cropW);
        resizedWidth = roundHalfEven(image.width / ratio);
        resizedHeight = roundHalfEven(image.height / ratio);
      } else if (image.width <= image.height) {
        resizedWidth = cropW;
        resizedHeight = Math.trunc((cropW * image.height) / image.width);
      } else {
        resizedWidth = Math.trunc((cropH * image.width) / image.height);
        resizedHeight = cropH;
      }
      break;
    }
  }
  const cols = centreCrop(resizedWidth, cropW);
  const rows = centreCrop(resizedHeight, cropH);
  return {
    resizedWidth,
    resizedHeight,
    window: { left: cols.start, top: rows.start, width: cols.count, height: rows.count },
    intoX: cols.into,
    intoY: rows.into,
  };
}
