/**
 * @file The Hugging Face-tokenizer families (`xlm-r`, `siglip`, `nllb`, `bert`): open_clip's `HFTokenizer` over a
 * `tokenizer.json`. open_clip cleans the text (`clean.ts`), then transformers encodes it with the file's
 * post-processor framing, truncated to the context length with the framing kept (`truncation=True`), and pads with
 * the tokenizer's pad id. `tokenizer.json` runs in `@huggingface/tokenizers` with its `Precompiled` normalisers
 * replaced by the exact one (`precompiled.ts`); padding is the caller's (`padIds`).
 */
import path from 'node:path';
import { cleanText } from './clean.js';
import {
  detectFamily,
  effectiveFraming,
  isRecord,
  padTokenId,
  TOKENIZER_CONFIG_JSON,
  TOKENIZER_JSON,
  type Framing,
  type HfTokenizerFiles,
  type JsonRecord,
} from './hfTokenizerFiles.js';
import { isPrecompiledNormalizer, isSequenceNormalizer, type LibraryNormalizer } from './hfNormalizers.js';
import { LibraryTokenizer } from './libraryTokenizer.js';
import { ExactPrecompiledNormalizer, PrecompiledCharsmap } from './precompiled.js';
import {
  TEXT_CLEANS,
  type TextClean,
  type TextTokenizer,
  type TextTokenizerOptions,
  type TokenizerFamily,
} from './types.js';

/** The HF families and the clean open_clip applies to each when the model config names none. */
export const DEFAULT_CLEAN = {
  'xlm-r': 'whitespace',
  siglip: 'canonicalize',
  nllb: 'whitespace',
  bert: 'whitespace',
} as const satisfies Record<HfFamily, TextClean>;

export type HfFamily = Exclude<TokenizerFamily, 'clip-bpe'>;

/** Characters tokenized per context position at most (see `#reachable`). */
const MAX_CHARS_PER_TOKEN = 16;

/** Replaces each `Precompiled` normaliser the library built (it approximates them with NFKC) with the exact one. */
function exactNormalizer(built: LibraryNormalizer | null, config: unknown, file: string): LibraryNormalizer | null {
  if (built === null || !isRecord(config)) return built;
  if (isPrecompiledNormalizer(built)) {
    const charsmap = config['precompiled_charsmap'];
    // Rust's tokenizers treats a missing charsmap as no normalisation at all.
    if (charsmap === null || charsmap === undefined || charsmap === '') return null;
    if (typeof charsmap !== 'string') throw new Error(`${file}: expected precompiled_charsmap to be a base64 string`);
    try {
      return new ExactPrecompiledNormalizer(PrecompiledCharsmap.fromBase64(charsmap));
    } catch (error) {
      throw new Error(`${file}: invalid Precompiled normalizer: ${(error as Error).message}`, { cause: error });
    }
  }
  if (isSequenceNormalizer(built)) {
    const configs = Array.isArray(config['normalizers']) ? (config['normalizers'] as unknown[]) : [];
    built.normalizers = built.normalizers.map((n, i) => exactNormalizer(n, configs[i], file));
  }
  return built;
}

/** One Hugging Face tokenizer of the `xlm-r`, `siglip`, `nllb` or `bert` family. */
export class HfTextTokenizer implements TextTokenizer {
  readonly family: HfFamily;
  readonly contextLength: number;
  readonly padId: number;
  readonly minimalIds: readonly number[];
  /** The open_clip clean applied before tokenizing. */
  readonly clean: TextClean;
  /** The `tokenizer.json` vocabulary size (model vocabulary plus added tokens beyond it). */
  readonly vocabSize: number;
  readonly #tokenizer: LibraryTokenizer;
  readonly #framing: Framing;

  private constructor(
    family: HfFamily,
    tokenizer: LibraryTokenizer,
    framing: Framing,
    padId: number,
    clean: TextClean,
    contextLength: number,
    vocabSize: number,
  ) {
    this.family = family;
    this.#tokenizer = tokenizer;
    this.#framing = framing;
    this.padId = padId;
    this.clean = clean;
    this.contextLength = contextLength;
    this.minimalIds = Object.freeze([...framing.prefix, ...framing.suffix]);
    this.vocabSize = vocabSize;
  }

  /** Builds the tokenizer from parsed files; throws naming the file at fault. */
  static fromFiles(files: HfTokenizerFiles, options: TextTokenizerOptions): HfTextTokenizer {
    const file = path.join(files.dir, TOKENIZER_JSON);
    const framing = effectiveFraming(files);
    const family = detectFamily(files, framing);
    if (family === 'clip-bpe') throw new Error(`${file}: is a CLIP BPE tokenizer; load it with ClipTokenizer`);
    const { contextLength } = options;
    const specials = framing.prefix.length + framing.suffix.length;
    if (!Number.isInteger(contextLength) || contextLength <= specials) {
      throw new TypeError(
        `expected contextLength to be an integer > ${specials} (the ${family} special tokens), got ${String(contextLength)}`,
      );
    }
    const padId = padTokenId(files);
    if (padId === undefined) {
      throw new Error(
        `${path.join(files.dir, TOKENIZER_CONFIG_JSON)}: no pad_token (nor in special_tokens_map.json or tokenizer.json's padding); the graph needs the pad id`,
      );
    }
    let tokenizer: LibraryTokenizer;
    try {
      tokenizer = new LibraryTokenizer(files.tokenizer, {});
    } catch (error) {
      throw new Error(`${file}: ${(error as Error).message}`, { cause: error });
    }
    tokenizer.normalizer = exactNormalizer(tokenizer.normalizer, files.tokenizer['normalizer'], file);
    const clean = options.clean ?? DEFAULT_CLEAN[family];
    if (!TEXT_CLEANS.includes(clean))
      throw new TypeError(`expected clean to be one of ${TEXT_CLEANS.join(', ')}, got ${String(clean)}`);
    return new HfTextTokenizer(
      family,
      tokenizer,
      framing,
      padId,
      clean,
      contextLength,
      vocabularySize(files.tokenizer),
    );
  }

  encode(text: string): number[] {
    const body = this.encodeBody(text);
    const room = this.contextLength - this.#framing.prefix.length - this.#framing.suffix.length;
    return [...this.#framing.prefix, ...(body.length > room ? body.slice(0, room) : body), ...this.#framing.suffix];
  }

  /** The ids of the cleaned text without special tokens and without truncation (for tests and diagnostics). */
  encodeBody(text: string): number[] {
    return this.encodeCleanedBody(this.#reachable(cleanText(text, this.clean)));
  }

  /** What `tokenizer.json` alone makes of an already cleaned text: no cleaning, framing or truncation (for tests and diagnostics). */
  encodeCleanedBody(cleaned: string): number[] {
    return this.#tokenizer.encode(cleaned, { add_special_tokens: false }).ids;
  }

  /**
   * The start of a cleaned text that can reach the context: at most MAX_CHARS_PER_TOKEN characters per position,
   * so a huge prompt costs what its first tokens cost. Every piece of these vocabularies is shorter than that.
   */
  #reachable(cleaned: string): string {
    let end = this.contextLength * MAX_CHARS_PER_TOKEN;
    if (cleaned.length <= end) return cleaned;
    const last = cleaned.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end -= 1;
    return cleaned.slice(0, end);
  }
}

function vocabularySize(tokenizer: JsonRecord): number {
  const vocab = (tokenizer['model'] as JsonRecord)['vocab'];
  let size = 0;
  if (Array.isArray(vocab)) size = vocab.length;
  else if (isRecord(vocab))
    for (const id of Object.values(vocab)) if (typeof id === 'number' && id >= size) size = id + 1;
  const added = tokenizer['added_tokens'];
  if (Array.isArray(added)) {
    for (const token of added)
      if (isRecord(token) && typeof token['id'] === 'number') size = Math.max(size, token['id'] + 1);
  }
  return size;
}
