/**
 * @file SentencePiece's `Precompiled` normaliser, exactly as the Rust `tokenizers` library runs it.
 *
 * A `precompiled_charsmap` is SentencePiece's compiled normalisation rule (`nmt_nfkc` for XLM-R and T5):
 * `[u32 LE trie size in bytes][darts-clone double-array trie: u32 units][normalised strings, each NUL-terminated]`.
 * The trie maps UTF-8 byte sequences to byte offsets into the strings block.
 *
 * `@huggingface/tokenizers` 0.2.0 ignores the charsmap and approximates it with NFKC plus a few regexes, which
 * differs from the real rule on characters NFKC leaves alone (e.g. U+200D in a ZWJ emoji sequence). This module
 * reads the charsmap itself. The walk over the text follows `tokenizers/src/normalizers/precompiled.rs`:
 * per extended grapheme cluster, a cluster shorter than 6 UTF-8 bytes is looked up whole (the first key the trie
 * finds along it replaces the whole cluster); otherwise, or when that finds nothing, each character is looked up
 * on its own. The trie walk follows huggingface/spm_precompiled (`DoubleArray::common_prefix_search`).
 */
import { NormalizerBase } from './hfNormalizers.js';

/** darts-clone unit accessors (the same bit layout SentencePiece and spm_precompiled read). */
function hasLeaf(unit: number): boolean {
  return ((unit >>> 8) & 1) === 1;
}
function unitValue(unit: number): number {
  return unit & 0x7fffffff;
}
function unitLabel(unit: number): number {
  // Bit 31 marks a value unit, so a value unit never matches a byte label.
  return (unit & 0x800000ff) >>> 0;
}
function unitOffset(unit: number): number {
  return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
}

/** Bytes a grapheme cluster may have for Rust's whole-cluster lookup (`grapheme.len() < 6`). */
const WHOLE_CLUSTER_MAX_BYTES = 6;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** A parsed `precompiled_charsmap`. */
export class PrecompiledCharsmap {
  readonly #array: Uint32Array;
  readonly #normalized: Uint8Array;
  /** Lookups are pure; most texts repeat a few hundred distinct clusters. Bounded so a hostile text cannot grow it. */
  readonly #memo = new Map<string, string | null>();
  static readonly #MEMO_CAPACITY = 4096;

  private constructor(array: Uint32Array, normalized: Uint8Array) {
    this.#array = array;
    this.#normalized = normalized;
  }

  /**
   * Parses the base64 `precompiled_charsmap` of a `tokenizer.json`.
   * @throws Error "expected …, got …" when the blob is not a charsmap.
   */
  static fromBase64(base64: string): PrecompiledCharsmap {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64))
      throw new Error('expected precompiled_charsmap to be base64, got other characters');
    const bytes = Buffer.from(base64, 'base64');
    if (bytes.length < 4) throw new Error(`expected precompiled_charsmap of at least 4 bytes, got ${bytes.length}`);
    const trieSize = bytes.readUInt32LE(0);
    if (trieSize % 4 !== 0 || trieSize === 0 || 4 + trieSize > bytes.length) {
      throw new Error(
        `expected a trie size that is a positive multiple of 4 within the ${bytes.length}-byte charsmap, got ${trieSize}`,
      );
    }
    const array = new Uint32Array(trieSize / 4);
    for (let i = 0; i < array.length; i++) array[i] = bytes.readUInt32LE(4 + i * 4);
    const normalized = new Uint8Array(bytes.subarray(4 + trieSize));
    try {
      utf8Strict.decode(normalized);
    } catch {
      throw new Error('expected the normalised strings of precompiled_charsmap to be UTF-8, got invalid bytes');
    }
    return new PrecompiledCharsmap(array, normalized);
  }

  /**
   * spm_precompiled's `transform`: the replacement of the first (shortest) trie key that is a prefix of
   * `chunk`'s UTF-8 bytes, or `null` when no key is. The replacement may be empty (the character is removed).
   */
  transform(chunk: string): string | null {
    const cached = this.#memo.get(chunk);
    if (cached !== undefined) return cached;
    const offset = this.#firstPrefixValue(utf8.encode(chunk));
    const result = offset === null ? null : this.#normalizedAt(offset);
    if (this.#memo.size >= PrecompiledCharsmap.#MEMO_CAPACITY) this.#memo.clear();
    this.#memo.set(chunk, result);
    return result;
  }

  /** Normalises a whole text as Rust's `Precompiled` normaliser does (see the file comment). */
  normalize(text: string): string {
    let out = '';
    const n = text.length;
    let i = 0;
    while (i < n) {
      // Fast path: an ASCII character (not CR, which joins a following LF) followed by ASCII or the end is a
      // cluster of its own; only Prepend characters (never ASCII) and CR LF join ASCII into longer clusters.
      if (isSingleAsciiCluster(text, i)) {
        out += this.#ascii(text.charCodeAt(i));
        i++;
        continue;
      }
      // Otherwise segment the stretch up to the next certain boundary: two ASCII characters in a row (not CR LF).
      let j = i + 1;
      while (j < n && !(isAsciiNotCr(text.charCodeAt(j - 1)) && text.charCodeAt(j) < 0x80)) j++;
      out += this.normalizeEveryCluster(text.slice(i, j));
      i = j;
    }
    return out;
  }

  /** The same rewrite with every cluster segmented (no ASCII fast path): the reference `normalize` is tested against. */
  normalizeEveryCluster(stretch: string): string {
    let out = '';
    for (const { segment } of graphemes.segment(stretch)) {
      if (utf8ByteLength(segment) < WHOLE_CLUSTER_MAX_BYTES) {
        const whole = this.transform(segment);
        if (whole !== null) {
          out += whole;
          continue;
        }
      }
      for (const char of segment) out += this.transform(char) ?? char;
    }
    return out;
  }

  #asciiTable: string[] | undefined;
  #ascii(code: number): string {
    this.#asciiTable ??= Array.from({ length: 0x80 }, (_, c) => {
      const char = String.fromCharCode(c);
      return this.transform(char) ?? char;
    });
    return this.#asciiTable[code] as string;
  }

  #firstPrefixValue(key: Uint8Array): number | null {
    const array = this.#array;
    let nodePos = 0;
    let unit = array[nodePos] ?? 0;
    nodePos ^= unitOffset(unit);
    for (const c of key) {
      if (c === 0) break;
      nodePos ^= c;
      unit = array[nodePos] ?? 0;
      if (unitLabel(unit) !== c) return null;
      nodePos ^= unitOffset(unit);
      if (hasLeaf(unit)) return unitValue(array[nodePos] ?? 0);
    }
    return null;
  }

  #normalizedAt(offset: number): string {
    const bytes = this.#normalized;
    let end = offset;
    while (end < bytes.length && bytes[end] !== 0) end++;
    return Buffer.from(
      bytes.buffer,
      bytes.byteOffset + Math.min(offset, bytes.length),
      Math.max(0, end - offset),
    ).toString('utf8');
  }
}

function isAsciiNotCr(code: number): boolean {
  return code < 0x80 && code !== 0x0d;
}

function isSingleAsciiCluster(text: string, i: number): boolean {
  return isAsciiNotCr(text.charCodeAt(i)) && (i + 1 === text.length || text.charCodeAt(i + 1) < 0x80);
}

function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (const char of text) {
    const cp = char.codePointAt(0) ?? 0;
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return bytes;
}

/**
 * A drop-in for `@huggingface/tokenizers`' `PrecompiledNormalizer` that applies the real charsmap, so a
 * `tokenizer.json` runs in that library with SentencePiece's normalisation.
 */
export class ExactPrecompiledNormalizer extends NormalizerBase {
  readonly charsmap: PrecompiledCharsmap;

  constructor(charsmap: PrecompiledCharsmap) {
    super({ type: 'Precompiled' });
    this.charsmap = charsmap;
  }

  override normalize(text: string): string {
    return this.charsmap.normalize(text);
  }
}
