/**
 * @file The `@huggingface/tokenizers` normaliser classes this room swaps at run time. The package's type
 * declarations re-export them through extensionless paths that NodeNext resolution cannot follow, so the runtime
 * classes are taken from the module namespace here, once, with the small shape we rely on.
 */
import * as tokenizers from '@huggingface/tokenizers';

/** What the library calls: a normaliser is callable (`this.normalizer(text)`) and has `normalize`. */
export interface LibraryNormalizer {
  (text: string): string;
  normalize(text: string): string;
}

/** The library's `SequenceNormalizer` instance shape. */
export interface LibrarySequenceNormalizer extends LibraryNormalizer {
  normalizers: (LibraryNormalizer | null)[];
}

interface NormalizerClasses {
  Normalizer: abstract new (config: object) => LibraryNormalizer;
  PrecompiledNormalizer: abstract new (config: object) => LibraryNormalizer;
  SequenceNormalizer: abstract new (config: object) => LibrarySequenceNormalizer;
}

const classes = tokenizers as unknown as NormalizerClasses;
for (const name of ['Normalizer', 'PrecompiledNormalizer', 'SequenceNormalizer'] as const) {
  if (typeof classes[name] !== 'function')
    throw new Error(`@huggingface/tokenizers no longer exports ${name}; the text room needs it`);
}

/** Base class of every library normaliser (makes instances callable). */
export const NormalizerBase = classes.Normalizer;

export function isPrecompiledNormalizer(value: unknown): boolean {
  return value instanceof classes.PrecompiledNormalizer;
}

export function isSequenceNormalizer(value: unknown): value is LibrarySequenceNormalizer {
  return value instanceof classes.SequenceNormalizer;
}
