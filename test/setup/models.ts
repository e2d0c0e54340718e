/**
 * vitest globalSetup of the integration and system tiers: makes sure the generated test models (the tiny
 * random-weight CLIP model in TINY_MODEL_DIR, the immich-layout ones, the Hugging Face-layout SigLIP one) exist
 * before any test runs, regenerating each whenever the generator's source (or its version, seed or preset)
 * changes. Several vitest runs may start at once on one checkout, so generation happens under a lock, into a
 * temporary directory that is renamed into place.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENERATOR_VERSION, makeHfSiglipModel, makeImmichModel, makeTestModel } from '../../scripts/make-test-model.js';
import { withDirLock } from '../utils/dirLock.js';
import {
  HF_SIGLIP_TEST_MODEL_DIR,
  IMMICH_TEST_MODELS,
  TINY_MODEL_DIR,
  type ImmichTestModel,
} from '../utils/testModel.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const GENERATOR_SOURCES = [path.join(ROOT, 'scripts', 'make-test-model.ts'), path.join(ROOT, 'scripts', 'model')];
const STAMP_FILE = '.stamp.json';
const SEED = 0;
/** A lock older than this is from a run that died: generating tiny takes about a second. */
const STALE_LOCK_MS = 120_000;
const LOCK_POLL_MS = 100;

interface Stamp {
  key: string;
  files: string[];
}

/** Hash of everything that determines the generated files. */
async function generatorKey(variant: unknown = 'tiny'): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify({ GENERATOR_VERSION, preset: variant, seed: SEED }));
  for (const source of GENERATOR_SOURCES) {
    const files = (await stat(source)).isDirectory()
      ? (await readdir(source, { recursive: true }))
          .filter((f) => f.endsWith('.ts'))
          .sort()
          .map((f) => path.join(source, f))
      : [source];
    for (const file of files) hash.update(path.relative(ROOT, file)).update(await readFile(file));
  }
  return hash.digest('hex');
}

async function isCurrent(dir: string, key: string): Promise<boolean> {
  try {
    const stamp = JSON.parse(await readFile(path.join(dir, STAMP_FILE), 'utf8')) as Stamp;
    if (stamp.key !== key) return false;
    await Promise.all(stamp.files.map((file) => stat(path.join(dir, file))));
    return true;
  } catch {
    return false;
  }
}

function withLock<T>(lockDir: string, body: () => Promise<T>): Promise<T> {
  return withDirLock(lockDir, { staleMs: STALE_LOCK_MS, pollMs: LOCK_POLL_MS }, body);
}

/** Leftovers of runs that were killed mid-generation (only safe to remove while holding the lock). */
async function removeLeftovers(dir: string): Promise<void> {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  for (const entry of await readdir(parent)) {
    if (entry.startsWith(`${base}.tmp-`) || entry.startsWith(`${base}.old-`))
      await rm(path.join(parent, entry), { recursive: true, force: true });
  }
}

/**
 * Generates the tiny model (seed 0, with int8 variants) into `dir` unless a current one is there.
 * Safe to call from several processes at once: one generates, the others wait and reuse it.
 * @returns whether it had to generate.
 */
export async function ensureTinyModel(dir: string = TINY_MODEL_DIR): Promise<'current' | 'generated'> {
  return ensureGenerated(dir, await generatorKey(), (out) =>
    makeTestModel({ out, preset: 'tiny', seed: SEED, quantized: true }),
  );
}

/** Generates one immich-layout test model (see IMMICH_TEST_MODELS) unless a current one is there; same locking as the tiny model. */
export async function ensureImmichModel(model: ImmichTestModel): Promise<'current' | 'generated'> {
  const { dir, ...variant } = model;
  return ensureGenerated(dir, await generatorKey(variant), (out) =>
    makeImmichModel({
      out,
      preset: model.preset,
      seed: SEED,
      externalData: model.externalData,
      dynamic: model.dynamic,
    }),
  );
}

/** Generates the Hugging Face-layout SigLIP test model unless a current one is there; same locking as the tiny model. */
export async function ensureHfSiglipModel(dir: string = HF_SIGLIP_TEST_MODEL_DIR): Promise<'current' | 'generated'> {
  return ensureGenerated(dir, await generatorKey('hf-siglip'), async (out) => {
    const summary = await makeHfSiglipModel({ out, seed: SEED });
    return { files: summary.files.map((file) => ({ path: file })) };
  });
}

/**
 * Leaves a current model in `dir`: when its stamp differs from `key`, `generate` writes one under the lock into a
 * temporary directory, which is stamped and renamed into place.
 */
async function ensureGenerated(
  dir: string,
  key: string,
  generate: (out: string) => Promise<{ files: { path: string }[] }>,
): Promise<'current' | 'generated'> {
  if (await isCurrent(dir, key)) return 'current';
  await mkdir(path.dirname(dir), { recursive: true });
  return withLock(`${dir}.lock`, async () => {
    if (await isCurrent(dir, key)) return 'current';
    await removeLeftovers(dir);
    const temporary = `${dir}.tmp-${process.pid}`;
    const summary = await generate(temporary);
    const stamp: Stamp = { key, files: summary.files.map((file) => file.path) };
    await writeFile(path.join(temporary, STAMP_FILE), `${JSON.stringify(stamp, null, 2)}\n`);
    const old = `${dir}.old-${process.pid}`;
    await rename(dir, old).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await rename(temporary, dir);
    await rm(old, { recursive: true, force: true });
    return 'generated';
  });
}

/** Generates the tiny model unless a current one is there, saying so when it had to. */
export async function setupTinyModel(): Promise<void> {
  const started = performance.now();
  if ((await ensureTinyModel()) === 'generated') {
    console.log(
      `globalSetup: generated the tiny test model in ${TINY_MODEL_DIR} (${Math.round(performance.now() - started)} ms)`,
    );
  }
}

export default async function setup(): Promise<void> {
  await setupTinyModel();
  for (const model of Object.values(IMMICH_TEST_MODELS)) {
    const t = performance.now();
    if ((await ensureImmichModel(model)) === 'generated') {
      console.log(
        `globalSetup: generated the immich-layout test model ${model.preset} in ${model.dir} (${Math.round(performance.now() - t)} ms)`,
      );
    }
  }
  const t = performance.now();
  if ((await ensureHfSiglipModel()) === 'generated') {
    console.log(
      `globalSetup: generated the Hugging Face-layout SigLIP test model in ${HF_SIGLIP_TEST_MODEL_DIR} (${Math.round(performance.now() - t)} ms)`,
    );
  }
}
