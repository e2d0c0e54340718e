/**
 * Classifiers in this process's memory; given a directory (under MODEL_CACHE_DIR), each record is also written as
 * `records/<id>.json` (presets are not: they are defined in code) and each set of weights as `weights/<key>.f32` (little-endian float32, classes × dimensions),
 * and `open()` reads them back: a restart finds its classifiers READY without embedding a prompt again.
 * Files are written to a temporary name and renamed, so a crash never leaves half a file under the real name.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClassifierStore } from '../ClassifierStore.js';
import { classifierFromJSON, classifierToJSON } from '../serialise.js';
import type { Classifier } from '../types.js';

export interface MemoryClassifierStoreOptions {
  /** Where records and weights persist; memory only when absent. */
  dir?: string | undefined;
}

const SAFE_NAME = /^[\w.-]+$/;

export class MemoryClassifierStore implements ClassifierStore {
  readonly #records = new Map<string, Classifier>();
  readonly #weights = new Map<string, Float32Array>();
  readonly #dir: string | undefined;

  constructor(options: MemoryClassifierStoreOptions = {}) {
    this.#dir = options.dir;
  }

  /** Reads the records kept in the directory (unreadable ones are skipped: `onSkipped` says which). */
  async open(onSkipped?: (file: string, error: unknown) => void): Promise<void> {
    if (this.#dir === undefined) return;
    const files = await readdir(path.join(this.#dir, 'records')).catch(() => []);
    for (const file of files) {
      if (!file.endsWith('.json')) continue;
      try {
        const record = classifierFromJSON(await readFile(path.join(this.#dir, 'records', file), 'utf8'));
        this.#records.set(record.id, record);
      } catch (error) {
        onSkipped?.(file, error);
      }
    }
  }

  async get(id: string): Promise<Classifier | undefined> {
    return this.#records.get(id);
  }

  async list(): Promise<Classifier[]> {
    return [...this.#records.values()].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  async put(classifier: Classifier): Promise<void> {
    this.#records.set(classifier.id, classifier);
    // Presets are defined in code and stored again at every start; only their weights need keeping.
    if (this.#dir !== undefined && !classifier.preset && SAFE_NAME.test(classifier.id))
      await writeAtomically(path.join(this.#dir, 'records', `${classifier.id}.json`), classifierToJSON(classifier));
  }

  async delete(id: string): Promise<boolean> {
    const existed = this.#records.delete(id);
    if (this.#dir !== undefined && SAFE_NAME.test(id))
      await rm(path.join(this.#dir, 'records', `${id}.json`), { force: true });
    return existed;
  }

  async loadWeights(key: string): Promise<Float32Array | undefined> {
    const held = this.#weights.get(key);
    if (held !== undefined || this.#dir === undefined || !SAFE_NAME.test(key)) return held;
    try {
      const bytes = await readFile(path.join(this.#dir, 'weights', `${key}.f32`));
      const weights = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      this.#weights.set(key, weights);
      return weights;
    } catch {
      return undefined;
    }
  }

  async saveWeights(key: string, weights: Float32Array): Promise<void> {
    this.#weights.set(key, weights);
    if (this.#dir !== undefined && SAFE_NAME.test(key))
      await writeAtomically(
        path.join(this.#dir, 'weights', `${key}.f32`),
        new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength),
      );
  }

  async close(): Promise<void> {
    this.#records.clear();
    this.#weights.clear();
  }
}

async function writeAtomically(file: string, data: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, data);
  await rename(temporary, file);
}
