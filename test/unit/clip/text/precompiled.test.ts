import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PrecompiledCharsmap } from '../../../../src/clip/text/precompiled.js';
import { compileCharsmap, nmtNfkcRules } from '../../../../scripts/model/text/charsmap.js';
import { SHARED_CLIP_DIR } from '../../../utils/testModel.js';

const SHARED_TOKENIZER = path.join(path.dirname(SHARED_CLIP_DIR), 'xlmr-tokenizer', 'tokenizer.json');
const sharedAbsent = !fs.existsSync(SHARED_TOKENIZER);
if (sharedAbsent) console.log(`skipping the real nmt_nfkc charsmap checks: ${SHARED_TOKENIZER} is absent`);

describe('PrecompiledCharsmap (generated charsmap)', () => {
  const rules = new Map([
    ['ﬁ', 'fi'],
    ['e\u0301', 'é'],
    ['\u200b', ' '],
    ['\u0001', ''],
    ['Ａ', 'A'],
  ]);
  const charsmap = PrecompiledCharsmap.fromBase64(compileCharsmap(rules));

  it('should find every key and nothing else', () => {
    for (const [key, value] of rules) expect(charsmap.transform(key)).toBe(value);
    for (const miss of ['a', 'e', 'f', '\u0301', '🐱', 'ﬂ']) expect(charsmap.transform(miss)).toBeNull();
  });

  it('should rewrite per grapheme cluster as Rust tokenizers does', () => {
    expect(charsmap.normalize('ﬁne cafe\u0301\u200bok\u0001!')).toBe('fine café ok!');
    // A cluster under 6 bytes is looked up whole, and the first key along it replaces all of it: the accent goes.
    expect(charsmap.normalize('Ａ\u0301')).toBe('A');
    // A cluster of 6 bytes or more is rewritten character by character.
    expect(charsmap.normalize('Ａ\u0301\u0301')).toBe('A\u0301\u0301');
  });

  it('should refuse blobs that are not charsmaps, saying what is wrong', () => {
    expect(() => PrecompiledCharsmap.fromBase64('not base64!')).toThrow(/base64/);
    expect(() => PrecompiledCharsmap.fromBase64('AAA=')).toThrow(/at least 4 bytes/);
    expect(() => PrecompiledCharsmap.fromBase64(Buffer.from([0xff, 0, 0, 0, 1, 2]).toString('base64'))).toThrow(
      /trie size/,
    );
    const badUtf8 = Buffer.from([4, 0, 0, 0, 0, 0, 0, 0, 0xff, 0]);
    expect(() => PrecompiledCharsmap.fromBase64(badUtf8.toString('base64'))).toThrow(/UTF-8/);
  });

  it('should compile the generator rules into a trie that returns each of them', () => {
    const all = nmtNfkcRules();
    const compiled = PrecompiledCharsmap.fromBase64(compileCharsmap(all));
    expect(all.size).toBeGreaterThan(900);
    for (const [key, value] of all) expect(compiled.transform(key)).toBe(value);
  });
});

describe.skipIf(sharedAbsent)(
  'PrecompiledCharsmap (the real nmt_nfkc charsmap of the shared XLM-R-format model)',
  () => {
    // Read in beforeAll, not while collecting: a skipped suite's body still runs, and the file is absent then.
    let charsmap: PrecompiledCharsmap;
    beforeAll(() => {
      const json = JSON.parse(fs.readFileSync(SHARED_TOKENIZER, 'utf8')) as {
        normalizer: { normalizers: Array<{ precompiled_charsmap?: string }> };
      };
      charsmap = PrecompiledCharsmap.fromBase64(json.normalizer.normalizers[0]?.precompiled_charsmap ?? '');
    });

    it('should apply nmt_nfkc: NFKC, controls removed, odd spaces to a space, U+200D and U+FE0F kept', () => {
      expect(charsmap.normalize('ﬁ ½ ＦＵＬＬ ①')).toBe('fi 1⁄2 FULL 1');
      expect(charsmap.normalize('a\u0007b\u200bc\u00a0d')).toBe('ab c d');
      expect(charsmap.normalize('🏳️\u200d🌈')).toBe('🏳️\u200d🌈');
      // The library's NFKC approximation turns U+200D into a space: the one golden case it misses.
      expect(charsmap.transform('\u200d')).toBeNull();
    });

    it('should give the same text with and without the ASCII fast path', () => {
      const fixture = JSON.parse(
        fs.readFileSync(new URL('../../../fixtures/xlmr-sentencepiece-random.json', import.meta.url), 'utf8'),
      ) as { cases: Array<{ text: string }> };
      const tricky = ['a\r\nb', '\r', 'x\u0600a b', 'e\u0301e', 'A\u030a\u0301', 'ab\u200d🐱', '\u0001a\u0002', '']; // CR LF, Prepend + ASCII, combining marks
      for (const text of [...tricky, ...fixture.cases.map((c) => c.text)])
        expect(charsmap.normalize(text)).toBe(charsmap.normalizeEveryCluster(text));
    });

    it('should agree with the generator rules wherever the generator has one', () => {
      const rules = nmtNfkcRules();
      const differing = [...rules].filter(([key, value]) => charsmap.normalize(key) !== value).map(([key]) => key);
      expect(differing).toEqual([]);
    });
  },
);
