/**
 * Micro-benchmark of the request → pixel_values path alone (issue 12), in one process, no model:
 * - `640×480 base64 JSON`: JSON.parse of a classify body with one data URL, decodeImageString, preprocessing;
 * - `640×480 multipart`: the same JPEG as a GraphQL multipart request through the server's upload middleware
 *   (busboy, each file read into memory: src/graphql/multipart.ts) and readUploadedImages, then preprocessing;
 * - `4000×3000 JPEG (base64)`: a 12 MP photo-like JPEG as a data URL (shrink-on-load path).
 *
 * CPU time is the process's (process.cpuUsage: every thread, libvips' and libuv's included) over a run of distinct
 * images, divided by images; `main ms` is the event-loop thread's own (from /proc/self/task/<pid>/stat, Linux), so
 * what moved to worker threads shows. Robust to a shared machine, unlike wall time. Prints a table; asserts nothing.
 *
 * By itself: `npm run build && node dist/scripts/bench/preprocessPath.js [--images N] [--pool N|--in-thread]` (pool: the
 * server's PREPROCESS_WORKERS),
 * or `npm run bench -- --only preprocess`.
 */
import fs from 'node:fs';
import os from 'node:os';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Request, Response } from 'express';
import sharp from 'sharp';
import { decodeImageString, inspectImage, inspectImageWithSharp } from '../../src/clip/image/imageInput.js';
import { decodeRgb } from '../../src/clip/image/decode.js';
import { pixelValuesInto, preprocessImage, resizeWindow } from '../../src/clip/image/preprocess.js';
import { PreprocessPool } from '../../src/clip/image/preprocessPool.js';
import { parsePreprocessorConfig } from '../../src/clip/layouts/hfClip.js';
import { loadConfig } from '../../src/config.js';
import { createUploadMiddleware, readUploadedImages, type UploadedFile } from '../../src/graphql/uploads.js';
import type { ImageLimits, PreprocessorConfig } from '../../src/clip/types.js';
import { makeImage } from './images.js';
import { preprocessorConfigJson } from '../model/configFiles.js';
import { PRESETS } from '../model/presets.js';

/** OpenAI CLIP ViT-B/32's preprocessor_config.json (224, bicubic, shortest edge), as the test-model generator writes it. */
export const CLIP_PREPROCESSOR: PreprocessorConfig = parsePreprocessorConfig(
  JSON.parse(preprocessorConfigJson(PRESETS['vit-b-32'])) as Record<string, unknown>,
);

const LIMITS: ImageLimits = { maxBytes: 20 * 1024 * 1024, maxPixels: 40_000_000 };
const QUERY = 'mutation Classify($input: ClassifyInput!) { classify(input: $input) { id } }';
const CLASSES = ['cat', 'dog', 'car', 'tree', 'house', 'person', 'bird', 'boat', 'flower', 'mountain'];

export interface PathRow {
  name: string;
  images: number;
  /** Process CPU (all threads) per image. */
  cpuMs: number;
  /** Event-loop thread CPU per image (Linux; NaN elsewhere). */
  mainMs: number;
  /** Wall time per image, one image at a time. */
  wallMs: number;
}

export interface StageRow {
  stage: string;
  cpuMs: number;
}

/** The event-loop thread's CPU time so far, ms (utime + stime of /proc/self/task/<pid>/stat; 10 ms ticks). */
function mainThreadCpuMs(): number {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) of proc(5), counted from after the command name (field 3 here is index 0).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

function processCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

async function measure(name: string, count: number, run: (i: number) => Promise<void>): Promise<PathRow> {
  for (let i = 0; i < 3; i++) await run(i); // warm-up: JIT, libvips caches, worker start
  const cpu0 = processCpuMs();
  const main0 = mainThreadCpuMs();
  const wall0 = performance.now();
  for (let i = 0; i < count; i++) await run(i);
  return {
    name,
    images: count,
    cpuMs: (processCpuMs() - cpu0) / count,
    mainMs: (mainThreadCpuMs() - main0) / count,
    wallMs: (performance.now() - wall0) / count,
  };
}

/** A photo-like 12 MP JPEG (smooth gradient, a blob, sensor noise), distinct per seed. */
async function makeLargeJpeg(seed: number): Promise<Buffer> {
  const small = await makeImage(seed * 4);
  // Upscale a distinct 640×480 photo and add fresh noise, so every 12 MP image has its own pixels.
  const noise = await sharp({
    create: {
      width: 4000,
      height: 3000,
      channels: 3,
      background: '#000',
      noise: { type: 'gaussian', mean: 0, sigma: 6 + seed },
    },
  })
    .raw()
    .toBuffer();
  const base = await sharp(small.jpeg).resize(4000, 3000, { kernel: 'cubic' }).raw().toBuffer();
  for (let i = 0; i < base.length; i++) base[i] = Math.min(255, base[i]! + noise[i]!);
  return sharp(base, { raw: { width: 4000, height: 3000, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** A GraphQL multipart request (operations, map, one file) as the bytes a client sends. */
async function multipartBody(jpeg: Buffer): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({ query: QUERY, variables: { input: { files: [null], classes: CLASSES } } }),
  );
  form.append('map', JSON.stringify({ 0: ['variables.input.files.0'] }));
  form.append('0', new Blob([jpeg], { type: 'image/jpeg' }), '0.jpg');
  const response = new Response(form);
  return { body: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type')! };
}

const uploadMiddleware = createUploadMiddleware({
  maxFileBytes: LIMITS.maxBytes,
  maxFiles: 64,
  maxBodyBytes: 100 * 1024 * 1024,
});

/** The server's upload middleware over an in-memory request (an Express-like Readable), then the resolver's read. */
async function receiveMultipart(body: Buffer, contentType: string): Promise<Buffer> {
  const headers = {
    'content-type': contentType,
    'content-length': String(body.length),
    'apollo-require-preflight': 'true',
  };
  const req = Object.assign(Readable.from([body], { objectMode: false }), {
    headers,
    socket: new EventEmitter(),
    is: (type: string) => (type === 'multipart/form-data' ? type : false),
    get: (name: string) => headers[name.toLowerCase() as keyof typeof headers],
  });
  const res = Object.assign(new EventEmitter(), {
    setHeader: () => undefined,
    send: () => undefined,
    status: () => undefined,
  });
  const parsed = await new Promise<{ variables: { input: { files: { promise: UploadedFile }[] } } }>(
    (resolve, reject) => {
      uploadMiddleware(req as unknown as Request, res as unknown as Response, (error?: unknown) => {
        if (error !== undefined) reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        else
          resolve((req as unknown as { body: { variables: { input: { files: { promise: UploadedFile }[] } } } }).body);
      });
    },
  );
  // What GraphQLUpload's parseValue hands the resolver: each placeholder's promise.
  const [bytes] = await readUploadedImages(parsed.variables.input.files.map((upload) => upload.promise));
  return bytes!;
}

export interface PreprocessPathOptions {
  /** Distinct images per row. @default 48 */
  images?: number;
  /** Preprocess in a worker pool of this size; 0 on the calling thread. @default 0 */
  poolSize?: number;
  log?: (message: string) => void;
}

/** The three rows of the targets, plus a stage-by-stage split of the 640×480 base64 path (on this thread). */
export async function benchPreprocessPath(
  options: PreprocessPathOptions = {},
): Promise<{ rows: PathRow[]; stages: StageRow[]; poolSize: number }> {
  const count = options.images ?? 48;
  const poolSize = options.poolSize ?? 0;
  const log = options.log ?? (() => undefined);
  log(
    `preprocess path: making ${count} distinct 640×480 JPEGs and ${Math.max(2, Math.ceil(count / 8))} 4000×3000 ones`,
  );
  const small = await Promise.all(Array.from({ length: count + 3 }, (_, i) => makeImage(i * 4)));
  const bodies = small.map((image) =>
    JSON.stringify({ query: QUERY, variables: { input: { images: [image.dataUrl], classes: CLASSES } } }),
  );
  const forms = await Promise.all(small.map((image) => multipartBody(image.jpeg)));
  const largeCount = Math.max(2, Math.ceil(count / 8));
  const large: string[] = [];
  for (let i = 0; i < largeCount + 3; i++)
    large.push(`data:image/jpeg;base64,${(await makeLargeJpeg(i)).toString('base64')}`);
  const kib = (strings: readonly string[]) =>
    Math.round((strings.reduce((sum, d) => sum + d.length, 0) * 0.75) / strings.length / 1024);
  log(
    `preprocess path: JPEGs of ${kib(small.map((i) => i.dataUrl))} KiB (640×480) and ${kib(large)} KiB (4000×3000) on average`,
  );

  const pool = poolSize > 0 ? new PreprocessPool({ size: poolSize }) : undefined;
  const preprocess = (bytes: Buffer) =>
    pool
      ? pool.preprocess(bytes, CLIP_PREPROCESSOR, LIMITS, { field: 'images[0]' })
      : preprocessImage(bytes, CLIP_PREPROCESSOR, LIMITS, { field: 'images[0]' });
  try {
    const rows: PathRow[] = [];
    log('preprocess path: 640×480 base64 JSON');
    rows.push(
      await measure('640×480 JPEG, base64 JSON', count, async (i) => {
        const body = JSON.parse(bodies[i]!) as { variables: { input: { images: string[] } } };
        await preprocess(decodeImageString(body.variables.input.images[0]!, 'images[0]', LIMITS.maxBytes));
      }),
    );
    log('preprocess path: 640×480 multipart');
    rows.push(
      await measure('640×480 JPEG, multipart upload', count, async (i) => {
        await preprocess(await receiveMultipart(forms[i]!.body, forms[i]!.contentType));
      }),
    );
    log('preprocess path: 4000×3000 base64');
    rows.push(
      await measure('4000×3000 JPEG, base64 JSON', largeCount, async (i) => {
        await preprocess(decodeImageString(large[i]!, 'images[0]', LIMITS.maxBytes));
      }),
    );
    return { rows, stages: await stageSplit(bodies.slice(0, count)), poolSize };
  } finally {
    await pool?.close();
  }
}

/** Where the 640×480 base64 path's CPU goes, stage by stage (each stage run over every image, on this thread). */
async function stageSplit(bodies: readonly string[]): Promise<StageRow[]> {
  const stages: StageRow[] = [];
  const timed = async <T>(stage: string, run: () => Promise<T>): Promise<T> => {
    const cpu0 = processCpuMs();
    const result = await run();
    stages.push({ stage, cpuMs: (processCpuMs() - cpu0) / bodies.length });
    return result;
  };
  const parsed = await timed('JSON.parse of the body', async () =>
    bodies.map((b) => JSON.parse(b) as { variables: { input: { images: string[] } } }),
  );
  const bytes = await timed('base64 → bytes (decodeImageString)', async () =>
    parsed.map((p) => decodeImageString(p.variables.input.images[0]!, 'images[0]', LIMITS.maxBytes)),
  );
  // The fast reader's whole stage is tens of µs: warm it up as a running server is (with a pool, the rows above ran it
  // in the worker only), and let libvips' threads (busy with those rows) go quiet first, or their tail is charged to
  // it; the sharp path, measured after it, leaves its own tail to the decode stage.
  for (let round = 0; round < 200; round++) for (const b of bytes) await inspectImage(b, 'images[0]', LIMITS);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const headers = await timed('header check (inspectImage: fast JPEG/PNG reader)', async () => {
    const out = [];
    for (const b of bytes) out.push(await inspectImage(b, 'images[0]', LIMITS));
    return out;
  });
  await timed('header check, sharp metadata() path (inspectImageWithSharp)', async () => {
    for (const b of bytes) await inspectImageWithSharp(b, 'images[0]', LIMITS);
  });
  const decoded = await timed('JPEG decode to RGB (libvips)', async () => {
    const out = [];
    for (const [i, b] of bytes.entries()) out.push(await decodeRgb(b, LIMITS, 'images[0]', headers[i]));
    return out;
  });
  // 640×480 → 298×224, centre window 224×224 at x = 37.
  const window = { left: 37, top: 0, width: 224, height: 224 };
  await timed('exact PIL resize (bicubic, WebAssembly SIMD)', async () =>
    decoded.map((image) => resizeWindow(image, 298, 224, window, 3)),
  );
  await timed('exact PIL resize (bicubic, JavaScript passes)', async () =>
    decoded.map((image) => resizeWindow(image, 298, 224, window, 3, 'js')),
  );
  // pixelValuesInto = the resize above + rescale/normalise into CHW floats (the batch tensor's layout).
  const out = new Float32Array(3 * 224 * 224);
  await timed('exact resize (SIMD) + normalise to CHW floats', async () =>
    decoded.forEach((image) => pixelValuesInto(image, CLIP_PREPROCESSOR, out)),
  );
  return stages;
}

export function formatPreprocessPath(result: { rows: PathRow[]; stages: StageRow[]; poolSize: number }): string {
  const where = result.poolSize > 0 ? `worker pool of ${result.poolSize}` : 'the calling thread';
  const lines = [
    `Request → pixel_values, preprocessing on ${where} (CPU ms per image; process = all threads, main = event-loop thread):`,
    '',
    '| path | images | process CPU ms | main-thread CPU ms | wall ms | target |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  const targets = [4, 3, 12];
  result.rows.forEach((row, i) => {
    const target = targets[i]!;
    lines.push(
      `| ${row.name} | ${row.images} | ${row.cpuMs.toFixed(2)} | ${row.mainMs.toFixed(1)} | ${row.wallMs.toFixed(2)} | ≤ ${target} ${row.cpuMs <= target ? '✓' : '✗'} |`,
    );
  });
  lines.push('', '| 640×480 base64 stage (calling thread) | CPU ms |', '| --- | ---: |');
  for (const stage of result.stages) lines.push(`| ${stage.stage} | ${stage.cpuMs.toFixed(2)} |`);
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<void> {
  const value = (flag: string): string | undefined => {
    const at = argv.indexOf(flag);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const images = Number(value('--images') ?? 48);
  const poolSize = argv.includes('--in-thread')
    ? 0
    : Number(value('--pool') ?? loadConfig([], process.env).preprocessWorkers);
  const result = await benchPreprocessPath({ images, poolSize, log: (m) => process.stderr.write(`[bench] ${m}\n`) });
  process.stdout.write(
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node ${process.version}.\n\n${formatPreprocessPath(result)}\n`,
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  await main(process.argv.slice(2));
}
