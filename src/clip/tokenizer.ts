/**
 * The text tokenizer a model gets, behind the interface of `text/index.ts` (the tokenizer families). Until the
 * families land, every model runs CLIP's BPE tokenizer (text/clipBpe.ts) through this adapter; afterwards this
 * module only re-exports `loadTextTokenizer`.
 */
import path from 'node:path';
import { ClipTokenizer } from './text/clipBpe.js';
import type { TextCleanName } from './layouts/modelSpec.js';

export type TokenizerFamily = 'clip-bpe' | 'xlm-r' | 'siglip';

/** A loaded tokenizer: ids with the specials, truncated to the context keeping the end token last, not padded. */
export interface TextTokenizer {
  readonly family: TokenizerFamily;
  readonly contextLength: number;
  readonly padId: number;
  /** The ids of the shortest valid prompt (to feed a text input a graph needs but we do not use). */
  readonly minimalIds: readonly number[];
  encode(text: string): number[];
}

export interface TextTokenizerOptions {
  contextLength: number;
  clean?: TextCleanName | undefined;
}

/** Loads the tokenizer in `dir` (its `tokenizer.json`). */
export async function loadTextTokenizer(dir: string, options: TextTokenizerOptions): Promise<TextTokenizer> {
  const tokenizer = await ClipTokenizer.fromFile(path.join(dir, 'tokenizer.json'), { contextLength: options.contextLength });
  return {
    family: 'clip-bpe',
    contextLength: tokenizer.contextLength,
    padId: tokenizer.padId,
    minimalIds: [tokenizer.sotId, tokenizer.eotId],
    encode: (text) => tokenizer.encode(text),
  };
}

/** `ids` padded with `padId` to exactly `length` (ids longer than that are an error: encode truncates). */
export function padIds(ids: readonly number[], length: number, padId: number): number[] {
  if (ids.length > length) throw new RangeError(`expected at most ${length} ids, got ${ids.length}`);
  return [...ids, ...new Array<number>(length - ids.length).fill(padId)];
}
