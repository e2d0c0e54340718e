/**
 * Peak RSS of the fp32 server over many jobs (issue 12: ≤ 1.5 GB after 10,000 jobs, and within 5 % of its value
 * after 1,000). Cheap jobs, so that 10,000 take minutes: one small, distinct image (noise, so every job's bytes
 * differ and the image cache never hits) and two classes each, at 16 clients, with the server's default caches.
 */
import fs from 'node:fs';
import sharp from 'sharp';
import { peakRssMiB, runLoad, type BenchServer } from './server.js';
import { mulberry32 } from '../model/rng.js';

/** A distinct 96 × 72 JPEG for every seed. */
async function smallImage(seed: number): Promise<{ dataUrl: string; jpeg: Buffer }> {
  const random = mulberry32(seed * 7919 + 17);
  const pixels = Buffer.alloc(96 * 72 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(random() * 256);
  const jpeg = await sharp(pixels, { raw: { width: 96, height: 72, channels: 3 } })
    .jpeg({ quality: 80 })
    .toBuffer();
  return { jpeg, dataUrl: `data:image/jpeg;base64,${jpeg.toString('base64')}` };
}

export interface MemoryCheckpoint {
  jobs: number;
  /** VmHWM so far, MiB. */
  peakMiB: number;
  /** VmRSS now, MiB. */
  rssMiB: number;
}

export interface MemoryRun {
  readyPeakMiB: number;
  checkpoints: MemoryCheckpoint[];
  imagesPerSecond: number;
}

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

/** Runs `total` cheap jobs in chunks, noting RSS and peak RSS at each of `at` (job counts). */
export async function memoryRun(
  server: BenchServer,
  total: number,
  at: readonly number[],
  log: (message: string) => void,
): Promise<MemoryRun> {
  const readyPeakMiB = peakRssMiB(server.pid);
  const checkpoints: MemoryCheckpoint[] = [];
  const marks = [...new Set([...at.filter((n) => n < total), total])].sort((a, b) => a - b);
  let done = 0;
  let seed = 0;
  let images = 0;
  let seconds = 0;
  const pool: { dataUrl: string; jpeg: Buffer }[] = [];
  for (const mark of marks) {
    const chunk = mark - done;
    while (pool.length < chunk) pool.push(await smallImage(seed++));
    const inputs = pool.splice(0, chunk);
    const result = await runLoad(server, 16, chunk, (i) => ({ images: [inputs[i]!], classes: ['a cat', 'a dog'] }));
    images += result.images;
    seconds += result.seconds;
    done = mark;
    const checkpoint = { jobs: done, peakMiB: peakRssMiB(server.pid), rssMiB: rssMiB(server.pid) };
    checkpoints.push(checkpoint);
    log(`memory: ${done} jobs, peak RSS ${checkpoint.peakMiB.toFixed(0)} MiB, RSS ${checkpoint.rssMiB.toFixed(0)} MiB`);
  }
  return { readyPeakMiB, checkpoints, imagesPerSecond: images / seconds };
}
