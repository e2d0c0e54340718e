import { describe, expect, it } from 'vitest';
import {
  basicClean,
  canonicalizeText,
  cleanText,
  fixText,
  pyStrip,
  whitespaceClean,
} from '../../../../src/clip/text/clean.js';

describe('fixText (the reproduced part of ftfy.fix_text)', () => {
  it('should split Latin ligatures, narrow full-width forms and straighten curly quotes', () => {
    expect(fixText('ﬁne ﬂour, ǅungla')).toBe('fine flour, Džungla');
    expect(fixText('ＦＵＬＬ\u3000１２３！')).toBe('FULL 123!');
    expect(fixText('\u2018quoted\u2019 \u201cdouble\u201d')).toBe('\'quoted\' "double"');
  });

  it('should remove terminal escapes and control characters, and unify line breaks', () => {
    expect(fixText('\x1b[31mred\x1b[0m')).toBe('red');
    expect(fixText('a\x00b\x07c\ufeffd\u206ae')).toBe('abcde');
    expect(fixText('a\r\nb\rc\u2028d')).toBe('a\nb\nc\nd');
  });

  it('should read C1 controls as Windows-1252, replace lone surrogates and compose (NFC)', () => {
    expect(fixText('\x93smart\x94 \x80')).toBe('"smart" €');
    expect(fixText('a\ud800b')).toBe('a\ufffdb');
    expect(fixText('🐱')).toBe('🐱');
    expect(fixText('cafe\u0301')).toBe('café');
  });

  it('should keep what ftfy keeps: ZWJ emoji sequences, zero-width space, non-Latin scripts', () => {
    for (const text of ['🏳️\u200d🌈', 'zero\u200bwidth', 'Привет', '日本語', 'ΣΊΣΥΦΟΣ'])
      expect(fixText(text)).toBe(text);
  });
});

describe('basicClean / whitespaceClean / canonicalizeText', () => {
  it('should unescape HTML exactly twice and strip like Python', () => {
    expect(basicClean('  Tom &amp; Jerry \n')).toBe('Tom & Jerry');
    expect(basicClean('&amp;amp; double')).toBe('& double');
    expect(basicClean('&amp;amp;amp;')).toBe('&amp;');
    expect(basicClean('&#39;quoted&#39;')).toBe("'quoted'");
  });

  it('should fold whitespace as Python str.split does (U+001F and U+0085 are whitespace, U+FEFF is not)', () => {
    expect(whitespaceClean(' a\t\tb\n c\u001fd\u0085e\u3000f ')).toBe('a b c d e f');
    expect(whitespaceClean('a\ufeffb')).toBe('a\ufeffb');
    expect(whitespaceClean('a \tb  c')).toBe('a b c');
    expect(pyStrip('\u00a0 x \u2003')).toBe('x');
  });

  it('should fold exactly as the plain definition does (the regex only skips runs that are already one space)', () => {
    const plain = (text: string): string =>
      text.replace(/[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/g, ' ').trim();
    const alphabet = [' ', ' ', '\t', '\n', '\u3000', '\x1f', '\x85', '\ufeff', 'a', 'b', '\u200b'];
    let seed = 1;
    const random = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (let i = 0; i < 2000; i++) {
      const text = Array.from(
        { length: Math.floor(random() * 12) },
        () => alphabet[Math.floor(random() * alphabet.length)],
      ).join('');
      // JavaScript's trim() also strips U+FEFF, Python's strip() does not: compare away from the ends.
      expect(whitespaceClean(`x${text}x`)).toBe(plain(`x${text}x`));
    }
  });

  it("should canonicalize as big_vision: '_' to a space, string.punctuation removed, lower-cased, folded", () => {
    expect(canonicalizeText('A_Photo-of:  a "CAT"!')).toBe('a photoof a cat');
    expect(canonicalizeText('snake_case_words')).toBe('snake case words');
    expect(canonicalizeText("l'homme d'affaires")).toBe('lhomme daffaires');
    expect(canonicalizeText('¿Qué tal?')).toBe('¿qué tal');
    expect(canonicalizeText('ΣΊΣΥΦΟΣ')).toBe('σίσυφος');
  });

  it('should dispatch on the clean name as get_clean_fn does', () => {
    expect(cleanText('  A  Cat_Photo! ', 'whitespace')).toBe('A Cat_Photo!');
    expect(cleanText('  A  Cat_Photo! ', 'lower')).toBe('a cat_photo!');
    expect(cleanText('  A  Cat_Photo! ', 'canonicalize')).toBe('a cat photo');
  });
});
