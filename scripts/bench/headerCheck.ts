/**
 * Micro-benchmark of the image header check (`inspectImage`, run twice per image: at submission and in the
 * preprocessing worker): CPU per call of the sharp path (`metadata()`) versus the fast JPEG/PNG header reader,
 * for the benchmark's 640×480 JPEG and the same pixels as PNG, plus the same JPEG with EXIF (orientation 6) and an
 * ICC profile. Process CPU (process.cpuUsage, libvips' threads included) over `--calls` sequential calls, divided by
 * the calls; 200 ms of warm-up and a pause first. The fast rows are measured first: libvips' worker threads
 * keep burning CPU for a while after a burst of sharp calls (as V8's compiler threads do after a warm-up), which would
 * otherwise be charged to a loop that takes about a millisecond in all (0.015 ms per call instead of ~0.001 for a
 * 640×480 JPEG). Prints a table; asserts nothing.
 *
 * `npm run build && node dist/scripts/bench/headerCheck.js [--calls N]`
 */
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { inspectImage, inspectImageWithSharp, type ImageHeader } from '../../src/clip/image/imageInput.js';
import type { ImageLimits } from '../../src/clip/types.js';
import { makeImage } from './images.js';

const LIMITS: ImageLimits = { maxBytes: 20 * 1024 * 1024, maxPixels: 40_000_000 };

export interface HeaderCheckRow {
  image: string;
  bytes: number;
  /** CPU ms per call, sharp `metadata()` path. */
  sharpMs: number;
  /** CPU ms per call, `inspectImage` (the fast reader where it answers). */
  fastMs: number;
}

/** Lets libvips' threads (busy making the images) and the GC go quiet, so their CPU is not charged to a µs-scale loop. */
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 500));
}

type Inspect = (bytes: Uint8Array, field: string, limits: ImageLimits) => Promise<ImageHeader>;

async function cpuMsPerCall(inspect: Inspect, bytes: Uint8Array, calls: number): Promise<number> {
  // Warm up for a fixed time, so the JIT has compiled the fast path (on V8's background threads) before measuring.
  for (const until = performance.now() + 200; performance.now() < until;) await inspect(bytes, 'images[0]', LIMITS);
  await settle();
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) await inspect(bytes, 'images[0]', LIMITS);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / calls;
}

export async function benchHeaderCheck(calls = 1000): Promise<HeaderCheckRow[]> {
  const photo = await makeImage(0); // 640×480
  const raw = await sharp(photo.jpeg).raw().toBuffer({ resolveWithObject: true });
  const png = await sharp(raw.data, { raw: { width: raw.info.width, height: raw.info.height, channels: 3 } })
    .png()
    .toBuffer();
  const tagged = await sharp(photo.jpeg)
    .withIccProfile('p3')
    .withMetadata({ orientation: 6 })
    .jpeg({ quality: 85 })
    .toBuffer();
  const images: [string, Buffer][] = [
    ['640×480 JPEG', photo.jpeg],
    ['640×480 PNG', png],
    ['640×480 JPEG, EXIF + ICC', tagged],
  ];
  const fast: number[] = [];
  for (const [, bytes] of images) fast.push(await cpuMsPerCall(inspectImage, bytes, calls));
  const rows: HeaderCheckRow[] = [];
  for (const [i, [image, bytes]] of images.entries()) {
    rows.push({
      image,
      bytes: bytes.length,
      sharpMs: await cpuMsPerCall(inspectImageWithSharp, bytes, calls),
      fastMs: fast[i]!,
    });
  }
  return rows;
}

export function formatHeaderCheck(rows: readonly HeaderCheckRow[], calls: number): string {
  const lines = [
    `Header check, CPU ms per call (${calls} calls each):`,
    '',
    '| image | bytes | sharp metadata() | inspectImage (fast reader) | ratio |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.image} | ${row.bytes} | ${row.sharpMs.toFixed(4)} | ${row.fastMs.toFixed(4)} | ${(row.sharpMs / row.fastMs).toFixed(0)}× |`,
    );
  }
  return lines.join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const at = process.argv.indexOf('--calls');
  const calls = at >= 0 ? Number(process.argv[at + 1]) : 1000;
  const rows = await benchHeaderCheck(calls);
  process.stdout.write(
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}.\n\n${formatHeaderCheck(rows, calls)}\n`,
  );
}
