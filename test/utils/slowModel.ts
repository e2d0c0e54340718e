/**
 * The slow-by-design random-weight model (the generator's `slow` preset, fp32 only), for tests where an inference
 * batch must take a while: an image tower of a third of ViT-B/32's cost per image in 2.6 MB, so starting a process
 * on it takes a moment, not the minutes of loading a model of real size. Generated once per checkout into
 * test/.models/slow (seconds, under 20 MB), under a lock, into a temporary directory renamed into place; regenerated
 * when the generator's version changes.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GENERATOR_VERSION, makeTestModel } from '../../scripts/make-test-model.js';
import { withDirLock } from './dirLock.js';
import { TINY_MODEL_DIR } from './testModel.js';

/** Where the model is written: beside the tiny one. */
export const SLOW_MODEL_DIR = path.join(path.dirname(TINY_MODEL_DIR), 'slow');
const STAMP_FILE = '.stamp.json';
const LOCK_DIR = `${SLOW_MODEL_DIR}.lock`;
/** Generating takes seconds, a minute under heavy load: a lock older than this is from a run that died. */
const STALE_LOCK_MS = 300_000;
const SEED = 0;

function stampOf(): string {
  return JSON.stringify({ GENERATOR_VERSION, preset: 'slow', seed: SEED, quantized: false });
}

async function isCurrent(): Promise<boolean> {
  return (await readFile(path.join(SLOW_MODEL_DIR, STAMP_FILE), 'utf8').catch(() => '')) === stampOf();
}

let ensured: Promise<string> | null = null;

/** Resolves with the model directory once it exists and is current. */
export function ensureSlowModel(): Promise<string> {
  ensured ??= (async () => {
    if (await isCurrent()) return SLOW_MODEL_DIR;
    return withDirLock(LOCK_DIR, { staleMs: STALE_LOCK_MS, pollMs: 250 }, async () => {
      if (await isCurrent()) return SLOW_MODEL_DIR;
      const temporary = `${SLOW_MODEL_DIR}.tmp-${process.pid}`;
      await rm(temporary, { recursive: true, force: true });
      await makeTestModel({ out: temporary, preset: 'slow', seed: SEED, quantized: false });
      await writeFile(path.join(temporary, STAMP_FILE), stampOf());
      await rm(SLOW_MODEL_DIR, { recursive: true, force: true });
      await rename(temporary, SLOW_MODEL_DIR);
      return SLOW_MODEL_DIR;
    });
  })();
  return ensured;
}
