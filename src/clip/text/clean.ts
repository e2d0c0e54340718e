/**
 * @file open_clip's text cleaning for its Hugging Face tokenizers (`open_clip/tokenizer.py`: `basic_clean`,
 * `whitespace_clean`, `canonicalize_text`, `get_clean_fn`).
 *
 * `basic_clean` is `ftfy.fix_text`, then `html.unescape` twice, then `strip`. ftfy has no JavaScript port; of
 * `fix_text`'s default steps this module reproduces the table-driven ones (terminal escapes removed, C1 controls
 * read as Windows-1252, Latin ligatures split, full/half-width forms folded, curly quotes straightened, line breaks
 * unified, lone surrogates replaced, control characters removed, NFC). Not reproduced: mojibake repair
 * (`fix_encoding`, `restore_byte_a0`, `replace_lossy_sequences`, `decode_inconsistent_utf8`), which needs ftfy's
 * statistical detector, and ftfy's own `unescape_html="auto"` pass (the two `html.unescape` passes are done).
 */
import { decodeHTML } from 'entities';
import { UnreachableCaseError } from '../../errors.js';
import type { TextClean } from './types.js';

/**
 * Python's `\s` / `str.split()` whitespace rather than JavaScript's: it includes U+001C–U+001F and U+0085 and
 * excludes U+FEFF, so texts fold exactly as `" ".join(text.split())` does in the reference.
 */
export const PY_WHITESPACE =
  // Matches only runs that are not already one plain space (a space followed by whitespace, or any other
  // whitespace character, then the rest of the run): replacing every single space of a long text costs 10× more.
  / (?=[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|[\t-\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*/g;
const PY_WHITESPACE_CHAR = /^[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;

/** Python's `str.strip()` (a loop: an end-anchored regex rescans every whitespace run of a long text). */
export function pyStrip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && PY_WHITESPACE_CHAR.test(text.charAt(start))) start++;
  while (end > start && PY_WHITESPACE_CHAR.test(text.charAt(end - 1))) end--;
  return text.slice(start, end);
}

/** `" ".join(text.split()).strip()`: whitespace runs folded to one space, ends stripped. */
export function whitespaceClean(text: string): string {
  return pyStrip(text.replace(PY_WHITESPACE, ' '));
}

/** ftfy `remove_terminal_escapes`. */
const TERMINAL_ESCAPE = /\x1b\[((?:\d|;)*)([a-zA-Z])/g;

/** ftfy `fix_c1_controls`: C1 controls read as "sloppy" Windows-1252 (undefined bytes stay as they are). */
const WINDOWS_1252_C1 = '€\x81‚ƒ„…†‡ˆ‰Š‹Œ\x8dŽ\x8f\x90‘’“”•–—˜™š›œ\x9džŸ';
const C1_CONTROL = /[\x80-\x9f]/g;

/** ftfy `LIGATURES` (`fix_latin_ligatures`). */
const LIGATURES: Readonly<Record<string, string>> = {
  Ĳ: 'IJ',
  ĳ: 'ij',
  ŉ: 'ʼn',
  Ǳ: 'DZ',
  ǲ: 'Dz',
  ǳ: 'dz',
  Ǆ: 'DŽ',
  ǅ: 'Dž',
  ǆ: 'dž',
  Ǉ: 'LJ',
  ǈ: 'Lj',
  ǉ: 'lj',
  Ǌ: 'NJ',
  ǋ: 'Nj',
  ǌ: 'nj',
  ﬀ: 'ff',
  ﬁ: 'fi',
  ﬂ: 'fl',
  ﬃ: 'ffi',
  ﬄ: 'ffl',
  ﬅ: 'ſt',
  ﬆ: 'st',
};
const LIGATURE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');

/** ftfy `fix_character_width`: U+3000 and the NFKC-changing characters of U+FF01–U+FFEF. */
const WIDE = /[\u3000\uff01-\uffef]/g;
function narrow(char: string): string {
  return char === '\u3000' ? ' ' : char.normalize('NFKC');
}

/** ftfy `uncurl_quotes`. */
const SINGLE_QUOTES = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTES = /[\u201c-\u201f]/g;

/** ftfy `fix_line_breaks`. */
const LINE_BREAKS = /\r\n|[\r\u2028\u2029\x85]/g;

/** Lone UTF-16 surrogates (Python would hold them as lone code points; ftfy `fix_surrogates` replaces them). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** ftfy `remove_control_chars`. */
const CONTROL_CHARS = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

/** The parts of `ftfy.fix_text` (default configuration) that a table reproduces; see the file comment. */
export function fixText(text: string): string {
  return text
    .replace(TERMINAL_ESCAPE, '')
    .replace(C1_CONTROL, (c) => WINDOWS_1252_C1[c.charCodeAt(0) - 0x80] ?? c)
    .replace(LIGATURE, (c) => LIGATURES[c] ?? c)
    .replace(WIDE, narrow)
    .replace(SINGLE_QUOTES, "'")
    .replace(DOUBLE_QUOTES, '"')
    .replace(LINE_BREAKS, '\n')
    .replace(LONE_SURROGATE, '\ufffd')
    .replace(CONTROL_CHARS, '')
    .normalize('NFC');
}

/** open_clip `basic_clean`: ftfy (as far as reproduced), HTML unescaped twice, stripped. */
export function basicClean(text: string): string {
  // Twice, as the reference does: labels scraped from HTML are often escaped twice ("&amp;amp;").
  return pyStrip(decodeHTML(decodeHTML(fixText(text))));
}

/** Python's `string.punctuation`. */
const ASCII_PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

/**
 * open_clip `canonicalize_text` (from big_vision): `_` to a space, ASCII punctuation removed, lower-cased,
 * whitespace folded and stripped.
 */
export function canonicalizeText(text: string): string {
  return whitespaceClean(text.replaceAll('_', ' ').replace(ASCII_PUNCTUATION, '').toLowerCase());
}

/** open_clip `get_clean_fn(clean)` applied to `text`. */
export function cleanText(text: string, clean: TextClean): string {
  switch (clean) {
    case 'whitespace':
      return whitespaceClean(basicClean(text));
    case 'lower':
      return whitespaceClean(basicClean(text)).toLowerCase();
    case 'canonicalize':
      return canonicalizeText(basicClean(text));
    default:
      throw new UnreachableCaseError(clean);
  }
}
