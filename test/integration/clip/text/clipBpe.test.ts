import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClipTokenizer, cleanClipText, EOT_TOKEN, SOT_TOKEN } from '../../../../src/clip/text/clipBpe.js';
import { SHARED_CLIP_DIR, TINY_MODEL_DIR } from '../../../utils/testModel.js';

const TINY_TOKENIZER_JSON = path.join(TINY_MODEL_DIR, 'tokenizer.json');
const REFERENCE_TOKENIZER_JSON = path.join(SHARED_CLIP_DIR, 'tokenizer.reference.json');
const GOLDEN_JSON = path.join(SHARED_CLIP_DIR, 'tokenizer-golden.json');
const CONTEXT_LENGTH = 77;

interface GoldenFile {
  context_length: number;
  eot: number;
  cases: Array<{ text: string; ids: number[] }>;
}

function addedTokenIdInFile(file: string, content: string): number | undefined {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { added_tokens: Array<{ id: number; content: string }> };
  return json.added_tokens.find((t) => t.content === content)?.id;
}

describe('ClipTokenizer (tiny model tokenizer.json)', () => {
  let tokenizer: ClipTokenizer;
  beforeAll(async () => {
    tokenizer = await ClipTokenizer.fromFile(TINY_TOKENIZER_JSON, { contextLength: CONTEXT_LENGTH });
  });

  it('should read the special ids from the added tokens of the file', () => {
    const sot = addedTokenIdInFile(TINY_TOKENIZER_JSON, SOT_TOKEN);
    const eot = addedTokenIdInFile(TINY_TOKENIZER_JSON, EOT_TOKEN);
    expect(sot).toBeTypeOf('number');
    expect(tokenizer.sotId).toBe(sot);
    expect(tokenizer.eotId).toBe(eot);
    expect(tokenizer.padId).toBe(eot);
    expect(tokenizer.contextLength).toBe(CONTEXT_LENGTH);
  });

  it('should frame a text with start and end markers and no padding', () => {
    const ids = tokenizer.encode('a photo of a cat');
    expect(ids[0]).toBe(tokenizer.sotId);
    expect(ids.at(-1)).toBe(tokenizer.eotId);
    expect(ids.length).toBeGreaterThan(2);
    expect(ids.length).toBeLessThan(12);
    expect(ids.slice(1, -1)).not.toContain(tokenizer.eotId);
  });

  it('should encode the empty string as start and end only', () => {
    expect(tokenizer.encode('')).toEqual([tokenizer.sotId, tokenizer.eotId]);
    expect(tokenizer.encode(' \t\n ')).toEqual([tokenizer.sotId, tokenizer.eotId]);
  });

  it('should truncate a 200-word text to the context length keeping the end marker last', () => {
    const words = Array.from({ length: 200 }, (_, i) => ['dog', 'cat', 'tree', 'house'][i % 4]).join(' ');
    const ids = tokenizer.encode(words);
    expect(ids).toHaveLength(CONTEXT_LENGTH);
    expect(ids[0]).toBe(tokenizer.sotId);
    expect(ids[CONTEXT_LENGTH - 1]).toBe(tokenizer.eotId);
    expect(ids.slice(0, -1)).not.toContain(tokenizer.eotId);
    // The kept part is the start of the untruncated text.
    expect(ids.slice(0, 20)).toEqual(tokenizer.encode(words.split(' ').slice(0, 30).join(' ')).slice(0, 20));
  });

  it('should keep a text of exactly the context length whole', () => {
    const short = tokenizer.encode('dog');
    expect(short).toHaveLength(3);
    const exact = tokenizer.encode(Array.from({ length: CONTEXT_LENGTH - 2 }, () => 'dog').join(' '));
    expect(exact).toHaveLength(CONTEXT_LENGTH);
    expect(exact.slice(1, -1).every((id) => id === short[1])).toBe(true);
  });

  it('should lower-case, fold whitespace and strip like the reference', () => {
    const plain = tokenizer.encode('a photo of a cat');
    expect(tokenizer.encode('  A   PHOTO\tof\n a Cat  ')).toEqual(plain);
    // U+001F is whitespace to Python's re (the reference) but not to JavaScript's \s.
    expect(tokenizer.encode('a photo\u001fof a cat')).toEqual(plain);
  });

  it('should unescape HTML entities twice', () => {
    expect(tokenizer.encode('fish &amp; chips')).toEqual(tokenizer.encode('fish & chips'));
    expect(tokenizer.encode('fish &amp;amp; chips')).toEqual(tokenizer.encode('fish & chips'));
    expect(tokenizer.encode('&lt;b&gt;bold&#x3C;/b&gt;')).toEqual(tokenizer.encode('<b>bold</b>'));
  });

  it('should tokenize non-ASCII text byte by byte and case-fold it', () => {
    const ids = tokenizer.encode('café 東京 🐈');
    expect(ids.length).toBeGreaterThan(5);
    expect(ids.slice(1, -1).every((id) => id !== tokenizer.sotId && id !== tokenizer.eotId)).toBe(true);
    expect(tokenizer.encode('CAFÉ')).toEqual(tokenizer.encode('café'));
    // NFD input composes to the same tokens (ftfy's NFC step in the reference).
    expect(tokenizer.encode('cafe\u0301')).toEqual(tokenizer.encode('café'));
    expect(tokenizer.encode('emoji 🐈 cat')).not.toEqual(tokenizer.encode('emoji cat'));
  });

  it('should batch texts padded to the longest real length with a mask', () => {
    const batch = tokenizer.encodeBatch(['a cat', '', 'a photo of a dog']);
    const rows = ['a cat', '', 'a photo of a dog'].map((t) => tokenizer.encode(t));
    const longest = Math.max(...rows.map((r) => r.length));
    expect(batch.batchSize).toBe(3);
    expect(batch.sequenceLength).toBe(longest);
    expect(batch.lengths).toEqual(rows.map((r) => r.length));
    for (const [i, row] of rows.entries()) {
      const ids = Array.from(batch.inputIds.subarray(i * longest, (i + 1) * longest), Number);
      const mask = Array.from(batch.attentionMask.subarray(i * longest, (i + 1) * longest), Number);
      expect(ids.slice(0, row.length)).toEqual(row);
      expect(ids.slice(row.length).every((id) => id === tokenizer.padId)).toBe(true);
      expect(mask).toEqual(row.map(() => 1).concat(Array<number>(longest - row.length).fill(0)));
    }
    expect(tokenizer.encodeBatch(['a cat'], CONTEXT_LENGTH).sequenceLength).toBe(CONTEXT_LENGTH);
    expect(() => tokenizer.encodeBatch(['a photo of a dog'], 3)).toThrow(RangeError);
  });

  it('should encode 1,000 distinct prompts to distinct id sequences (timing printed, not asserted)', () => {
    tokenizer.encode('warm up the regular expressions');
    const start = performance.now();
    const encoded = Array.from({ length: 1000 }, (_, i) =>
      tokenizer.encode(`a photo of a thing number ${i}, seen from afar.`),
    );
    const elapsedMs = performance.now() - start;
    // Typically 25–50 ms here; speed is the benchmark's job.
    console.log(`tokenizer: 1,000 prompts in ${elapsedMs.toFixed(1)} ms`);
    expect(new Set(encoded.map((ids) => ids.join(','))).size).toBe(1000);
    for (const ids of encoded) expect([ids[0], ids.at(-1)]).toEqual([tokenizer.sotId, tokenizer.eotId]);
  });

  it('should refuse a file without CLIP markers and a bad context length', () => {
    const json = JSON.parse(fs.readFileSync(TINY_TOKENIZER_JSON, 'utf8')) as { added_tokens: unknown[] };
    expect(() => ClipTokenizer.fromJSON({ ...json, added_tokens: [] }, { contextLength: 77 })).toThrow(
      /<\|startoftext\|>/,
    );
    expect(() => ClipTokenizer.fromJSON(json, { contextLength: 1 })).toThrow(/contextLength/);
    expect(() => ClipTokenizer.fromJSON('nope', { contextLength: 77 })).toThrow(/not a tokenizer.json/);
  });
});

describe('cleanClipText', () => {
  it('should unescape twice, fold whitespace, strip and lower-case', () => {
    expect(cleanClipText('  Fish &amp;amp;\t\tChips \n')).toBe('fish & chips');
    expect(cleanClipText('a\u00a0b\u3000c')).toBe('a b c');
    // Only twice: a third level of escaping stays one entity.
    expect(cleanClipText('&amp;amp;amp;')).toBe('&amp;');
    // U+FEFF is whitespace to JavaScript but not to Python: the reference keeps it.
    expect(cleanClipText('a\ufeffb')).toBe('a\ufeffb');
  });
});

const sharedAbsent = !fs.existsSync(GOLDEN_JSON) || !fs.existsSync(REFERENCE_TOKENIZER_JSON);
if (sharedAbsent) console.log(`skipping tokenizer goldens: ${SHARED_CLIP_DIR} is absent`);

describe.skipIf(sharedAbsent)('ClipTokenizer goldens (OpenAI reference tokenizer)', () => {
  const golden = sharedAbsent ? undefined : (JSON.parse(fs.readFileSync(GOLDEN_JSON, 'utf8')) as GoldenFile);
  let tokenizer: ClipTokenizer;
  beforeAll(async () => {
    tokenizer = await ClipTokenizer.fromFile(REFERENCE_TOKENIZER_JSON, { contextLength: golden?.context_length ?? 77 });
  });

  it('should have 20 cases', () => {
    expect(golden?.cases).toHaveLength(20);
  });

  it.each(golden?.cases.map((c, i) => [i, c.text.slice(0, 40), c] as const) ?? [])(
    'should reproduce case %i (%s) exactly',
    (_i, _label, c) => {
      const expected = c.ids.slice(0, c.ids.indexOf(golden?.eot ?? -1) + 1);
      expect(tokenizer.encode(c.text)).toEqual(expected);
    },
  );
});
