/**
 * A model's identity for stored artefacts computed from it (a classifier's weights): a hash of the files it was
 * loaded from (path inside its directory, size and modification time) and the precision. A new download or a changed
 * file gives a new fingerprint, so weights embedded by other files are never reused; reading the files' bytes would
 * cost seconds per start for a large model and tell nothing more in practice.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Files that make the model (graphs, their external data, tokenizer and configuration); locks and partial downloads are not. */
const MODEL_FILE = /\.(onnx|onnx_data|json|txt|model|bin)$/;

export async function modelFingerprint(dir: string, precision: string): Promise<string> {
  const hash = createHash('sha256').update(`precision=${precision}\n`);
  for (const file of await listFiles(dir)) {
    const info = await stat(path.join(dir, file));
    hash.update(`${file}\t${info.size}\t${Math.round(info.mtimeMs)}\n`);
  }
  return hash.digest('hex');
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
