/**
 * The server's CPU time outside inference (issue 12's first target), measured directly: over a run, the server
 * process's CPU time (all threads, /proc/<pid>/stat) minus that of ONNX Runtime's threads, read per thread from
 * /proc/<pid>/task/<tid>/stat, divided by the images. The server names its ONNX Runtime threads in
 * `clip_onnxruntime_thread_cpu_seconds{tid}` (each session's worker thread and the intra-op pool threads ORT
 * started while creating it); they are checked against the count the settings imply before they are trusted.
 */
import fs from 'node:fs';
import type { BenchServer, LoadResult } from './server.js';

const TICK_MS = 10; // USER_HZ is 100 on every Linux architecture Node supports

function statCpuMs(file: string): number | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** Every thread of `pid` and its CPU time so far, in ms. */
function threadTimes(pid: number): Map<number, number> {
  const times = new Map<number, number>();
  for (const entry of fs.readdirSync(`/proc/${pid}/task`)) {
    const ms = statCpuMs(`/proc/${pid}/task/${entry}/stat`);
    if (ms !== undefined) times.set(Number(entry), ms);
  }
  return times;
}

/** The thread ids the server reports as ONNX Runtime's. */
export async function onnxThreadIds(url: string): Promise<number[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^clip_onnxruntime_thread_cpu_seconds\{tid="(\d+)"\}/gm)].map((match) => Number(match[1]));
}

/**
 * The ONNX Runtime threads a server should report: one worker thread per session plus intraOpThreads - 1 pool threads
 * each (so intraOpThreads per session). ONNX Runtime also starts one process-wide thread of its own with the first
 * session; it is counted only when it appears inside a session's creation, so one more is fine too.
 */
export function expectedOnnxThreads(intraOpThreads: number, visionReplicas: number): number {
  const vision = Math.max(1, Math.floor(intraOpThreads / visionReplicas));
  return intraOpThreads + visionReplicas * vision;
}

export interface CpuSplit {
  images: number;
  /** CPU ms per image, whole process. */
  processMsPerImage: number;
  /** CPU ms per image on ONNX Runtime's threads. */
  onnxMsPerImage: number;
  /** The target: process minus ONNX Runtime, per image. */
  outsideMsPerImage: number;
  /** Of the outside share: the main (event-loop) thread, and every other non-ORT thread (libuv, libvips, V8 GC). */
  mainThreadMsPerImage: number;
  otherThreadsMsPerImage: number;
  onnxThreads: number;
  expectedOnnxThreads: number;
  /** The thread ids are ORT's as far as can be checked: as many as the settings imply (or one more), all alive in the server. */
  verified: boolean;
}

/** Runs `run` (a load against `server`) and splits the server's CPU time over it. Linux only. */
export async function measureCpuSplit(
  server: BenchServer,
  expectedThreads: number,
  run: () => Promise<LoadResult>,
): Promise<CpuSplit> {
  const ort = new Set(await onnxThreadIds(server.url));
  const before = threadTimes(server.pid);
  const processBefore = statCpuMs(`/proc/${server.pid}/stat`) ?? Number.NaN;
  const result = await run();
  const processAfter = statCpuMs(`/proc/${server.pid}/stat`) ?? Number.NaN;
  const after = threadTimes(server.pid);
  const delta = (tid: number) => (after.get(tid) ?? before.get(tid) ?? 0) - (before.get(tid) ?? 0);
  let onnx = 0;
  let other = 0;
  for (const tid of new Set([...before.keys(), ...after.keys()])) {
    if (ort.has(tid)) onnx += delta(tid);
    else if (tid !== server.pid) other += delta(tid);
  }
  const processMs = processAfter - processBefore;
  const images = result.images;
  const alive = [...ort].every((tid) => before.has(tid));
  return {
    images,
    processMsPerImage: processMs / images,
    onnxMsPerImage: onnx / images,
    outsideMsPerImage: (processMs - onnx) / images,
    mainThreadMsPerImage: delta(server.pid) / images,
    otherThreadsMsPerImage: other / images,
    onnxThreads: ort.size,
    expectedOnnxThreads: expectedThreads,
    verified: alive && (ort.size === expectedThreads || ort.size === expectedThreads + 1),
  };
}

export function formatCpuSplit(split: CpuSplit): string {
  const f = (x: number) => x.toFixed(1);
  const check = split.verified ? 'verified' : `NOT verified: expected ${split.expectedOnnxThreads}`;
  return [
    `| server CPU per image, 1 × 10 at 16 clients (${split.images} images) | ms |`,
    '| --- | ---: |',
    `| whole process | ${f(split.processMsPerImage)} |`,
    `| ONNX Runtime threads (${split.onnxThreads}, ${check}) | ${f(split.onnxMsPerImage)} |`,
    `| **outside inference** | **${f(split.outsideMsPerImage)}** |`,
    `| of which the main thread (event loop) | ${f(split.mainThreadMsPerImage)} |`,
    `| of which other threads (libuv, libvips, V8) | ${f(split.otherThreadsMsPerImage)} |`,
  ].join('\n');
}

/** `count` distinct photo-like JPEGs of `width` × `height` (a 640×480 bench image, scaled smoothly), for the split rows. */
export async function sizedImages(
  count: number,
  width: number,
  height: number,
  firstSeed = 0,
): Promise<{ dataUrl: string; jpeg: Buffer; width: number; height: number }[]> {
  const { makeImage } = await import('./images.js');
  const sharp = (await import('sharp')).default;
  const out = [];
  for (let i = 0; i < count; i++) {
    // Seeds that are multiples of 4 give 640×480 images (images.ts cycles four sizes).
    const base = await makeImage((firstSeed + i) * 4);
    const jpeg =
      width === base.width && height === base.height
        ? base.jpeg
        : await sharp(base.jpeg).resize(width, height).jpeg({ quality: 85 }).toBuffer();
    out.push({ jpeg, dataUrl: `data:image/jpeg;base64,${jpeg.toString('base64')}`, width, height });
  }
  return out;
}
