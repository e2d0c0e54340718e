import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attentionMask, ClipTokenizer, loadTextTokenizer, padIds } from '../../../../src/clip/text/index.js';
import { writeTokenizerFiles } from '../../../../scripts/model/text/index.js';
import { TINY_MODEL_DIR } from '../../../utils/testModel.js';

type Json = Record<string, unknown>;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'text-index-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let xlmrFiles: Record<string, string>;
beforeAll(async () => {
  const dir = path.join(root, 'xlmr-source');
  await writeTokenizerFiles(dir, 'xlm-r', { contextLength: 77 });
  xlmrFiles = Object.fromEntries(
    fs.readdirSync(dir).map((name) => [name, fs.readFileSync(path.join(dir, name), 'utf8')]),
  );
});

let counter = 0;
/** A copy of the generated XLM-R files with some changed (`null` removes a file). */
function variant(changes: Record<string, string | ((json: Json) => Json) | null>): string {
  const dir = path.join(root, `variant-${counter++}`);
  fs.mkdirSync(dir);
  for (const [name, content] of Object.entries(xlmrFiles)) {
    const change = changes[name];
    if (change === null) continue;
    const text =
      change === undefined
        ? content
        : typeof change === 'string'
          ? change
          : JSON.stringify(change(JSON.parse(content) as Json));
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

describe('loadTextTokenizer', () => {
  it('should pick CLIP BPE from the markers and keep the ClipTokenizer API', async () => {
    const tokenizer = await loadTextTokenizer(TINY_MODEL_DIR, { contextLength: 77 });
    expect(tokenizer).toBeInstanceOf(ClipTokenizer);
    expect(tokenizer.family).toBe('clip-bpe');
    expect(tokenizer.padId).toBe((tokenizer as ClipTokenizer).eotId);
    expect(tokenizer.minimalIds).toEqual([(tokenizer as ClipTokenizer).sotId, (tokenizer as ClipTokenizer).eotId]);
    expect(tokenizer.encode('')).toEqual(tokenizer.minimalIds);
  });

  it('should pick the family from the content, not the directory name', async () => {
    const dir = path.join(root, 'ViT-B-16-SigLIP__webli');
    await writeTokenizerFiles(dir, 'xlm-r', { contextLength: 77 });
    expect((await loadTextTokenizer(dir, { contextLength: 77 })).family).toBe('xlm-r');
  });

  it('should read pad_token as a string or as an object with content, from either file', async () => {
    const asObject = variant({
      'tokenizer_config.json': (c) => ({ ...c, pad_token: { content: '</s>', special: true } }),
    });
    expect((await loadTextTokenizer(asObject, { contextLength: 77 })).padId).toBe(2);
    const mapOnly = variant({
      'tokenizer_config.json': null,
      'special_tokens_map.json': (m) => ({ ...m, pad_token: { content: '<unk>' } }),
    });
    expect((await loadTextTokenizer(mapOnly, { contextLength: 77 })).padId).toBe(3);
    const fromPadding = variant({
      'tokenizer_config.json': null,
      'special_tokens_map.json': null,
      'tokenizer.json': (t) => ({ ...t, padding: { pad_id: 1, pad_token: '<pad>' } }),
    });
    expect((await loadTextTokenizer(fromPadding, { contextLength: 77 })).padId).toBe(1);
  });

  it('should honour add_bos_token / add_eos_token of tokenizer_config.json', async () => {
    const noBos = variant({ 'tokenizer_config.json': (c) => ({ ...c, add_bos_token: false, add_eos_token: true }) });
    const tokenizer = await loadTextTokenizer(noBos, { contextLength: 77 });
    expect(tokenizer.family).toBe('siglip');
    expect(tokenizer.minimalIds).toEqual([2]);
  });

  it('should name the file and the fault for broken files', async () => {
    const options = { contextLength: 77 };
    await expect(loadTextTokenizer(path.join(root, 'nowhere'), options)).rejects.toThrow(
      /cannot read .*nowhere\/tokenizer\.json/,
    );
    await expect(loadTextTokenizer(variant({ 'tokenizer.json': '{"model": ' }), options)).rejects.toThrow(
      /tokenizer\.json is not valid JSON/,
    );
    await expect(loadTextTokenizer(variant({ 'tokenizer.json': '[]' }), options)).rejects.toThrow(
      /tokenizer\.json: expected a JSON object, got an array/,
    );
    await expect(loadTextTokenizer(variant({ 'tokenizer.json': '{}' }), options)).rejects.toThrow(
      /tokenizer\.json: expected a Hugging Face tokenizer with a "model"/,
    );
    await expect(loadTextTokenizer(variant({ 'tokenizer_config.json': '{' }), options)).rejects.toThrow(
      /tokenizer_config\.json is not valid JSON/,
    );
    await expect(
      loadTextTokenizer(variant({ 'tokenizer_config.json': (c) => ({ ...c, pad_token: '<nope>' }) }), options),
    ).rejects.toThrow(/tokenizer_config\.json: pad_token "<nope>" is not a token of .*tokenizer\.json/);
    await expect(
      loadTextTokenizer(variant({ 'tokenizer_config.json': (c) => ({ ...c, pad_token: 7 }) }), options),
    ).rejects.toThrow(/tokenizer_config\.json: expected pad_token to be a string or an object with "content", got 7/);
    await expect(
      loadTextTokenizer(variant({ 'tokenizer_config.json': null, 'special_tokens_map.json': null }), options),
    ).rejects.toThrow(/no pad_token/);
    const badCharsmap = variant({
      'tokenizer.json': (t) => ({
        ...t,
        normalizer: { type: 'Sequence', normalizers: [{ type: 'Precompiled', precompiled_charsmap: 'AAAAAA==' }] },
      }),
    });
    await expect(loadTextTokenizer(badCharsmap, options)).rejects.toThrow(
      /tokenizer\.json: invalid Precompiled normalizer: expected a trie size/,
    );
    const wordPiece = variant({
      'tokenizer.json': (t) => ({ ...t, model: { type: 'WordPiece', vocab: { '[UNK]': 0 } }, post_processor: null }),
    });
    await expect(loadTextTokenizer(wordPiece, options)).rejects.toThrow(
      /tokenizer\.json: unsupported tokenizer \(a WordPiece model whose post-processor adds 0 start and 0 end token/,
    );
    const brokenTemplate = variant({
      'tokenizer.json': (t) => ({
        ...t,
        post_processor: {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: '<x>' } }, { Sequence: { id: 'A' } }],
          special_tokens: {},
        },
      }),
    });
    await expect(loadTextTokenizer(brokenTemplate, options)).rejects.toThrow(/TemplateProcessing entry .* has no ids/);
    await expect(loadTextTokenizer(variant({}), { contextLength: 2 })).rejects.toThrow(
      /expected contextLength to be an integer > 2/,
    );
  });
});

describe('padIds', () => {
  it('should pad to exactly the length with the pad id and refuse what does not fit', () => {
    expect(padIds([0, 5, 2], 6, 1)).toEqual([0, 5, 2, 1, 1, 1]);
    expect(padIds([0, 2], 2, 1)).toEqual([0, 2]);
    expect(() => padIds([0, 5, 2], 2, 1)).toThrow(/at most 2 ids/);
    expect(() => padIds([], -1, 1)).toThrow(RangeError);
  });
});

describe('attentionMask', () => {
  it('should mark the real positions of a padded sequence', () => {
    expect(attentionMask([0, 5, 2], 6)).toEqual([1, 1, 1, 0, 0, 0]);
    // A pad id inside the text (a user typing "<pad>") is a real position: the mask follows the length.
    expect(attentionMask([0, 1, 2], 4)).toEqual([1, 1, 1, 0]);
    expect(() => attentionMask([0, 5, 2], 2)).toThrow(RangeError);
  });
});
