import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTextTokenizer, padIds, HfTextTokenizer, type TextTokenizer } from '../../../../src/clip/text/index.js';
import { writeTokenizerFiles } from '../../../../scripts/model/text/index.js';
import { SHARED_CLIP_DIR } from '../../../utils/testModel.js';

/** `../shared/xlmr-tokenizer` beside the checkout (see its README): SentencePiece's own ids for 60 texts. */
const SHARED_XLMR_DIR = path.join(path.dirname(SHARED_CLIP_DIR), 'xlmr-tokenizer');
const GOLDEN_JSON = path.join(SHARED_XLMR_DIR, 'tokenizer-golden.json');
const sharedAbsent = !fs.existsSync(GOLDEN_JSON) || !fs.existsSync(path.join(SHARED_XLMR_DIR, 'tokenizer.json'));
if (sharedAbsent) console.log(`skipping XLM-R SentencePiece goldens: ${SHARED_XLMR_DIR} is absent`);

interface GoldenFile {
  vocab_size: number;
  cases: Array<{ text: string; clean: string; pieces: string[]; ids: number[]; ids_77: number[] }>;
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'text-tokenizer-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(sharedAbsent)('xlm-r goldens (SentencePiece 0.1.97 on the shared XLM-R-format model)', () => {
  const golden = sharedAbsent ? undefined : (JSON.parse(fs.readFileSync(GOLDEN_JSON, 'utf8')) as GoldenFile);
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    tokenizer = await loadTextTokenizer(SHARED_XLMR_DIR, { contextLength: 77 });
  });

  it('should read the family, the pad id and the framing from the files', () => {
    expect(golden?.cases).toHaveLength(60);
    expect(tokenizer.family).toBe('xlm-r');
    expect(tokenizer.padId).toBe(1);
    expect(tokenizer.minimalIds).toEqual([0, 2]);
    expect(tokenizer.contextLength).toBe(77);
    expect((tokenizer as HfTextTokenizer).vocabSize).toBe(golden?.vocab_size);
  });

  it.each(golden?.cases.map((c, i) => [i, JSON.stringify(c.text.slice(0, 32)), c] as const) ?? [])(
    'should give the golden ids_77 for case %i (%s) from the raw text',
    (_i, _label, c) => {
      expect(padIds(tokenizer.encode(c.text), 77, tokenizer.padId)).toEqual(c.ids_77);
    },
  );

  it('should give SentencePiece ids for every golden clean string, untruncated', () => {
    const sp = tokenizer as HfTextTokenizer;
    for (const c of golden?.cases ?? []) expect([0, ...sp.encodeBody(c.clean), 2]).toEqual(c.ids);
  });

  it('should match where @huggingface/tokenizers alone (NFKC for Precompiled) does not: the ZWJ emoji sequence', () => {
    const library = new Tokenizer(
      JSON.parse(fs.readFileSync(path.join(SHARED_XLMR_DIR, 'tokenizer.json'), 'utf8')),
      {},
    );
    const differing = (golden?.cases ?? []).filter(
      (c) => JSON.stringify(library.encode(c.clean).ids) !== JSON.stringify(c.ids),
    );
    // The library maps U+200D to a space; the real charsmap keeps it. If the library is fixed, this list empties.
    expect(differing.map((c) => c.text)).toEqual(['🏳️\u200d🌈 flag']);
  });

  it('should encode 1,000 distinct prompts to distinct ids (timing printed, not asserted)', () => {
    tokenizer.encode('warm up');
    const start = performance.now();
    const encoded = Array.from({ length: 1000 }, (_, i) =>
      tokenizer.encode(`ein Foto von Ding Nummer ${i}, aus der Ferne gesehen.`),
    );
    console.log(`xlm-r: 1,000 prompts in ${(performance.now() - start).toFixed(1)} ms`);
    expect(new Set(encoded.map((ids) => ids.join(','))).size).toBe(1000);
  });

  it('should keep case, keep </s> last when truncating the long case, and never exceed 77 ids', () => {
    expect(tokenizer.encode('A Photo Of A Cat')).not.toEqual(tokenizer.encode('a photo of a cat'));
    const long = golden?.cases.find((c) => c.ids.length > 77);
    expect(long).toBeDefined();
    const ids = tokenizer.encode(long?.text ?? '');
    expect(ids).toHaveLength(77);
    expect(ids.slice(0, 76)).toEqual(long?.ids.slice(0, 76));
    expect(ids[76]).toBe(2);
  });
});

describe.skipIf(sharedAbsent)(
  'xlm-r against SentencePiece on 3,000 random strings (test/fixtures/xlmr-sentencepiece-random.json)',
  () => {
    it('should agree except where Rust tokenizers itself differs from SentencePiece, in the two documented ways', async () => {
      const fixture = JSON.parse(
        fs.readFileSync(new URL('../../../fixtures/xlmr-sentencepiece-random.json', import.meta.url), 'utf8'),
      ) as {
        cases: Array<{ text: string; ids: number[] }>;
      };
      const tokenizer = (await loadTextTokenizer(SHARED_XLMR_DIR, { contextLength: 77 })) as HfTextTokenizer;
      const library = new Tokenizer(
        JSON.parse(fs.readFileSync(path.join(SHARED_XLMR_DIR, 'tokenizer.json'), 'utf8')),
        {},
      );
      const kinds = { agree: 0, trailingSpace: 0, combiningMarks: 0, libraryAgrees: 0 };
      const unexplained: string[] = [];
      for (const c of fixture.cases) {
        const ids = [0, ...tokenizer.encodeCleanedBody(c.text), 2];
        if (JSON.stringify(library.encode(c.text).ids) === JSON.stringify(c.ids)) kinds.libraryAgrees++;
        if (JSON.stringify(ids) === JSON.stringify(c.ids)) kinds.agree++;
        // (a) The normaliser turned the text's end into a space (e.g. U+200B): SentencePiece drops it, the Rust
        // Metaspace keeps a final "▁" (id 4).
        else if (ids.at(-2) === 4 && JSON.stringify([...ids.slice(0, -2), 2]) === JSON.stringify(c.ids))
          kinds.trailingSpace++;
        // (b) Combining marks: Rust rewrites per grapheme cluster (see precompiled.ts), SentencePiece by longest match.
        // eslint-disable-next-line no-misleading-character-class -- the class is a list of combining-mark ranges, on purpose
        else if (/[\u0300-\u036f\u0900-\u097f\u0e31-\u0e4e\u20d0-\u20ff]/.test(c.text)) kinds.combiningMarks++;
        else unexplained.push(c.text);
      }
      console.log(`xlm-r vs SentencePiece on ${fixture.cases.length} random strings: ${JSON.stringify(kinds)}`);
      expect(unexplained).toEqual([]);
      expect(kinds).toEqual({ agree: 2974, trailingSpace: 12, combiningMarks: 14, libraryAgrees: 2833 });
    });
  },
);

describe('xlm-r family rules (generated XLM-R-format tokenizer)', () => {
  let dir: string;
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    dir = tempDir();
    await writeTokenizerFiles(dir, 'xlm-r', { contextLength: 77 });
    tokenizer = await loadTextTokenizer(dir, { contextLength: 77 });
  });

  it('should frame with <s> … </s>, pad with <pad> from tokenizer_config.json, and not pad itself', () => {
    const ids = tokenizer.encode('a photo of a cat');
    expect(ids[0]).toBe(0);
    expect(ids.at(-1)).toBe(2);
    expect(ids.length).toBeLessThan(12);
    expect(tokenizer.padId).toBe(1);
    const padded = padIds(ids, 77, tokenizer.padId);
    expect(padded).toHaveLength(77);
    expect(padded.slice(ids.length).every((id) => id === 1)).toBe(true);
    expect(tokenizer.encode('')).toEqual([0, 2]);
    expect(tokenizer.encode('  \t\n ')).toEqual(tokenizer.minimalIds);
  });

  it('should truncate to the context length keeping </s> last, the kept part being the text start', () => {
    const words = Array.from({ length: 200 }, (_, i) => ['dog', 'cat', 'tree', 'house'][i % 4]).join(' ');
    for (const contextLength of [77, 16, 3]) {
      const short = HfTextTokenizer.fromFiles(
        {
          dir,
          tokenizer: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
          config: { pad_token: '<pad>' },
          specialTokensMap: undefined,
        },
        { contextLength },
      );
      const ids = short.encode(words);
      expect(ids).toHaveLength(contextLength);
      expect([ids[0], ids.at(-1)]).toEqual([0, 2]);
      expect(ids.slice(1, -1)).toEqual(short.encodeBody(words).slice(0, contextLength - 2));
    }
  });

  it('should keep case and punctuation (no lowercasing), and clean like open_clip whitespace', () => {
    expect(tokenizer.encode('Cat')).not.toEqual(tokenizer.encode('cat'));
    expect(tokenizer.encode('a cat!')).not.toEqual(tokenizer.encode('a cat'));
    expect(tokenizer.encode('  a\tphoto \n\n of   a cat ')).toEqual(tokenizer.encode('a photo of a cat'));
    expect(tokenizer.encode('fish &amp;amp; chips')).toEqual(tokenizer.encode('fish & chips'));
    // snake_case stays (only canonicalize splits it).
    expect(tokenizer.encode('a_cat')).not.toEqual(tokenizer.encode('a cat'));
  });

  it('should apply another clean when the model config asks for one', async () => {
    const lower = await loadTextTokenizer(dir, { contextLength: 77, clean: 'lower' });
    expect(lower.encode('A Photo Of A Cat')).toEqual(tokenizer.encode('a photo of a cat'));
    const canonical = await loadTextTokenizer(dir, { contextLength: 77, clean: 'canonicalize' });
    expect(canonical.encode('A_Photo, of a CAT!')).toEqual(tokenizer.encode('a photo of a cat'));
  });

  it('should cap what a huge prompt costs without changing the ids that fit', () => {
    const huge = 'a photo of a cat '.repeat(100_000);
    const start = performance.now();
    const ids = tokenizer.encode(huge);
    console.log(`xlm-r: 1.7 M-character prompt in ${(performance.now() - start).toFixed(1)} ms`);
    expect(ids).toHaveLength(77);
    expect(ids).toEqual(tokenizer.encode('a photo of a cat '.repeat(40)));
  });
});

describe('siglip family rules (generated T5-format tokenizer, as timm/ViT-B-16-SigLIP)', () => {
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    const dir = tempDir();
    await writeTokenizerFiles(dir, 'siglip', { contextLength: 64 });
    tokenizer = await loadTextTokenizer(dir, { contextLength: 64 });
  });

  it('should add no start token, end with </s> and pad with </s> (id 1) as open_clip does', () => {
    expect(tokenizer.family).toBe('siglip');
    const ids = tokenizer.encode('a photo of a cat');
    expect(ids.at(-1)).toBe(1);
    expect(ids.slice(0, -1)).not.toContain(1);
    expect(tokenizer.padId).toBe(1);
    expect(tokenizer.minimalIds).toEqual([1]);
    expect(tokenizer.encode('')).toEqual([1]);
    expect(padIds(ids, 64, tokenizer.padId)).toHaveLength(64);
  });

  it('should canonicalize by default: lower-case, punctuation removed, _ to a space, whitespace folded', () => {
    const plain = tokenizer.encode('a photo of a cat');
    expect(tokenizer.encode('A PHOTO of a Cat')).toEqual(plain);
    expect(tokenizer.encode('a photo, of a cat!!!')).toEqual(plain);
    expect(tokenizer.encode('a_photo_of_a_cat')).toEqual(plain);
    expect(tokenizer.encode('  a   photo\tof a\ncat  ')).toEqual(plain);
    expect(tokenizer.encode('a &quot;photo&quot; of a cat')).toEqual(plain);
    // Non-ASCII punctuation is not in Python's string.punctuation: it stays.
    expect(tokenizer.encode('a photo of a cat¡')).not.toEqual(plain);
  });

  it('should truncate to 64 keeping </s> last', () => {
    const ids = tokenizer.encode('dog cat tree house '.repeat(60));
    expect(ids).toHaveLength(64);
    expect(ids[63]).toBe(1);
    expect(ids.slice(0, 63)).not.toContain(1);
  });

  it('should keep case when the model config says whitespace', async () => {
    const dir = tempDir();
    await writeTokenizerFiles(dir, 'siglip', { contextLength: 64 });
    const cased = await loadTextTokenizer(dir, { contextLength: 64, clean: 'whitespace' });
    expect(cased.encode('A Photo')).not.toEqual(cased.encode('a photo'));
  });
});

describe('siglip family rules (generated Gemma-format tokenizer, as timm/ViT-B-16-SigLIP2)', () => {
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    const dir = tempDir();
    await writeTokenizerFiles(dir, 'siglip', { contextLength: 64, siglipVocabulary: 'gemma' });
    tokenizer = await loadTextTokenizer(dir, { contextLength: 64 });
  });

  it('should end with <eos>=1, add no <bos> (add_bos_token false), and pad with <pad>=0', () => {
    expect(tokenizer.family).toBe('siglip');
    expect(tokenizer.padId).toBe(0);
    expect(tokenizer.minimalIds).toEqual([1]);
    const ids = tokenizer.encode('a photo of a cat');
    expect(ids.at(-1)).toBe(1);
    expect(ids).not.toContain(2);
    expect(
      padIds(ids, 64, tokenizer.padId)
        .slice(ids.length)
        .every((id) => id === 0),
    ).toBe(true);
  });

  it('should canonicalize, fall back to UTF-8 byte tokens for unknown characters, and truncate keeping <eos>', () => {
    expect(tokenizer.encode('A Photo, of_a CAT!')).toEqual(tokenizer.encode('a photo of a cat'));
    // 🐱 is not in the vocabulary: its four UTF-8 bytes as <0xF0> <0x9F> <0x90> <0xB1> (ids 5 + byte).
    expect(tokenizer.encode('🐱').slice(0, 4)).toEqual([0xf0, 0x9f, 0x90, 0xb1].map((b) => 5 + b));
    const ids = tokenizer.encode('dog cat tree house '.repeat(60));
    expect(ids).toHaveLength(64);
    expect(ids[63]).toBe(1);
  });
});

describe('nllb family rules (generated NLLB-format tokenizer, as immich nllb-clip-*)', () => {
  let tokenizer: TextTokenizer;
  let engLatn: number;
  beforeAll(async () => {
    const dir = tempDir();
    await writeTokenizerFiles(dir, 'nllb', { contextLength: 77 });
    tokenizer = await loadTextTokenizer(dir, { contextLength: 77 });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as {
      added_tokens: Array<{ id: number; content: string }>;
    };
    engLatn = json.added_tokens.find((t) => t.content === 'eng_Latn')?.id ?? -1;
  });

  it('should open with the saved language code, end with </s>=2, pad with <pad>=1 and keep case', () => {
    expect(tokenizer.family).toBe('nllb');
    expect(tokenizer.minimalIds).toEqual([engLatn, 2]);
    expect(tokenizer.padId).toBe(1);
    const ids = tokenizer.encode('a photo of a cat');
    expect([ids[0], ids.at(-1)]).toEqual([engLatn, 2]);
    expect(tokenizer.encode('A Photo')).not.toEqual(tokenizer.encode('a photo'));
    const long = tokenizer.encode('dog cat tree house '.repeat(60));
    expect(long).toHaveLength(77);
    expect([long[0], long[76]]).toEqual([engLatn, 2]);
  });
});

describe('bert family rules (generated WordPiece tokenizer, as M-CLIP LABSE-Vit-L-14)', () => {
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    const dir = tempDir();
    await writeTokenizerFiles(dir, 'bert', { contextLength: 77 });
    tokenizer = await loadTextTokenizer(dir, { contextLength: 77 });
  });

  it('should frame with [CLS]=2 … [SEP]=3, pad with [PAD]=0, keep case and truncate keeping [SEP]', () => {
    expect(tokenizer.family).toBe('bert');
    expect(tokenizer.minimalIds).toEqual([2, 3]);
    expect(tokenizer.padId).toBe(0);
    expect(tokenizer.encode('Cat')).not.toEqual(tokenizer.encode('cat'));
    const long = tokenizer.encode('dog cat tree house '.repeat(60));
    expect(long).toHaveLength(77);
    expect([long[0], long[76]]).toEqual([2, 3]);
  });
});
