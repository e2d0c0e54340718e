/**
 * Realistic benchmark images: photo-like JPEGs (smooth gradients, shapes, sensor noise) at 640×480 and
 * larger, every one distinct so that the server's image-embedding cache never helps (it is keyed by bytes).
 */
import sharp from 'sharp';
import { mulberry32 } from '../model/rng.js';

export interface BenchImage {
  jpeg: Buffer;
  dataUrl: string;
  width: number;
  height: number;
}

const SIZES: readonly [number, number][] = [
  [640, 480],
  [800, 600],
  [1024, 768],
  [1280, 960],
];

export async function makeImage(seed: number): Promise<BenchImage> {
  const random = mulberry32(seed + 1);
  const [width, height] = SIZES[seed % SIZES.length]!;
  const pixels = Buffer.alloc(width * height * 3);
  const base = [random() * 255, random() * 255, random() * 255];
  const slope = [random() - 0.5, random() - 0.5, random() - 0.5];
  const cx = random() * width;
  const cy = random() * height;
  const radius = (0.15 + random() * 0.3) * Math.min(width, height);
  const blob = [random() * 255, random() * 255, random() * 255];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = (x - cx) ** 2 + (y - cy) ** 2 < radius ** 2;
      for (let c = 0; c < 3; c++) {
        const smooth = base[c]! + slope[c]! * (x + y) * 0.25;
        const value = inside ? blob[c]! : smooth;
        pixels[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, value + (random() - 0.5) * 24));
      }
    }
  }
  const jpeg = await sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
  return { jpeg, dataUrl: `data:image/jpeg;base64,${jpeg.toString('base64')}`, width, height };
}

/** `count` distinct images, made a few at a time. */
export async function makeImages(count: number, firstSeed = 0): Promise<BenchImage[]> {
  const images: BenchImage[] = [];
  for (let i = 0; i < count; i += 8) {
    const chunk = await Promise.all(
      Array.from({ length: Math.min(8, count - i) }, (_, j) => makeImage(firstSeed + i + j)),
    );
    images.push(...chunk);
  }
  return images;
}

/** An endless supply of distinct images: every call returns images never returned before. */
export class ImagePool {
  #images: BenchImage[];
  #next = 0;
  constructor(images: BenchImage[]) {
    this.#images = images;
  }
  get remaining(): number {
    return this.#images.length - this.#next;
  }
  take(n: number): BenchImage[] {
    if (this.#next + n > this.#images.length)
      throw new Error(`image pool exhausted: wanted ${n}, ${this.remaining} left`);
    const out = this.#images.slice(this.#next, this.#next + n);
    this.#next += n;
    return out;
  }
}

export const CLASSES_10 = ['cat', 'dog', 'car', 'tree', 'house', 'person', 'bicycle', 'boat', 'bird', 'flower'];

/** `n` distinct class names for a 100-class list or the 1,000-prompt text test. */
export function manyClasses(n: number, prefix = 'object'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix} number ${i} of a kind`);
}
