import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  byteUnicodeAlphabet,
  loadClipVocabulary,
  mergesTxt,
  tokenizerJson,
} from '../../../scripts/model/tokenizerFiles.js';
import { SHARED_CLIP_DIR } from '../../utils/testModel.js';

const REFERENCE_TOKENIZER = path.join(SHARED_CLIP_DIR, 'tokenizer.reference.json');
const OPENAI_VOCAB = path.join(SHARED_CLIP_DIR, 'bpe_simple_vocab_16e6.txt.gz');
const hasShared = fs.existsSync(REFERENCE_TOKENIZER) && fs.existsSync(OPENAI_VOCAB);
if (!hasShared) console.log(`skipping tokenizer reference comparisons: ${SHARED_CLIP_DIR} is absent`);

describe('tokenizerFiles', () => {
  const vocabulary = loadClipVocabulary();

  it('should map all 256 bytes to distinct printable characters', () => {
    const alphabet = byteUnicodeAlphabet();
    expect(new Set(alphabet).size).toBe(256);
    expect(alphabet.slice(0, 3)).toEqual(['!', '"', '#']);
    // Byte 0x20 (space) is not printable, so it becomes the first stand-in after the kept bytes: 'Ġ' (U+0120).
    expect(alphabet[188 + 32]).toBe('Ġ');
  });

  it('should build 49,408 distinct tokens with the specials last', () => {
    expect(vocabulary.tokens).toHaveLength(49408);
    expect(new Set(vocabulary.tokens).size).toBe(49408);
    expect(vocabulary.merges).toHaveLength(48894);
    expect(vocabulary.tokens[49406]).toBe('<|startoftext|>');
    expect(vocabulary.tokens[49407]).toBe('<|endoftext|>');
    expect(vocabulary.tokens[256]).toBe('!</w>');
  });

  it.skipIf(!hasShared)("should use OpenAI's merges, in order", async () => {
    const lines = gunzipSync(await readFile(OPENAI_VOCAB))
      .toString('utf8')
      .split('\n');
    // As CLIP's SimpleTokenizer reads it: skip the header, take 49152 - 256 - 2 merges.
    const merges = lines.slice(1, 49152 - 256 - 2 + 1);
    expect(mergesTxt(vocabulary).split('\n').slice(1, -1)).toEqual(merges);
  });

  it.skipIf(!hasShared)("should write tokenizer.json byte for byte as Hugging Face's converter does", async () => {
    expect(tokenizerJson(vocabulary)).toBe(await readFile(REFERENCE_TOKENIZER, 'utf8'));
  });
});
