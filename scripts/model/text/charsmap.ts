/**
 * @file A small `precompiled_charsmap` in SentencePiece's `nmt_nfkc` spirit, built here (no SentencePiece, no
 * network): the rule's control-character removals and whitespace mappings as the real XLM-R/T5 charsmaps have them,
 * NFKC for the characters of a fixed set of blocks (Latin, Greek, Cyrillic, punctuation and number forms,
 * ligatures, full/half-width forms), and the precomposed form of common base letter + combining mark pairs.
 * Characters outside those blocks are left as they are (a real charsmap covers all of Unicode).
 */
import { buildDoubleArray } from './doubleArray.js';

/** Removed, as in the real nmt_nfkc charsmap of xlm-roberta-base. */
const REMOVED: readonly number[] = [...range(0x01, 0x08), 0x0b, ...range(0x0e, 0x1f), 0x7f, 0x8f, 0x9f];

/** Mapped to a space, as in the real nmt_nfkc charsmap (note: U+200D, the emoji joiner, is NOT among them). */
const SPACES: readonly number[] = [
  0x09,
  0x0a,
  0x0c,
  0x0d,
  0xa0,
  0x1680,
  ...range(0x2000, 0x200c),
  0x200e,
  0x200f,
  0x2028,
  0x2029,
  0x202f,
  0x205f,
  0x2581,
  0x3000,
  0xfeff,
  0xfffd,
];

/** Blocks whose NFKC mappings the generated charsmap carries. */
const NFKC_BLOCKS: ReadonlyArray<readonly [number, number]> = [
  [0x00a0, 0x024f], // Latin-1 Supplement, Latin Extended-A/B (ĳ, ǅ, ſ …)
  [0x02b0, 0x02ff], // spacing modifier letters (ʰ, ˢ …)
  [0x0370, 0x03ff], // Greek
  [0x0400, 0x04ff], // Cyrillic
  [0x1e00, 0x1eff], // Latin Extended Additional (Vietnamese)
  [0x2000, 0x206f], // general punctuation (… ‥ ‼ ′ …)
  [0x2070, 0x209f], // superscripts and subscripts
  [0x20a0, 0x20cf], // currency
  [0x2100, 0x218f], // letterlike symbols, number forms (℃ ™ ½ Ⅻ …)
  [0x2460, 0x24ff], // enclosed alphanumerics (① ⓐ …)
  [0x3000, 0x303f], // CJK symbols and punctuation
  [0xfb00, 0xfb4f], // alphabetic presentation forms (ﬁ ﬀ …)
  [0xff00, 0xffef], // half-width and full-width forms
];

/** Kept although NFKC changes it: the real charsmap keeps U+FF5E (FULLWIDTH TILDE), which SentencePiece's NFKC table leaves alone. */
const KEPT: ReadonlySet<number> = new Set([0xff5e]);

/** Base letters × combining marks whose NFC is one precomposed letter get that letter (decomposed input → composed). */
const BASES = 'AaCcEeIiNnOoSsUuYyZzGgKkLlRrTtDdHhJjWw';
const MARKS = [0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x0306, 0x0307, 0x0308, 0x030a, 0x030b, 0x030c, 0x0327, 0x0328];

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function isScalar(cp: number): boolean {
  return cp < 0xd800 || cp > 0xdfff;
}

/** The rewrite rules the generated charsmap holds: key text → replacement (possibly empty). */
export function nmtNfkcRules(): Map<string, string> {
  const rules = new Map<string, string>();
  for (const [from, to] of NFKC_BLOCKS) {
    for (const cp of range(from, to)) {
      if (!isScalar(cp) || KEPT.has(cp)) continue;
      const char = String.fromCodePoint(cp);
      const nfkc = char.normalize('NFKC');
      if (nfkc !== char) rules.set(char, nfkc);
    }
  }
  for (const base of BASES) {
    for (const mark of MARKS) {
      const pair = base + String.fromCodePoint(mark);
      const composed = pair.normalize('NFC');
      if ([...composed].length === 1) rules.set(pair, composed.normalize('NFKC'));
    }
  }
  for (const cp of REMOVED) rules.set(String.fromCodePoint(cp), '');
  for (const cp of SPACES) rules.set(String.fromCodePoint(cp), ' ');
  return rules;
}

/**
 * Compiles rules into the binary `precompiled_charsmap` layout and returns it base64-encoded:
 * `[u32 LE trie bytes][trie units, u32 LE][replacements, each NUL-terminated]`.
 */
export function compileCharsmap(rules: ReadonlyMap<string, string>): string {
  const encoder = new TextEncoder();
  const keys = [...rules.keys()].sort();
  const offsets = new Map<string, number>();
  const blob: number[] = [];
  const entries: Array<readonly [Uint8Array, number]> = [];
  for (const key of keys) {
    const replacement = rules.get(key) as string;
    let offset = offsets.get(replacement);
    if (offset === undefined) {
      offset = blob.length;
      offsets.set(replacement, offset);
      blob.push(...encoder.encode(replacement), 0);
    }
    entries.push([encoder.encode(key), offset]);
  }
  const trie = buildDoubleArray(entries);
  const bytes = Buffer.alloc(4 + trie.length * 4 + blob.length);
  bytes.writeUInt32LE(trie.length * 4, 0);
  trie.forEach((unit, i) => bytes.writeUInt32LE(unit, 4 + i * 4));
  Buffer.from(blob).copy(bytes, 4 + trie.length * 4);
  return bytes.toString('base64');
}

/** The generated charsmap, base64 (deterministic). */
export function nmtNfkcCharsmap(): string {
  return compileCharsmap(nmtNfkcRules());
}
