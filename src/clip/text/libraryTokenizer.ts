/**
 * @file The `@huggingface/tokenizers` Tokenizer class, typed. The package's type declarations re-export it through an
 * extensionless path that NodeNext resolution cannot follow, so TypeScript sees it as `any`; the shape we rely on is
 * stated here, once (as hfNormalizers.ts does for the normalisers).
 */
import * as tokenizers from '@huggingface/tokenizers';
import type { LibraryNormalizer } from './hfNormalizers.js';

/** What an encoding carries that we read. */
export interface LibraryEncoding {
  ids: number[];
}

/** A tokenizer built from a parsed `tokenizer.json`. */
export interface LibraryTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): LibraryEncoding;
  /** The normaliser the file declares (public in the library); hfTokenizer.ts swaps in an exact one. */
  normalizer: LibraryNormalizer | null;
}

/** `new LibraryTokenizer(tokenizerJson, tokenizerConfig)`. */
export const LibraryTokenizer = (
  tokenizers as unknown as { Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => LibraryTokenizer }
).Tokenizer;
