/**
 * The benchmark row for a fixed-batch immich-layout model (ViT-B/32 shapes, random weights, batch fixed at 1 as
 * immich exports it): the server's images/s at 16 clients ÷ raw ONNX Runtime's batch-1 images/s on the same
 * `visual/model.onnx`, in the same run, alternating round by round.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { makeImmichModel } from '../make-test-model.js';
import { CLASSES_10, type BenchImage } from './images.js';
import { pixelBatch } from './rawOrt.js';
import { runLoad, startServer } from './server.js';
import { median } from './stats.js';

export interface ImmichRow {
  rawB1ImagesPerSecond: number;
  rawB1Ms: number;
  serverC16ImagesPerSecond: number;
  serverC16P50Ms: number;
  /** The median of the per-round ratios. */
  ratio: number;
  ratios: number[];
  rounds: number;
  /** CPU time per image (all threads), medians over the rounds: raw batch-1 runs, the server, and this process's 16 clients. */
  rawCpuMsPerImage: number;
  serverCpuMsPerImage: number;
  clientCpuMsPerImage: number;
  /**
   * Raw CPU per image ÷ (server + clients) CPU per image: the ratio both sides would reach if each kept the 2 cores
   * busy. Unlike the wall-clock ratio it hardly moves when other processes share the machine.
   */
  cpuRatio: number;
  /** The 1-minute load average before and after the row: the machine may be shared. */
  loadAverage: [number, number];
}

/** CPU time this process has used, in ms (all its threads: the raw sessions' or the load's clients'). */
function processCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** Generates the model once (random weights, real ViT-B/32 shapes, fixed batch 1). */
export async function ensureImmichBenchModel(dir: string, log: (message: string) => void): Promise<void> {
  if (fs.existsSync(path.join(dir, 'visual', 'model.onnx')) && fs.existsSync(path.join(dir, 'textual', 'model.onnx')))
    return;
  log(`generating the immich-layout ViT-B/32 test model in ${dir} (random weights, real shapes, fixed batch 1)`);
  await makeImmichModel({ out: dir, preset: 'openclip-vit-b-32' });
}

async function rawBatch1(
  session: ort.InferenceSession,
  runs: number,
): Promise<{ imagesPerSecond: number; msPerRun: number; cpuMsPerRun: number }> {
  const input = session.inputNames[0]!;
  const feeds = { [input]: new ort.Tensor('float32', pixelBatch(1), [1, 3, 224, 224]) };
  await session.run(feeds);
  const times: number[] = [];
  const cpuStarted = processCpuMs();
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await session.run(feeds);
    times.push(performance.now() - started);
  }
  const ms = median(times);
  return { imagesPerSecond: 1000 / ms, msPerRun: ms, cpuMsPerRun: (processCpuMs() - cpuStarted) / runs };
}

/** Runs the row: `rounds` alternating rounds of raw batch-1 runs and 16 clients sending 1 image × 10 classes each. */
export async function benchImmichRow(
  root: string,
  dir: string,
  options: {
    rounds: number;
    rawRuns: number;
    jobs: number;
    nextImages: (k: number) => BenchImage[];
    log: (message: string) => void;
  },
): Promise<ImmichRow> {
  await ensureImmichBenchModel(dir, options.log);
  // The ceiling is the better of ONNX Runtime's default (idle threads spin) and the server's setting (they do not):
  // spinning wins on an idle machine and loses badly on a busy one, and the ratio must not flatter the server.
  const create = (spinning: boolean) =>
    ort.InferenceSession.create(path.join(dir, 'visual', 'model.onnx'), {
      intraOpNumThreads: os.availableParallelism(),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      extra: { session: { intra_op: { allow_spinning: spinning ? '1' : '0' } } },
    });
  const sessions = [await create(true), await create(false)];
  const session = sessions[0]!;
  const rawBest = async (runs: number) => {
    const [a, b] = [await rawBatch1(sessions[0]!, runs), await rawBatch1(sessions[1]!, runs)];
    // The faster in wall time; the cheaper in CPU (spinning threads burn CPU while they wait).
    return { ...(a.imagesPerSecond >= b.imagesPerSecond ? a : b), cpuMsPerRun: Math.min(a.cpuMsPerRun, b.cpuMsPerRun) };
  };
  const fixed = session.inputMetadata[0];
  if (fixed?.isTensor && fixed.shape[0] !== 1)
    throw new Error(`expected ${dir}/visual/model.onnx to have a fixed batch of 1, got ${String(fixed.shape[0])}`);
  // The image cache is off so that reused benchmark images are really inferred every time.
  const server = await startServer(root, {
    CLIP_MODEL: dir,
    IMAGE_CACHE_SIZE: '0',
    MAX_QUEUED_JOBS: '10000',
    MAX_QUEUED_IMAGES: '100000',
  });
  const raw: number[] = [];
  const rawMs: number[] = [];
  const served: number[] = [];
  const p50: number[] = [];
  // Per round: raw, server, raw again; the round's ratio is the server over the mean of the raw runs around it, so a
  // neighbour's load that comes and goes on a shared machine hits both sides of a ratio alike.
  const ratios: number[] = [];
  const loadBefore = os.loadavg()[0]!;
  const rawCpu: number[] = [];
  const serverCpu: number[] = [];
  const clientCpu: number[] = [];
  try {
    await runLoad(server, 4, 8, () => ({ images: options.nextImages(1), classes: CLASSES_10 }));
    for (let round = 1; round <= options.rounds; round++) {
      options.log(`immich row, round ${round}/${options.rounds}: raw batch 1, then the server at 16 clients`);
      const before = await rawBest(options.rawRuns);
      const clientStarted = processCpuMs();
      const load = await runLoad(server, 16, options.jobs, () => ({
        images: options.nextImages(1),
        classes: CLASSES_10,
      }));
      clientCpu.push((processCpuMs() - clientStarted) / load.images);
      serverCpu.push((load.serverCpuMsPerJob * load.jobs) / load.images);
      const after = await rawBest(options.rawRuns);
      rawCpu.push((before.cpuMsPerRun + after.cpuMsPerRun) / 2);
      const rawRate = (before.imagesPerSecond + after.imagesPerSecond) / 2;
      raw.push(rawRate);
      rawMs.push((before.msPerRun + after.msPerRun) / 2);
      served.push(load.imagesPerSecond);
      p50.push(load.p50Ms);
      ratios.push(load.imagesPerSecond / rawRate);
    }
  } finally {
    await Promise.allSettled([server.stop(), ...sessions.map((s) => s.release())]);
  }
  const rawB1ImagesPerSecond = median(raw);
  const serverC16ImagesPerSecond = median(served);
  const [rawCpuMsPerImage, serverCpuMsPerImage, clientCpuMsPerImage] = [
    median(rawCpu),
    median(serverCpu),
    median(clientCpu),
  ];
  return {
    rawCpuMsPerImage,
    serverCpuMsPerImage,
    clientCpuMsPerImage,
    cpuRatio: rawCpuMsPerImage / (serverCpuMsPerImage + clientCpuMsPerImage),
    loadAverage: [loadBefore, os.loadavg()[0]!],
    rawB1ImagesPerSecond,
    rawB1Ms: median(rawMs),
    serverC16ImagesPerSecond,
    serverC16P50Ms: median(p50),
    ratio: median(ratios),
    ratios,
    rounds: options.rounds,
  };
}

export function formatImmichRow(row: ImmichRow): string {
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  return [
    '| immich layout, ViT-B/32 shapes, fixed batch 1 (fp32) | images/s |',
    '| --- | ---: |',
    `| raw ONNX Runtime, batch 1 (${f(row.rawB1Ms, 0)} ms/run) | ${f(row.rawB1ImagesPerSecond)} |`,
    `| server, 16 clients × (1 image × 10 classes) (p50 ${f(row.serverC16P50Ms, 0)} ms) | ${f(row.serverC16ImagesPerSecond)} |`,
    `| ratio server ÷ raw batch 1, median of the rounds' ratios (target ≥ 0.8) | ${f(row.ratio, 2)} (${row.ratio >= 0.8 ? 'met' : 'not met'}; rounds: ${row.ratios.map((r) => f(r, 2)).join(', ')}) |`,
    `| CPU ms per image: raw batch 1 / server (all threads) + 16 clients | ${f(row.rawCpuMsPerImage, 0)} / ${f(row.serverCpuMsPerImage, 0)} + ${f(row.clientCpuMsPerImage, 0)} |`,
    `| CPU-cost ratio, raw ÷ (server + clients) CPU per image (the wall ratio with both sides keeping the cores busy; robust to load) | ${f(row.cpuRatio, 2)} |`,
    `| load average (1 min) before → after | ${f(row.loadAverage[0], 1)} → ${f(row.loadAverage[1], 1)} |`,
  ].join('\n');
}
