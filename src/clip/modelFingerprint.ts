/**
 * A model's identity for stored artefacts computed from it (a classifier's weights): a hash of the precision and,
 * for each file it was loaded from, its path inside the model directory, its size, and samples of its bytes (the
 * first and last MiB and evenly spaced pieces between). Copies of the same files on other machines (a cluster's
 * workers, each with its own download) get the same fingerprint, so weights built by one worker serve them all; a
 * new export or a fine-tune of the same size changes the sampled bytes. Sampling, not hashing whole files, keeps it
 * to a few MiB of reads per file for models of hundreds of MB.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';

/** Files that make the model (graphs, their external data, tokenizer and configuration); locks and partial downloads are not. */
const MODEL_FILE = /\.(onnx|onnx_data|json|txt|model|bin)$/;
/** The head and the tail hashed of every file (all of a file up to twice this). */
const EDGE_BYTES = 1024 * 1024;
/** Pieces hashed between head and tail, evenly spaced, and the size of each. */
const MIDDLE_SAMPLES = 32;
const SAMPLE_BYTES = 64 * 1024;

export async function modelFingerprint(dir: string, precision: string): Promise<string> {
  const hash = createHash('sha256').update(`precision=${precision}\n`);
  for (const file of await listFiles(dir)) await hashFile(hash, dir, file);
  return hash.digest('hex');
}

async function hashFile(hash: Hash, dir: string, file: string): Promise<void> {
  const handle = await open(path.join(dir, file));
  try {
    const { size } = await handle.stat();
    hash.update(`${file}\t${size}\n`);
    for (const [offset, length] of sampleRanges(size)) {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
}

/** [offset, length] pieces of a file of `size` bytes: all of it when small, else head, middle samples and tail. */
export function sampleRanges(size: number): [number, number][] {
  if (size <= 2 * EDGE_BYTES) return [[0, size]];
  const ranges: [number, number][] = [[0, EDGE_BYTES]];
  const middle = size - 2 * EDGE_BYTES - SAMPLE_BYTES;
  for (let i = 1; i <= MIDDLE_SAMPLES; i++) {
    ranges.push([EDGE_BYTES + Math.floor((middle * i) / (MIDDLE_SAMPLES + 1)), SAMPLE_BYTES]);
  }
  ranges.push([size - EDGE_BYTES, EDGE_BYTES]);
  return ranges;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter(
      (entry) =>
        (entry.isFile() || entry.isSymbolicLink()) && MODEL_FILE.test(entry.name) && !entry.name.startsWith('.'),
    )
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}
