/**
 * @file The text room's public surface: one loader for every tokenizer family, picked from the files.
 *
 * @example
 * const tokenizer = await loadTextTokenizer(`${modelDir}/textual`, { contextLength: 77 });
 * const ids = padIds(tokenizer.encode('a photo of a cat'), tokenizer.contextLength, tokenizer.padId);
 */
import path from 'node:path';
import { ClipTokenizer } from './clipBpe.js';
import { isClipBpe, readHfTokenizerFiles, TOKENIZER_JSON } from './hfTokenizerFiles.js';
import { HfTextTokenizer } from './hfTokenizer.js';
import type { TextTokenizer, TextTokenizerOptions } from './types.js';

export type { TextClean, TextTokenizer, TextTokenizerOptions, TokenizerFamily } from './types.js';
export { TEXT_CLEANS } from './types.js';
export { ClipTokenizer, cleanClipText, EOT_TOKEN, SOT_TOKEN, type TokenBatch } from './clipBpe.js';
export { HfTextTokenizer, DEFAULT_CLEAN } from './hfTokenizer.js';
export { cleanText } from './clean.js';

/**
 * Reads `tokenizer.json` (+ `tokenizer_config.json`, `special_tokens_map.json` when present) in `dir`, picks the
 * family from the files' content (never from a model name), validates; errors name the file and what is wrong.
 */
export async function loadTextTokenizer(dir: string, options: TextTokenizerOptions): Promise<TextTokenizer> {
  const files = await readHfTokenizerFiles(dir);
  // Before reading the framing: CLIP BPE frames the text itself, whatever the file's post-processor says.
  if (isClipBpe(files)) {
    try {
      return ClipTokenizer.fromJSON(files.tokenizer, { contextLength: options.contextLength });
    } catch (error) {
      if (error instanceof TypeError) throw error;
      throw new Error(`${path.join(dir, TOKENIZER_JSON)}: ${(error as Error).message}`, { cause: error });
    }
  }
  return HfTextTokenizer.fromFiles(files, options);
}

/** ids padded with padId to exactly `length` (fixed-L graphs). */
export function padIds(ids: readonly number[], length: number, padId: number): number[] {
  if (!Number.isInteger(length) || length < 0)
    throw new RangeError(`expected length to be a non-negative integer, got ${String(length)}`);
  if (ids.length > length) throw new RangeError(`expected at most ${length} ids to pad, got ${ids.length}`);
  const padded = ids.slice();
  while (padded.length < length) padded.push(padId);
  return padded;
}

/**
 * The attention mask of `ids` padded to `length`: 1 on the real positions, 0 on the padding (M-CLIP's graphs take it
 * as `attention_mask`; built from the real length, not from `ids != padId`, so a pad token inside a text stays attended).
 */
export function attentionMask(ids: readonly number[], length: number): number[] {
  if (!Number.isInteger(length) || length < 0)
    throw new RangeError(`expected length to be a non-negative integer, got ${String(length)}`);
  if (ids.length > length) throw new RangeError(`expected at most ${length} ids, got ${ids.length}`);
  return Array.from({ length }, (_, i) => (i < ids.length ? 1 : 0));
}
