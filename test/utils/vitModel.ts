/**
 * The ViT-B/32-shaped random-weight model (the generator's `vit-b-32` preset, fp32 only), for tests where the
 * size of a real model matters: an inference batch that takes a while, sessions of real size. Generated once
 * per checkout into test/.models/vit-b-32 (about 15 s of CPU and 1.2 GB), under a lock, into a temporary
 * directory renamed into place; regenerated when the generator's version changes.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GENERATOR_VERSION, makeTestModel } from '../../scripts/make-test-model.js';
import { withDirLock } from './dirLock.js';
import { TINY_MODEL_DIR } from './testModel.js';

/** Where the model is written: beside the tiny one. */
export const VIT_MODEL_DIR = path.join(path.dirname(TINY_MODEL_DIR), 'vit-b-32');
const STAMP_FILE = '.stamp.json';
const LOCK_DIR = `${VIT_MODEL_DIR}.lock`;
/** Generating takes ~15 s alone, more under load: a lock older than this is from a run that died. */
const STALE_LOCK_MS = 600_000;
const SEED = 0;

function stampOf(): string {
  return JSON.stringify({ GENERATOR_VERSION, preset: 'vit-b-32', seed: SEED, quantized: false });
}

async function isCurrent(): Promise<boolean> {
  return (await readFile(path.join(VIT_MODEL_DIR, STAMP_FILE), 'utf8').catch(() => '')) === stampOf();
}

let ensured: Promise<string> | null = null;

/** Resolves with the model directory once it exists and is current. */
export function ensureVitModel(): Promise<string> {
  ensured ??= (async () => {
    if (await isCurrent()) return VIT_MODEL_DIR;
    return withDirLock(LOCK_DIR, { staleMs: STALE_LOCK_MS, pollMs: 250 }, async () => {
      if (await isCurrent()) return VIT_MODEL_DIR;
      const temporary = `${VIT_MODEL_DIR}.tmp-${process.pid}`;
      await rm(temporary, { recursive: true, force: true });
      await makeTestModel({ out: temporary, preset: 'vit-b-32', seed: SEED, quantized: false });
      await writeFile(path.join(temporary, STAMP_FILE), stampOf());
      await rm(VIT_MODEL_DIR, { recursive: true, force: true });
      await rename(temporary, VIT_MODEL_DIR);
      return VIT_MODEL_DIR;
    });
  })();
  return ensured;
}
