/**
 * `--only classifiers` (issue 22's targets; printed, never asserted):
 * - images/s at 16 clients classifying against the imagenet-1k preset (built first) versus 10 inline classes, one
 *   image a job, alternating rounds;
 * - a classifier of distinct prompts built alone, then another while classify jobs on the preset are served (4
 *   clients): their prompts/s against raw ONNX Runtime's text tower at the server's text batch size on the same kind
 *   of prompts (the build shares the two cores with those jobs, so the alone row is the one to hold against raw).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClipTokenizer } from '../../src/clip/text/clipBpe.js';
import { loadModelFiles } from '../../src/clip/layouts/hfClip.js';
import { loadConfig } from '../../src/config.js';
import { CLASSES_10, manyClasses, type BenchImage } from './images.js';
import { loadRaw, textFeeds } from './rawOrt.js';
import { runLoad, startServer, type BenchServer, type JobInput } from './server.js';
import { median } from './stats.js';

export interface ClassifierBenchOptions {
  rounds: number;
  /** Jobs per load run. */
  jobs: number;
  /** The preset to classify against: imagenet-1k (80 templates), or imagenet-1k-simple for a quick run. */
  preset: string;
  /** Classes × templates of the classifier whose build is timed. */
  buildClasses: number;
  buildTemplates: number;
  nextImages: (k: number) => BenchImage[];
  log: (message: string) => void;
}

export interface ClassifierBenchRow {
  preset: string;
  presetBuildSeconds: number;
  inline10ImagesPerSecond: number;
  presetImagesPerSecond: number;
  buildPrompts: number;
  buildPromptsPerSecond: number;
  buildAlonePromptsPerSecond: number;
  rawTextPromptsPerSecond: number;
  textBatchSize: number;
  jobsServedWhileBuilding: number;
}

export async function benchClassifiers(
  root: string,
  modelDir: string,
  options: ClassifierBenchOptions,
): Promise<ClassifierBenchRow> {
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'bench-classifiers-'));
  const textBatchSize = loadConfig([], process.env).maxTextBatchSize;
  const server = await startServer(root, {
    CLIP_MODEL: modelDir,
    CLIP_PRECISION: 'fp32',
    IMAGE_CACHE_SIZE: '0',
    MODEL_CACHE_DIR: cacheDir,
    MAX_QUEUED_JOBS: '10000',
    MAX_QUEUED_IMAGES: '100000',
  });
  try {
    options.log(`building ${options.preset} for the model (its first job waits for it)`);
    const buildStarted = performance.now();
    await runLoad(server, 1, 1, () => presetJob(options));
    const presetBuildSeconds = (performance.now() - buildStarted) / 1000;
    const inline: number[] = [];
    const preset: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      options.log(`round ${round + 1}/${options.rounds}: 10 inline classes, then ${options.preset}, 16 clients`);
      const inlineJob = (): JobInput => ({ images: options.nextImages(1), classes: [...CLASSES_10] });
      inline.push((await runLoad(server, 16, options.jobs, inlineJob)).imagesPerSecond);
      preset.push((await runLoad(server, 16, options.jobs, () => presetJob(options))).imagesPerSecond);
    }
    const alone = await timedBuild(server, options, false);
    const build = await timedBuild(server, options, true);
    const raw = await rawTextRate(modelDir, build.sample, textBatchSize, options.rounds);
    return {
      preset: options.preset,
      presetBuildSeconds,
      inline10ImagesPerSecond: median(inline),
      presetImagesPerSecond: median(preset),
      buildPrompts: build.prompts,
      buildPromptsPerSecond: build.promptsPerSecond,
      buildAlonePromptsPerSecond: alone.promptsPerSecond,
      rawTextPromptsPerSecond: raw,
      textBatchSize,
      jobsServedWhileBuilding: build.jobsServed,
    };
  } finally {
    await server.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

function presetJob(options: ClassifierBenchOptions): JobInput {
  return { images: options.nextImages(1), classes: [], classifier: options.preset };
}

/** Creates a classifier of distinct prompts and waits for READY, with 4 clients classifying against the preset if `serve`. */
async function timedBuild(
  server: BenchServer,
  options: ClassifierBenchOptions,
  serve: boolean,
): Promise<{ prompts: number; promptsPerSecond: number; jobsServed: number; sample: string[] }> {
  const classes = manyClasses(options.buildClasses, `build ${Date.now()}`);
  const templates = Array.from({ length: options.buildTemplates }, (_, i) => `picture ${i} of a {}.`);
  const prompts = classes.length * templates.length;
  options.log(
    `building a classifier of ${prompts} prompts${serve ? ` while classify jobs on ${options.preset} run` : ' alone'}`,
  );
  const started = performance.now();
  const created = await graphql<{ createClassifier: { id: string } }>(
    server.url,
    'mutation ($input: CreateClassifierInput!) { createClassifier(input: $input) { id } }',
    { input: { classes, prompt: { templates } } },
  );
  const id = created.createClassifier.id;
  let ready = !serve;
  let jobsServed = 0;
  const served = (async () => {
    while (serve && !ready) {
      await runLoad(server, 4, 4, () => presetJob(options));
      jobsServed += 4;
    }
  })();
  for (;;) {
    const state = await graphql<{ classifier: { status: string; error: { message: string } | null } }>(
      server.url,
      'query ($id: ID!) { classifier(id: $id) { status error { message } } }',
      { id },
    );
    if (state.classifier.status === 'FAILED') throw new Error(`the build failed: ${state.classifier.error?.message}`);
    if (state.classifier.status === 'READY') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const seconds = (performance.now() - started) / 1000;
  ready = true;
  await served;
  const sample = classes.slice(0, 64).flatMap((c) => templates.slice(0, 4).map((t) => t.replace('{}', c)));
  return { prompts, promptsPerSecond: prompts / seconds, jobsServed, sample };
}

/** Raw ONNX Runtime's text tower on batches of `batchSize` of the same kind of prompts, at their real length. */
async function rawTextRate(modelDir: string, prompts: string[], batchSize: number, rounds: number): Promise<number> {
  const files = await loadModelFiles(modelDir, 'fp32');
  const tokenizer = await ClipTokenizer.fromFile(files.tokenizerPath, { contextLength: 77 });
  const ids = prompts.slice(0, batchSize).map((p) => Array.from(tokenizer.encode(p)));
  const raw = await loadRaw(modelDir);
  try {
    const length = Math.max(...ids.map((p) => p.length));
    await raw.text.run(textFeeds(ids, length));
    const times: number[] = [];
    for (let i = 0; i < Math.max(3, rounds * 3); i++) {
      const started = performance.now();
      await raw.text.run(textFeeds(ids, length));
      times.push(performance.now() - started);
    }
    return (ids.length * 1000) / median(times);
  } finally {
    await raw.release();
  }
}

async function graphql<T>(url: string, query: string, variables: Record<string, unknown>): Promise<T> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
  if (body.data === undefined || body.data === null) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

export function formatClassifierRow(row: ClassifierBenchRow): string {
  const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : 'n/a');
  return [
    `Classifiers (${row.preset} built once in ${row.presetBuildSeconds.toFixed(1)} s):`,
    `  16 clients, 1 image a job: 10 inline classes ${row.inline10ImagesPerSecond.toFixed(1)} images/s, ${row.preset} ${row.presetImagesPerSecond.toFixed(1)} images/s (× ${ratio(row.presetImagesPerSecond, row.inline10ImagesPerSecond)}; target ≥ 0.97)`,
    `  building ${row.buildPrompts} prompts alone: ${row.buildAlonePromptsPerSecond.toFixed(0)} prompts/s (× ${ratio(row.buildAlonePromptsPerSecond, row.rawTextPromptsPerSecond)} of raw; target ≥ 0.9)`,
    `  building ${row.buildPrompts} prompts while serving (${row.jobsServedWhileBuilding} jobs served meanwhile): ${row.buildPromptsPerSecond.toFixed(0)} prompts/s; raw ONNX Runtime text tower at batch ${row.textBatchSize}: ${row.rawTextPromptsPerSecond.toFixed(0)} prompts/s (× ${ratio(row.buildPromptsPerSecond, row.rawTextPromptsPerSecond)} of raw, sharing the cores with the jobs)`,
  ].join('\n');
}
