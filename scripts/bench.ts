/**
 * `npm run bench [-- --json [FILE] --rounds N --quick --embeddings --model-dir DIR --immich-only --only uploads|preprocess|openai|json-body|model-memory|classifiers --redis]`
 *
 * `--only openai` compares `POST /v1/embeddings` with GraphQL `embedImages` on one server: 8 images a request at 16
 * clients, alternating; the ratio of their images/s is the OpenAI adapter's cost (bench/openai.ts; goal ≥ 0.95).
 *
 * `--redis` runs just the scale-out comparison (scripts/bench/redis.ts): 1 ROLE=api + 1 ROLE=worker over a real
 * redis-server versus ROLE=all in memory, throughput at 16 clients and single-job latency at 1 client.
 *
 * `--only preprocess` runs the micro-benchmark of the request → pixel_values path alone (bench/preprocessPath.ts):
 * CPU ms per image for a 640×480 JPEG as base64 JSON and as multipart, and a 4000×3000 JPEG, no model.
 *
 * `--only json-body` times the structural pre-scan of JSON bodies (bench/jsonBody.ts) beside JSON.parse, on honest
 * bodies (a base64 image of 10 and 100 MB, a full text job) and hostile ones (millions of tiny values), no server.
 * `--only model-memory` starts and stops the fp32 ViT-B/32-shaped model through the REST routes 10 times (3 with
 * `--quick`) and reads the server's RSS after each (bench/modelMemory.ts), with MALLOC_MMAP_THRESHOLD_=65536 as
 * docs/model-lifecycle.md recommends, or glibc's default with `--malloc-default`.
 *
 * `--only uploads` runs just the transport rows: 1 image × 10 classes at 16 clients, images as base64 JSON
 * versus file uploads (GraphQL multipart), with the server's CPU time per job.
 *
 * Sets the server beside raw ONNX Runtime (the ceiling) and transformers.js on the random-weight
 * ViT-B/32 test model, all measured in one run, alternating round by round, and reported as medians and
 * ratios, because the machine is shared and noisy. Prints a table; asserts nothing.
 *
 * `--memory` runs only the memory target: 10,000 cheap jobs (1 small distinct image × 2 classes, 16 clients) on an
 * fp32 server with default caches, peak RSS after 1,000 and 10,000 (2,500 with `--quick`). Long: its own flag.
 *
 * `--embeddings` measures only the embedding path (issue 10): 8-image embedImages jobs against 8 × 10
 * classify jobs at 16 clients on one server, alternating, and the time to serialise one 64 × 768 result.
 */
// First: ONNX Runtime's telemetry is off before anything below can load it.
import './ortTelemetry.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { makeTestModel } from './make-test-model.js';
import { CLASSES_10, makeImages, manyClasses, type BenchImage } from './bench/images.js';
import { cosine, embedImages, loadRaw, textPaddingCost, visionThroughput } from './bench/rawOrt.js';
import { measureSerialisation } from './bench/serialise.js';
import {
  peakRssMiB,
  runLoad,
  scrapeMetric,
  startServer,
  type BenchServer,
  type ImageTransport,
  type LoadResult,
} from './bench/server.js';
import { median } from './bench/stats.js';
import { benchImmichRow, formatImmichRow, type ImmichRow } from './bench/immich.js';
import { benchRedisRow, formatRedisRow } from './bench/redis.js';
import { loadTransformersJs, tjsThroughput } from './bench/transformersJs.js';
import { benchPreprocessPath, formatPreprocessPath } from './bench/preprocessPath.js';
import { benchOpenAiRow, formatOpenAiRow } from './bench/openai.js';
import { benchJsonBody, formatJsonBody } from './bench/jsonBody.js';
import { benchClassifiers, formatClassifierRow } from './bench/classifiers.js';
import { loadConfig } from '../src/config.js';
import { expectedOnnxThreads, formatCpuSplit, measureCpuSplit, sizedImages, type CpuSplit } from './bench/cpuSplit.js';
import { memoryRun, type MemoryRun } from './bench/memory.js';
import { benchModelMemory, formatModelMemory } from './bench/modelMemory.js';
import { ClipTokenizer } from '../src/clip/text/clipBpe.js';
import { preprocessImage } from '../src/clip/image/preprocess.js';
import { loadModelFiles } from '../src/clip/layouts/hfClip.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Options {
  /** Where to write the JSON results; resolved from `--json [file]` in main. */
  json?: string;
  rounds: number;
  quick: boolean;
  embeddings: boolean;
  modelDir: string;
  only?: string;
  mallocDefault: boolean;
  immichOnly: boolean;
  immichModelDir: string;
  redis: boolean;
  memory: boolean;
}

/** The transport rows, alternating JSON and multipart round by round; one key per transport. */
async function transportRows(
  load: (key: string, clients: number, jobs: number, transport: ImageTransport) => Promise<LoadResult>,
  jobs: number,
): Promise<void> {
  await load('1x10.c16.base64-json', 16, jobs, 'json');
  await load('1x10.c16.multipart', 16, jobs, 'multipart');
}

/** `--only uploads`: one fp32 server, the transport rows only. */
async function uploadsOnly(options: Options, rounds: number, n: (x: number) => number): Promise<void> {
  await ensureModel(options.modelDir);
  log('making benchmark images (JPEG, 640×480 to 1280×960)');
  const images = await makeImages(64);
  let cursor = 0;
  const server = await startServer(root, {
    CLIP_MODEL: options.modelDir,
    IMAGE_CACHE_SIZE: '0',
    MAX_QUEUED_JOBS: '10000',
    MAX_QUEUED_IMAGES: '100000',
    CLIP_PRECISION: 'fp32',
  });
  const loads: Record<string, LoadResult[]> = {};
  const load = async (key: string, clients: number, jobs: number, transport: ImageTransport) => {
    const result = await runLoad(
      server,
      clients,
      jobs,
      () => ({ images: [images[cursor++ % images.length]!], classes: CLASSES_10 }),
      transport,
    );
    (loads[key] ??= []).push(result);
    return result;
  };
  try {
    await runLoad(server, 4, 8, () => ({ images: [images[cursor++ % images.length]!], classes: CLASSES_10 }), 'json');
    await runLoad(
      server,
      4,
      8,
      () => ({ images: [images[cursor++ % images.length]!], classes: CLASSES_10 }),
      'multipart',
    );
    for (let round = 1; round <= rounds; round++) {
      log(`round ${round}/${rounds}: 1 image × 10 classes, 16 clients, base64 JSON then multipart`);
      await transportRows(load, n(96));
    }
    const bytes = images.map((i) => i.jpeg.length);
    const out = [
      `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}; model ${options.modelDir} (fp32); ${rounds} alternating round(s), medians.`,
      `Images: ${images.length} distinct JPEGs, ${Math.round(Math.min(...bytes) / 1024)}–${Math.round(Math.max(...bytes) / 1024)} KiB; image cache off.`,
      '',
      '| 1 image × 10 classes, 16 clients | images/s | p50 ms | p95 ms | server CPU ms/job |',
      '| --- | ---: | ---: | ---: | ---: |',
    ];
    const summary: Record<string, Record<string, number>> = {};
    for (const [key, results] of Object.entries(loads)) {
      const row = {
        imagesPerSecond: median(results.map((r) => r.imagesPerSecond)),
        p50Ms: median(results.map((r) => r.p50Ms)),
        p95Ms: median(results.map((r) => r.p95Ms)),
        serverCpuMsPerJob: median(results.map((r) => r.serverCpuMsPerJob)),
      };
      summary[key] = row;
      out.push(
        `| ${key} | ${fmt(row.imagesPerSecond)} | ${fmt(row.p50Ms, 0)} | ${fmt(row.p95Ms, 0)} | ${fmt(row.serverCpuMsPerJob)} |`,
      );
    }
    process.stdout.write(`${out.join('\n')}\n`);
    if (options.json) writeBenchJson(options.json, { rounds, model: options.modelDir, transport: summary });
  } finally {
    await server.stop();
  }
}

/** `--only openai`: one fp32 server, `/v1/embeddings` against GraphQL embedImages (8 images a job, 16 clients). */
async function openAiOnly(options: Options, rounds: number, n: (x: number) => number): Promise<void> {
  const started = Date.now();
  await ensureModel(options.modelDir);
  log('making benchmark images (JPEG, 640×480 to 1280×960)');
  const images = await makeImages(64);
  let cursor = 0;
  const nextImages = (k: number): BenchImage[] => Array.from({ length: k }, () => images[cursor++ % images.length]!);
  // The image cache is off so that reused benchmark images are really inferred every time.
  const server = await startServer(root, {
    CLIP_MODEL: options.modelDir,
    CLIP_PRECISION: 'fp32',
    IMAGE_CACHE_SIZE: '0',
    MAX_QUEUED_JOBS: '10000',
    MAX_QUEUED_IMAGES: '100000',
  });
  try {
    const row = await benchOpenAiRow(server, {
      rounds,
      jobs: n(32),
      model: path.basename(options.modelDir),
      nextImages,
      log,
    });
    const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}; model ${path.basename(options.modelDir)} (fp32); ${rounds} alternating round(s), medians`;
    process.stdout.write(
      `Machine: ${machine}.\n\n${formatOpenAiRow(row)}\n\nBenchmark took ${((Date.now() - started) / 1000).toFixed(0)} s.\n`,
    );
    if (options.json) writeBenchJson(options.json, { openai: row });
  } finally {
    await server.stop();
  }
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a whole number ≥ 1, got ${value}`);
  return n;
}

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function ensureModel(dir: string): Promise<void> {
  if (fs.existsSync(path.join(dir, 'onnx', 'vision_model_quantized.onnx'))) return;
  log(`generating the vit-b-32 test model in ${dir} (random weights, real shapes)`);
  await makeTestModel({ out: dir, preset: 'vit-b-32' });
}

type Samples = Record<string, number[]>;

function push(samples: Samples, key: string, value: number): void {
  (samples[key] ??= []).push(value);
}

/** Where `--json` without a file name writes: one file per run, next to the dated runs docs/performance.md cites. */
const BENCHMARKS_DIR = 'docs/benchmarks';

/** The part of the benchmark a run measures, for its default JSON file name. */
function sectionOf(options: Omit<Options, 'json'>): string {
  if (options.only !== undefined) return options.only;
  if (options.immichOnly) return 'immich';
  if (options.redis) return 'redis';
  if (options.memory) return 'memory';
  if (options.embeddings) return 'embeddings';
  return options.quick ? 'quick' : 'full';
}

function jsonFileOf(json: string | true | undefined, section: string): string | undefined {
  if (json === undefined || typeof json === 'string') return json;
  const stamp = new Date().toISOString().slice(0, 16).replace(/:/g, '');
  return path.join(root, BENCHMARKS_DIR, `${stamp}-${section}.json`);
}

/** The command line this run was started with, recorded in its JSON. */
const benchArgv = process.argv.slice(2);

/** Writes a run's results with what a number needs to mean anything later: when, on what machine, by which command. */
function writeBenchJson(file: string, results: object): void {
  const machine = {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
  const header = {
    date: new Date().toISOString(),
    machine,
    loadAverage: os.loadavg()[0],
    command: ['npm run bench --', ...benchArgv].join(' '),
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify({ ...header, ...results }, null, 2)}\n`);
  log(`wrote ${path.relative(process.cwd(), file) || file}`);
}

async function main(argv: readonly string[]): Promise<void> {
  const parsed = new Command()
    .name('bench')
    .option(
      '--json [file]',
      `also write the results as JSON, with the date and machine (default: ${BENCHMARKS_DIR}/<date>-<section>.json)`,
    )
    .option('--rounds <n>', 'alternating rounds; medians are taken across them', parsePositive, 3)
    .option('--quick', 'one small round, to check the benchmark itself works', false)
    .option(
      '--embeddings',
      'only the embedding benchmark: embedImages vs classify throughput, result serialisation',
      false,
    )
    .option(
      '--model-dir <dir>',
      'the vit-b-32 test model (generated when absent)',
      path.join(root, '.cache', 'bench', 'vit-b-32'),
    )
    .option(
      '--only <section>',
      'run one section only: uploads (base64 JSON versus multipart file uploads), preprocess (request → pixel_values, no model), openai (/v1/embeddings versus GraphQL embedImages), json-body (the JSON pre-scan, no server), model-memory (RSS across model start/stop), classifiers (imagenet-1k against 10 inline classes; a classifier build against raw ONNX Runtime)',
    )
    .option('--malloc-default', "model-memory: run the server with glibc's default allocator settings", false)
    .option(
      '--memory',
      'only the memory target: peak RSS of the fp32 server after 1,000 and 10,000 cheap jobs (long)',
      false,
    )
    .option('--immich-only', 'run only the fixed-batch immich-layout row (server at 16 clients ÷ raw batch 1)', false)
    .option(
      '--immich-model-dir <dir>',
      'the immich-layout ViT-B/32 test model (generated when absent)',
      path.join(root, '.cache', 'bench', 'immich-vit-b-32'),
    )
    .option(
      '--redis',
      'run only the scale-out row: 1 API + 1 worker over a real redis-server versus ROLE=all in memory',
      false,
    )
    .parse(argv, { from: 'user' })
    .opts<Omit<Options, 'json'> & { json?: string | true }>();
  const options: Options = { ...parsed, json: jsonFileOf(parsed.json, sectionOf(parsed)) };
  const rounds = options.quick ? 1 : options.rounds;
  const scale = options.quick ? 0.25 : 1;
  const n = (x: number) => Math.max(1, Math.round(x * scale));
  const started = Date.now();
  if (options.only !== undefined) {
    if (options.only === 'preprocess') {
      // The server's pool size (PREPROCESS_WORKERS, else its default).
      const result = await benchPreprocessPath({
        images: n(48),
        poolSize: loadConfig([], process.env).preprocessWorkers,
        log,
      });
      process.stdout.write(
        `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}.\n\n${formatPreprocessPath(result)}\n`,
      );
      if (options.json) writeBenchJson(options.json, { preprocess: result });
      return;
    }
    if (options.only === 'openai') {
      await openAiOnly(options, rounds, n);
      return;
    }
    if (options.only === 'classifiers') {
      // Only the fp32 graphs are used, as for model-memory: test/.models/vit-b-32 serves as it is.
      if (!fs.existsSync(path.join(options.modelDir, 'onnx', 'text_model.onnx'))) await ensureModel(options.modelDir);
      const images = await makeImages(64);
      let cursor = 0;
      const row = await benchClassifiers(root, options.modelDir, {
        rounds,
        jobs: n(64),
        // --quick: open_clip's 7 simple templates instead of OpenAI's 80 (7,000 prompts to build, not 80,000).
        preset: options.quick ? 'imagenet-1k-simple' : 'imagenet-1k',
        buildClasses: options.quick ? 250 : 1000,
        buildTemplates: options.quick ? 8 : 80,
        nextImages: (k) => Array.from({ length: k }, () => images[cursor++ % images.length]!),
        log,
      });
      process.stdout.write(
        `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}; model ${path.basename(options.modelDir)} (fp32).\n\n${formatClassifierRow(row)}\n`,
      );
      if (options.json) writeBenchJson(options.json, { classifiers: row });
      return;
    }
    if (options.only === 'json-body') {
      const config = loadConfig([], process.env);
      const limits = { maxDepth: config.maxJsonDepth, maxValues: config.maxJsonValues };
      const rows = benchJsonBody(limits, options.quick ? 1 : 5);
      process.stdout.write(
        `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}.\n\n${formatJsonBody(rows, limits)}\n`,
      );
      if (options.json) writeBenchJson(options.json, { jsonBody: rows });
      return;
    }
    if (options.only === 'model-memory') {
      // Only the fp32 graphs are used: test/.models/vit-b-32 (fp32 only) serves as well as a full generated model.
      if (!fs.existsSync(path.join(options.modelDir, 'onnx', 'text_model.onnx'))) await ensureModel(options.modelDir);
      const result = await benchModelMemory(root, options.modelDir, {
        cycles: options.quick ? 3 : 10,
        mallocMmapThreshold: options.mallocDefault ? null : 65_536,
        log,
      });
      process.stdout.write(
        `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}.\n\n${formatModelMemory(result)}\n`,
      );
      if (options.json) writeBenchJson(options.json, { modelMemory: result });
      return;
    }
    if (options.only !== 'uploads')
      throw new InvalidArgumentError(
        `--only expects uploads, preprocess, openai, json-body or model-memory, got ${options.only}`,
      );
    await uploadsOnly(options, rounds, n);
    return;
  }

  if (options.immichOnly) {
    log('making benchmark images (JPEG, 640×480 to 1280×960)');
    const pool = await makeImages(64);
    let next = 0;
    const row = await benchImmichRow(root, options.immichModelDir, {
      rounds,
      rawRuns: n(12),
      jobs: n(48),
      nextImages: (k) => Array.from({ length: k }, () => pool[next++ % pool.length]!),
      log,
    });
    const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}; ${rounds} alternating round(s), medians`;
    process.stdout.write(
      `Machine: ${machine}.\n\n${formatImmichRow(row)}\n\nBenchmark took ${((Date.now() - started) / 1000).toFixed(0)} s.\n`,
    );
    if (options.json) writeBenchJson(options.json, { immich: row });
    return;
  }

  if (options.redis) {
    await ensureModel(options.modelDir);
    log('making benchmark images (JPEG, 640×480 to 1280×960)');
    const pool = await makeImages(64);
    let next = 0;
    const nextImages = (k: number): BenchImage[] => Array.from({ length: k }, () => pool[next++ % pool.length]!);
    const row = await benchRedisRow(root, options.modelDir, {
      rounds,
      jobs: n(96),
      latencyJobs: n(24),
      nextImages,
      log,
    });
    const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}; ${rounds} alternating round(s), medians`;
    process.stdout.write(
      `Machine: ${machine}.\n\n${formatRedisRow(row)}\n\nBenchmark took ${((Date.now() - started) / 1000).toFixed(0)} s.\n`,
    );
    if (options.json) writeBenchJson(options.json, { redis: row });
    return;
  }

  await ensureModel(options.modelDir);
  if (options.memory) {
    await memoryBench(options.modelDir, options.quick ? 2_500 : 10_000, options.json);
    return;
  }
  if (options.embeddings) {
    await embeddingsBench(options.modelDir, rounds, n, options.json);
    return;
  }
  log('making benchmark images (JPEG, 640×480 to 1280×960)');
  const images = await makeImages(64);
  let cursor = 0;
  const nextImages = (k: number): BenchImage[] => Array.from({ length: k }, () => images[cursor++ % images.length]!);
  const classes100 = manyClasses(100, 'thing');
  // The CPU-split rows (issue 12's first target): distinct 640×480 and 4000×3000 photo-like JPEGs.
  log('making the CPU-split images (640×480 and 4000×3000)');
  const vga = await sizedImages(32, 640, 480, 100);
  const large = await sizedImages(4, 4000, 3000, 200);
  let vgaNext = 0;
  let largeNext = 0;

  log('loading raw ONNX Runtime sessions, transformers.js, and two servers (fp32, int8)');
  const raw = await loadRaw(options.modelDir, 'fp32');
  const rawInt8 = await loadRaw(options.modelDir, 'int8');
  const tjs = await loadTransformersJs(options.modelDir, 'fp32');
  // The image cache is off so that reused benchmark images are really inferred every time.
  const serverEnv = {
    CLIP_MODEL: options.modelDir,
    IMAGE_CACHE_SIZE: '0',
    MAX_QUEUED_JOBS: '10000',
    MAX_QUEUED_IMAGES: '100000',
  };
  const server = await startServer(root, { ...serverEnv, CLIP_PRECISION: 'fp32' });
  const serverInt8 = await startServer(root, { ...serverEnv, CLIP_PRECISION: 'int8' });

  const samples: Samples = {};
  const splits: Record<string, CpuSplit[]> = {};
  // The server's ONNX Runtime threads under the bench's settings (ORT_INTRA_OP_THREADS and VISION_REPLICAS defaults).
  const onnxThreads = expectedOnnxThreads(os.availableParallelism(), 1);
  const loads: Record<string, LoadResult[]> = {};
  const load = async (
    key: string,
    target: BenchServer,
    clients: number,
    jobs: number,
    perJob: number,
    classes: string[],
    transport: ImageTransport = 'json',
  ) => {
    const result = await runLoad(target, clients, jobs, () => ({ images: nextImages(perJob), classes }), transport);
    (loads[key] ??= []).push(result);
    return result;
  };

  try {
    // Warm every path once so that first-run costs stay out of the medians.
    await load('warmup', server, 4, 8, 1, CLASSES_10);
    await load('warmup', serverInt8, 4, 8, 1, CLASSES_10);
    await tjs.call([images[0]!.jpeg], CLASSES_10);

    let eventLoopP99 = 0;
    for (let round = 1; round <= rounds; round++) {
      log(`round ${round}/${rounds}: raw ONNX Runtime ceiling`);
      for (const [batch, runs] of [
        [1, n(12)],
        [8, n(4)],
        [32, n(2)],
      ] as const) {
        push(samples, `raw.b${batch}`, (await visionThroughput(raw.vision, batch, runs)).imagesPerSecond);
      }
      push(samples, 'raw.b1.ms', (await visionThroughput(raw.vision, 1, n(12))).msPerRun);
      push(samples, 'raw.int8.b8', (await visionThroughput(rawInt8.vision, 8, n(4))).imagesPerSecond);
      push(samples, 'raw.fp32.b8', (await visionThroughput(raw.vision, 8, n(4))).imagesPerSecond);

      log(`round ${round}/${rounds}: server, 1 image × 10 classes`);
      push(samples, 'server.1x10.c1.latency', (await load('1x10.c1', server, 1, n(12), 1, CLASSES_10)).p50Ms);
      await scrapeMetric(server.url, 'nodejs_eventloop_lag_p99_seconds'); // resets the lag histogram
      for (const clients of [4, 16, 64]) {
        const r = await load(`1x10.c${clients}`, server, clients, n(Math.max(48, clients * 2)), 1, CLASSES_10);
        push(samples, `server.1x10.c${clients}`, r.imagesPerSecond);
      }
      eventLoopP99 = Math.max(
        eventLoopP99,
        (await scrapeMetric(server.url, 'nodejs_eventloop_lag_p99_seconds')) * 1000,
      );

      log(
        `round ${round}/${rounds}: server CPU outside inference, 1 × 10 at 16 clients (640×480 JSON, 640×480 multipart, 4000×3000 JSON)`,
      );
      const split = async (
        key: string,
        jobs: number,
        pool: typeof vga,
        cursor: () => number,
        transport: ImageTransport,
      ) =>
        (splits[key] ??= []).push(
          await measureCpuSplit(server, onnxThreads, () =>
            runLoad(
              server,
              16,
              jobs,
              () => ({ images: [pool[cursor() % pool.length]!], classes: CLASSES_10 }),
              transport,
            ),
          ),
        );
      await split('vga.json', n(96), vga, () => vgaNext++, 'json');
      await split('vga.multipart', n(96), vga, () => vgaNext++, 'multipart');
      await split('large.json', n(32), large, () => largeNext++, 'json');

      log(
        `round ${round}/${rounds}: server, 1 image × 10 classes, 16 clients: base64 JSON versus multipart file uploads`,
      );
      await transportRows(
        (key, clients, jobs, transport) => load(key, server, clients, jobs, 1, CLASSES_10, transport),
        n(96),
      );

      log(`round ${round}/${rounds}: server, 8 images × 10 classes`);
      for (const clients of [1, 4, 16, 64]) {
        const r = await load(`8x10.c${clients}`, server, clients, n(Math.max(8, clients)), 8, CLASSES_10);
        push(samples, `server.8x10.c${clients}`, r.imagesPerSecond);
      }
      push(
        samples,
        'server.int8.8x10.c16',
        (await load('int8.8x10.c16', serverInt8, 16, n(16), 8, CLASSES_10)).imagesPerSecond,
      );

      log(`round ${round}/${rounds}: server, 1 image × 100 classes (the same list every time)`);
      push(samples, 'server.1x100.c16', (await load('1x100.c16', server, 16, n(48), 1, classes100)).imagesPerSecond);

      log(`round ${round}/${rounds}: transformers.js`);
      const tjs1 = await tjsThroughput(tjs, n(12), () => ({
        jpegs: nextImages(1).map((i) => i.jpeg),
        classes: CLASSES_10,
      }));
      push(samples, 'tjs.1x10', tjs1.imagesPerSecond);
      push(samples, 'tjs.1x10.ms', tjs1.msPerCall);
      push(
        samples,
        'tjs.8x10',
        (await tjsThroughput(tjs, n(4), () => ({ jpegs: nextImages(8).map((i) => i.jpeg), classes: CLASSES_10 })))
          .imagesPerSecond,
      );
      push(
        samples,
        'tjs.1x100',
        (await tjsThroughput(tjs, n(4), () => ({ jpegs: nextImages(1).map((i) => i.jpeg), classes: classes100 })))
          .imagesPerSecond,
      );
    }

    log('text path: 1,000 distinct prompts cold, then again from the cache; padding cost');
    const prompts = manyClasses(1000, `prompt ${Date.now()}`);
    const cold = await load('text.cold', server, 1, 1, 1, prompts);
    const warm = await load('text.warm', server, 1, 1, 1, prompts);
    const files = await loadModelFiles(options.modelDir, 'fp32');
    const tokenizer = await ClipTokenizer.fromFile(files.tokenizerPath, { contextLength: 77 });
    const tenPrompts = CLASSES_10.map((c) => Array.from(tokenizer.encode(`a photo of a ${c}.`)));
    const padding = await textPaddingCost(raw.text, tenPrompts, n(5));

    log('immich layout: fixed-batch ViT-B/32, server at 16 clients ÷ raw batch 1');
    log('OpenAI-compatible route: /v1/embeddings versus GraphQL embedImages, 8 images a job, 16 clients');
    const openai = await benchOpenAiRow(server, {
      rounds,
      jobs: n(32),
      model: path.basename(options.modelDir),
      nextImages,
      log,
    });
    const immich: ImmichRow = await benchImmichRow(root, options.immichModelDir, {
      rounds,
      rawRuns: n(12),
      jobs: n(48),
      nextImages,
      log,
    });

    log('precision: int8 versus fp32 embeddings of the same images');
    const pixels = await Promise.all(
      images.slice(0, 16).map((i) => preprocessImage(i.jpeg, files.preprocessor, { maxBytes: 50e6, maxPixels: 50e6 })),
    );
    const batch = new Float32Array(16 * pixels[0]!.length);
    pixels.forEach((p, i) => batch.set(p, i * p.length));
    const [fp32Embeds, int8Embeds] = [
      await embedImages(raw.vision, batch, 16),
      await embedImages(rawInt8.vision, batch, 16),
    ];
    const dim = fp32Embeds.length / 16;
    const rows = (e: Float32Array) => Array.from({ length: 16 }, (_, i) => e.slice(i * dim, (i + 1) * dim));
    const centred = (rs: Float32Array[]) => {
      const mean = new Float32Array(dim);
      rs.forEach((r) => r.forEach((v, k) => (mean[k]! += v / rs.length)));
      return rs.map((r) => r.map((v, k) => v - mean[k]!));
    };
    const cos = rows(fp32Embeds).map((r, i) => cosine(r, rows(int8Embeds)[i]!));
    const cosCentred = centred(rows(fp32Embeds)).map((r, i) => cosine(r, centred(rows(int8Embeds))[i]!));

    const m = (key: string) => median(samples[key] ?? []);
    const loadMedian = (key: string, field: keyof LoadResult) => median((loads[key] ?? []).map((r) => r[field]));
    const results: BenchResults = {
      machine: {
        cpus: os.cpus().length,
        cpu: os.cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
      },
      rounds,
      quick: options.quick,
      ceiling: { b1: m('raw.b1'), b8: m('raw.b8'), b32: m('raw.b32'), b1Ms: m('raw.b1.ms') },
      server: Object.fromEntries(
        Object.keys(loads)
          .filter((k) => k !== 'warmup')
          .map((k) => [
            k,
            {
              imagesPerSecond: loadMedian(k, 'imagesPerSecond'),
              p50Ms: loadMedian(k, 'p50Ms'),
              p95Ms: loadMedian(k, 'p95Ms'),
              p99Ms: loadMedian(k, 'p99Ms'),
              serverCpuMsPerJob: loadMedian(k, 'serverCpuMsPerJob'),
            },
          ]),
      ),
      transformersJs: {
        '1x10': m('tjs.1x10'),
        '1x10Ms': m('tjs.1x10.ms'),
        '8x10': m('tjs.8x10'),
        '1x100': m('tjs.1x100'),
      },
      text: {
        coldMs: cold.p50Ms,
        warmMs: warm.p50Ms,
        tenPromptsRealMs: padding.realMs,
        tenPromptsPaddedMs: padding.paddedMs,
        realLength: padding.realLength,
      },
      precision: {
        int8VsFp32SpeedB8: m('raw.int8.b8') / m('raw.fp32.b8'),
        cosineMin: Math.min(...cos),
        centredCosineMin: Math.min(...cosCentred),
      },
      peakRssMiB: { fp32Server: peakRssMiB(server.pid), int8Server: peakRssMiB(serverInt8.pid) },
      eventLoopDelayP99Ms: eventLoopP99,
      immich,
      elapsedSeconds: (Date.now() - started) / 1000,
    };
    const splitMedian = (key: string, field: keyof CpuSplit) =>
      median((splits[key] ?? []).map((s) => Number(s[field])));
    const splitSummary = (key: string): CpuSplit => {
      const all = splits[key] ?? [];
      const fields = [
        'images',
        'processMsPerImage',
        'onnxMsPerImage',
        'outsideMsPerImage',
        'mainThreadMsPerImage',
        'otherThreadsMsPerImage',
      ] as const;
      const base = {
        onnxThreads: all[0]?.onnxThreads ?? 0,
        expectedOnnxThreads: onnxThreads,
        verified: all.length > 0 && all.every((s) => s.verified),
      };
      return { ...base, ...Object.fromEntries(fields.map((f) => [f, splitMedian(key, f)])) } as CpuSplit;
    };
    results.cpuSplit = {
      vgaJson: splitSummary('vga.json'),
      vgaMultipart: splitSummary('vga.multipart'),
      largeJson: splitSummary('large.json'),
    };
    const targets = [
      [
        'CPU per image outside inference, 640×480 base64 JSON, 16 clients (ms)',
        results.cpuSplit.vgaJson.outsideMsPerImage,
        '≤ 4',
      ],
      [
        'CPU per image outside inference, 640×480 multipart upload, 16 clients (ms)',
        results.cpuSplit.vgaMultipart.outsideMsPerImage,
        '≤ 3',
      ],
      [
        'CPU per image outside inference, 4000×3000 base64 JSON, 16 clients (ms)',
        results.cpuSplit.largeJson.outsideMsPerImage,
        '≤ 12',
      ],
      ['server 16 clients (1×10) ÷ raw batch-32 ceiling', m('server.1x10.c16') / m('raw.b32'), '≥ 0.85'],
      ['server 16 clients (1×10) ÷ transformers.js (1×10)', m('server.1x10.c16') / m('tjs.1x10'), '≥ 2'],
      ['single warm job latency ÷ raw batch-1 latency', m('server.1x10.c1.latency') / m('raw.b1.ms'), '≤ 1.2'],
      ['single warm job latency ÷ transformers.js call', m('server.1x10.c1.latency') / m('tjs.1x10.ms'), '≤ 0.6'],
      ['server 8×10 (16 clients) ÷ transformers.js 8×10, fp32', m('server.8x10.c16') / m('tjs.8x10'), '≥ 1.25'],
      ['server int8 8×10 (16 clients) ÷ transformers.js 8×10 fp32', m('server.int8.8x10.c16') / m('tjs.8x10'), '≥ 2'],
      ['server 1×100 same classes ÷ transformers.js 1×100', m('server.1x100.c16') / m('tjs.1x100'), '≥ 5'],
      ['int8 ÷ fp32 image tower speed (batch 8)', results.precision.int8VsFp32SpeedB8, '≥ 1.8'],
      ['int8 vs fp32 embedding cosine (min of 16 images)', results.precision.cosineMin, '≥ 0.99'],
      ['event-loop delay p99 under load (ms)', eventLoopP99, '< 50'],
      ['immich fixed-batch ViT-B/32: server 16 clients ÷ raw batch 1', immich.ratio, '≥ 0.8'],
      ['/v1/embeddings ÷ GraphQL embedImages, images/s at 16 clients (8 images a job)', openai.ratio, '≥ 0.95'],
    ] as const;
    printTable(results, targets);
    if (options.json) writeBenchJson(options.json, { ...results, openai, targets });
  } finally {
    await Promise.allSettled([server.stop(), serverInt8.stop(), raw.release(), rawInt8.release(), tjs.dispose()]);
  }
}

/**
 * Embedding jobs against classification jobs on the same server, the same images and the same load (16 clients,
 * 8 images a job), alternating round by round; the ratio of their images/s says what returning vectors costs.
 */
async function embeddingsBench(
  modelDir: string,
  rounds: number,
  n: (x: number) => number,
  json: string | undefined,
): Promise<void> {
  const started = Date.now();
  log('making benchmark images (JPEG, 640×480 to 1280×960)');
  const images = await makeImages(64);
  let cursor = 0;
  const nextImages = (k: number): BenchImage[] => Array.from({ length: k }, () => images[cursor++ % images.length]!);
  // The image cache is off so that reused benchmark images are really inferred every time.
  const server = await startServer(root, {
    CLIP_MODEL: modelDir,
    CLIP_PRECISION: 'fp32',
    IMAGE_CACHE_SIZE: '0',
    MAX_QUEUED_JOBS: '10000',
    MAX_QUEUED_IMAGES: '100000',
  });
  const samples: Samples = {};
  const latencies: Samples = {};
  try {
    const modelName = path.basename(modelDir);
    const classify = (jobs: number) =>
      runLoad(server, 16, jobs, () => ({ images: nextImages(8), classes: CLASSES_10 }), 'json', 'classify');
    const embed = (jobs: number) =>
      runLoad(server, 16, jobs, () => ({ images: nextImages(8), classes: [] }), 'json', 'embed-images');
    await classify(n(8));
    await embed(n(8));
    for (let round = 1; round <= rounds; round++) {
      // Alternate which goes first, so neither always meets a warmer (or busier) machine.
      const order = round % 2 === 1 ? (['classify', 'embed'] as const) : (['embed', 'classify'] as const);
      for (const kind of order) {
        log(
          `round ${round}/${rounds}: 16 clients × 8-image ${kind === 'classify' ? 'classify (10 classes)' : 'embedImages'} jobs`,
        );
        const result = await (kind === 'classify' ? classify(n(32)) : embed(n(32)));
        push(samples, kind, result.imagesPerSecond);
        push(latencies, kind, result.p50Ms);
      }
    }

    log(
      'one 64-image embedding job over REST: the time to read its result (server serialisation + loopback + client parse)',
    );
    const created = (await (
      await fetch(`${server.url}/api/tasks/image-embedding/batched/${modelName}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: nextImages(64).map((i) => i.dataUrl) }),
      })
    ).json()) as { id: string };
    const readMs: number[] = [];
    let bytes = 0;
    for (;;) {
      const readStarted = performance.now();
      const text = await (await fetch(`${server.url}/api/tasks/image-embedding/batched/jobs/${created.id}`)).text();
      const body = JSON.parse(text) as { status: string; result?: { embedding: number[] }[] };
      if (body.status === 'failed') throw new Error(`64-image job failed: ${text.slice(0, 300)}`);
      if (body.status === 'complete') {
        readMs.push(performance.now() - readStarted);
        bytes = text.length;
        if (readMs.length === 5) break;
      } else await new Promise((resolve) => setTimeout(resolve, 50));
    }

    log(
      'serialising one 64 × 768 result in-process (REST body; GraphQL Vector leaves; [[Float!]!] lists for comparison)',
    );
    const serialise = await measureSerialisation(64, 768);

    const ratio = median(samples.embed ?? []) / median(samples.classify ?? []);
    const results = {
      machine: {
        cpus: os.cpus().length,
        cpu: os.cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
      },
      model: modelName,
      rounds,
      classify8x10c16: {
        imagesPerSecond: median(samples.classify ?? []),
        p50Ms: median(latencies.classify ?? []),
        samples: samples.classify,
      },
      embed8c16: {
        imagesPerSecond: median(samples.embed ?? []),
        p50Ms: median(latencies.embed ?? []),
        samples: samples.embed,
      },
      ratio,
      rest64Read: { ms: median(readMs), bytes },
      serialise,
      elapsedSeconds: (Date.now() - started) / 1000,
    };
    const out = [
      `Machine: ${results.machine.cpus} × ${results.machine.cpu}, Node ${results.machine.node}; model ${modelName} (fp32); ${rounds} alternating round(s), medians.`,
      '',
      '| 16 clients, 8 images a job (GraphQL mutation + graphql-ws, whole result received) | images/s | p50 ms |',
      '| --- | ---: | ---: |',
      `| classify, 10 classes | ${fmt(results.classify8x10c16.imagesPerSecond)} | ${fmt(results.classify8x10c16.p50Ms, 0)} |`,
      `| embedImages | ${fmt(results.embed8c16.imagesPerSecond)} | ${fmt(results.embed8c16.p50Ms, 0)} |`,
      '',
      '| serialising one result of 64 vectors × 768 floats | ms | bytes |',
      '| --- | ---: | ---: |',
      `| REST batched body (toFesJobResponse + JSON.stringify) | ${fmt(serialise.restMs, 2)} | ${serialise.restBytes} |`,
      `| GraphQL \`job { embeddings { vectors } }\` (execute + JSON.stringify, Vector leaves) | ${fmt(serialise.graphqlMs, 2)} | ${serialise.graphqlBytes} |`,
      `| the same vectors as \`[[Float!]!]\` lists (for comparison) | ${fmt(serialise.graphqlFloatListsMs, 2)} | |`,
      `| REST GET of a real 64-image job's result, ${modelName} vectors (HTTP round trip + client parse) | ${fmt(results.rest64Read.ms, 2)} | ${bytes} |`,
      '',
      '| target | measured | wanted | met |',
      '| --- | ---: | --- | --- |',
      `| embedImages 8 images (16 clients) ÷ classify 8×10 (16 clients), images/s | ${fmt(ratio, 3)} | ≥ 0.95 | ${ratio >= 0.95 ? 'yes' : 'no'} |`,
      '',
      `Benchmark took ${fmt(results.elapsedSeconds, 0)} s.`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    if (json) writeBenchJson(json, results);
  } finally {
    await server.stop();
  }
}

/** `--memory`: peak RSS of the fp32 server (default caches) after 1,000 and `total` cheap jobs, against issue 12's bounds. */
async function memoryBench(modelDir: string, total: number, json: string | undefined): Promise<void> {
  const started = Date.now();
  const server = await startServer(root, {
    CLIP_MODEL: modelDir,
    CLIP_PRECISION: 'fp32',
    MAX_QUEUED_JOBS: '10000',
    MAX_QUEUED_IMAGES: '100000',
  });
  let run: MemoryRun;
  try {
    log(`memory: ${total} jobs of 1 distinct 96×72 image × 2 classes at 16 clients, fp32 server with default caches`);
    run = await memoryRun(server, total, [1_000, 2_500, 5_000], log);
  } finally {
    await server.stop();
  }
  const at = (jobs: number) => run.checkpoints.find((c) => c.jobs === jobs);
  const first = at(1_000)!;
  const last = run.checkpoints[run.checkpoints.length - 1]!;
  const growth = last.peakMiB / first.peakMiB - 1;
  const limitMiB = 1.5e9 / 2 ** 20;
  const out = [
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}; model ${modelDir} (fp32).`,
    '',
    '| jobs | peak RSS (VmHWM) MiB | RSS MiB |',
    '| ---: | ---: | ---: |',
    `| 0 (ready) | ${fmt(run.readyPeakMiB, 0)} | |`,
    ...run.checkpoints.map((c) => `| ${c.jobs} | ${fmt(c.peakMiB, 0)} | ${fmt(c.rssMiB, 0)} |`),
    '',
    '| target | measured | wanted | met |',
    '| --- | ---: | --- | --- |',
    `| peak RSS after ${last.jobs} jobs (MiB) | ${fmt(last.peakMiB, 0)} | ≤ 1.5 GB (${fmt(limitMiB, 0)} MiB) | ${last.peakMiB <= limitMiB ? 'yes' : 'no'} |`,
    `| peak RSS growth, 1,000 → ${last.jobs} jobs | ${fmt(growth * 100, 1)} % | ≤ 5 % | ${growth <= 0.05 ? 'yes' : 'no'} |`,
    '',
    `${fmt(run.imagesPerSecond)} images/s over the run; benchmark took ${fmt((Date.now() - started) / 1000, 0)} s.`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  if (json) writeBenchJson(json, { memory: run, growth });
}

function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

interface LoadSummary {
  imagesPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  serverCpuMsPerJob: number;
}

interface BenchResults {
  machine: { cpus: number; cpu: string; memoryGiB: number; node: string };
  rounds: number;
  quick: boolean;
  ceiling: { b1: number; b8: number; b32: number; b1Ms: number };
  server: Record<string, LoadSummary>;
  transformersJs: { '1x10': number; '1x10Ms': number; '8x10': number; '1x100': number };
  text: { coldMs: number; warmMs: number; tenPromptsRealMs: number; tenPromptsPaddedMs: number; realLength: number };
  precision: { int8VsFp32SpeedB8: number; cosineMin: number; centredCosineMin: number };
  peakRssMiB: { fp32Server: number; int8Server: number };
  eventLoopDelayP99Ms: number;
  immich: ImmichRow;
  cpuSplit?: { vgaJson: CpuSplit; vgaMultipart: CpuSplit; largeJson: CpuSplit };
  elapsedSeconds: number;
}

function printTable(r: BenchResults, targets: readonly (readonly [string, number, string])[]): void {
  const out: string[] = [];
  out.push(
    `Machine: ${r.machine.cpus} × ${r.machine.cpu}, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}; ${r.rounds} alternating round(s), medians.`,
  );
  out.push('', '| raw ONNX Runtime, image tower fp32 | images/s |', '| --- | ---: |');
  out.push(
    `| batch 1 (${fmt(r.ceiling.b1Ms, 0)} ms) | ${fmt(r.ceiling.b1)} |`,
    `| batch 8 | ${fmt(r.ceiling.b8)} |`,
    `| batch 32 | ${fmt(r.ceiling.b32)} |`,
  );
  out.push(
    '',
    '| server end-to-end (GraphQL mutation + graphql-ws) | images/s | p50 ms | p95 ms | p99 ms | server CPU ms/job |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const [key, v] of Object.entries(r.server)) {
    if (key.startsWith('text.')) continue;
    out.push(
      `| ${key} | ${fmt(v.imagesPerSecond)} | ${fmt(v.p50Ms, 0)} | ${fmt(v.p95Ms, 0)} | ${fmt(v.p99Ms, 0)} | ${fmt(v.serverCpuMsPerJob)} |`,
    );
  }
  out.push('', '| transformers.js pipeline (fp32) | images/s |', '| --- | ---: |');
  out.push(
    `| 1 image × 10 classes (${fmt(r.transformersJs['1x10Ms'], 0)} ms/call) | ${fmt(r.transformersJs['1x10'])} |`,
  );
  out.push(
    `| 8 images × 10 classes | ${fmt(r.transformersJs['8x10'])} |`,
    `| 1 image × 100 classes | ${fmt(r.transformersJs['1x100'])} |`,
  );
  out.push('', '| text path | ms |', '| --- | ---: |');
  out.push(
    `| 1 image × 1,000 new prompts (cold) | ${fmt(r.text.coldMs, 0)} |`,
    `| the same again (text cache) | ${fmt(r.text.warmMs, 0)} |`,
  );
  out.push(
    `| 10 prompts, real length (${r.text.realLength} tokens) | ${fmt(r.text.tenPromptsRealMs)} |`,
    `| 10 prompts padded to 77 | ${fmt(r.text.tenPromptsPaddedMs)} |`,
  );
  out.push(
    '',
    `Peak RSS: fp32 server ${fmt(r.peakRssMiB.fp32Server, 0)} MiB, int8 server ${fmt(r.peakRssMiB.int8Server, 0)} MiB. int8 centred-embedding cosine (min): ${fmt(r.precision.centredCosineMin, 4)}.`,
  );
  out.push('', formatImmichRow(r.immich));
  if (r.cpuSplit !== undefined) {
    out.push(
      '',
      formatCpuSplit(r.cpuSplit.vgaJson).replace('1 × 10 at 16 clients', '640×480 base64 JSON, 1 × 10 at 16 clients'),
    );
    out.push(
      '',
      formatCpuSplit(r.cpuSplit.vgaMultipart).replace(
        '1 × 10 at 16 clients',
        '640×480 multipart, 1 × 10 at 16 clients',
      ),
    );
    out.push(
      '',
      formatCpuSplit(r.cpuSplit.largeJson).replace(
        '1 × 10 at 16 clients',
        '4000×3000 base64 JSON, 1 × 10 at 16 clients',
      ),
    );
  }
  out.push('', 'Peak RSS after 1,000 and 10,000 jobs: `npm run bench -- --memory` (long; its own run).');
  out.push('', '| target | measured | wanted | met |', '| --- | ---: | --- | --- |');
  for (const [name, value, wanted] of targets) {
    const [op, bound] = [wanted.slice(0, wanted.indexOf(' ')), Number(wanted.slice(wanted.indexOf(' ') + 1))];
    const met = op === '≥' ? value >= bound : op === '≤' ? value <= bound : value < bound;
    out.push(`| ${name} | ${fmt(value, 2)} | ${wanted} | ${met ? 'yes' : 'no'} |`);
  }
  out.push('', `Benchmark took ${fmt(r.elapsedSeconds, 0)} s.`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
