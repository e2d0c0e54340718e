/**
 * @file The tokenizer files of the SentencePiece families, in the exact layout of the real exports:
 * - `xlm-r`: xlm-roberta-base's `tokenizer.json` (as transformers' XLMRobertaConverter writes it: `Precompiled` +
 *   `Replace(" {2,}", " ")`, `Metaspace` (prepend always), `Unigram`, `TemplateProcessing` `<s> $A </s>`; ids
 *   `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, pieces from 4, `<mask>` last) with its `tokenizer_config.json` and
 *   `special_tokens_map.json`.
 * - `siglip`: `timm/ViT-B-16-SigLIP`'s T5 layout (T5Converter, legacy=False: `Precompiled` + `Strip(right)` +
 *   `Replace(" {2,}", "▁")`, `Metaspace` (prepend first), `Unigram`, `TemplateProcessing` `$A </s>`; ids
 *   `<pad>`=0, `</s>`=1, `<unk>`=2), padded with `</s>` as open_clip's SigLipTokenizer saves it (`pad_token_id = 1`).
 * The charsmap and the vocabulary are generated (`charsmap.ts`, `pieces.ts`): deterministic, no network.
 */
import { nmtNfkcCharsmap } from './charsmap.js';
import { sentencePiecePieces, WORD_BOUNDARY } from './pieces.js';

type Json = Record<string, unknown>;

function addedToken(id: number, content: string, lstrip = false): Json {
  return { id, content, single_word: false, lstrip, rstrip: false, normalized: false, special: true };
}

function decoderConfig(content: string, lstrip = false): Json {
  return { content, lstrip, normalized: false, rstrip: false, single_word: false, special: true };
}

function metaspace(prependScheme: 'always' | 'first'): Json {
  return { type: 'Metaspace', replacement: WORD_BOUNDARY, prepend_scheme: prependScheme, split: true };
}

function specialTokenTemplate(token: string): Json {
  return { SpecialToken: { id: token, type_id: 0 } };
}

function sequenceTemplate(id: 'A' | 'B'): Json {
  return { Sequence: { id, type_id: 0 } };
}

/** One family's three files, by name. */
export interface SentencePieceTokenizerFiles {
  files: Record<string, string>;
  vocabSize: number;
  padId: number;
}

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** xlm-roberta-base's files, with the generated vocabulary and charsmap. */
export function xlmRobertaFiles(): SentencePieceTokenizerFiles {
  const specials = ['<s>', '<pad>', '</s>', '<unk>'];
  const pieces = sentencePiecePieces();
  const maskId = specials.length + pieces.length;
  const vocab: Array<[string, number]> = [...specials.map((s): [string, number] => [s, 0]), ...pieces, ['<mask>', 0]];
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...specials.map((s, id) => addedToken(id, s)), addedToken(maskId, '<mask>', true)],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Precompiled', precompiled_charsmap: nmtNfkcCharsmap() },
        { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
      ],
    },
    pre_tokenizer: metaspace('always'),
    post_processor: {
      type: 'TemplateProcessing',
      single: [specialTokenTemplate('<s>'), sequenceTemplate('A'), specialTokenTemplate('</s>')],
      pair: [
        specialTokenTemplate('<s>'), sequenceTemplate('A'), specialTokenTemplate('</s>'),
        specialTokenTemplate('</s>'), sequenceTemplate('B'), specialTokenTemplate('</s>'),
      ],
      special_tokens: {
        '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] },
        '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] },
      },
    },
    decoder: metaspace('always'),
    model: { type: 'Unigram', unk_id: 3, vocab, byte_fallback: false },
  };
  const mask = { content: '<mask>', lstrip: true, normalized: true, rstrip: false, single_word: false };
  const config = {
    added_tokens_decoder: Object.fromEntries([...specials.map((s, id) => [String(id), decoderConfig(s)]), [String(maskId), decoderConfig('<mask>', true)]]),
    bos_token: '<s>',
    clean_up_tokenization_spaces: true,
    cls_token: '<s>',
    eos_token: '</s>',
    mask_token: '<mask>',
    model_max_length: 512,
    pad_token: '<pad>',
    sep_token: '</s>',
    tokenizer_class: 'XLMRobertaTokenizer',
    unk_token: '<unk>',
  };
  const map = { bos_token: '<s>', cls_token: '<s>', eos_token: '</s>', mask_token: mask, pad_token: '<pad>', sep_token: '</s>', unk_token: '<unk>' };
  return {
    files: { 'tokenizer.json': json(tokenizer), 'tokenizer_config.json': json(config), 'special_tokens_map.json': json(map) },
    vocabSize: vocab.length,
    padId: 1,
  };
}

/** timm/ViT-B-16-SigLIP's T5 files (as open_clip's SigLipTokenizer saves them), with the generated vocabulary and charsmap. */
export function siglipT5Files(contextLength: number): SentencePieceTokenizerFiles {
  const specials = ['<pad>', '</s>', '<unk>'];
  // SigLIP's texts are canonicalised (lower-cased, no ASCII punctuation) before tokenizing: no upper-case pieces needed, but harmless.
  const vocab: Array<[string, number]> = [...specials.map((s): [string, number] => [s, 0]), ...sentencePiecePieces()];
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, id) => addedToken(id, s)),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Precompiled', precompiled_charsmap: nmtNfkcCharsmap() },
        { type: 'Strip', strip_left: false, strip_right: true },
        { type: 'Replace', pattern: { Regex: ' {2,}' }, content: WORD_BOUNDARY },
      ],
    },
    pre_tokenizer: metaspace('first'),
    post_processor: {
      type: 'TemplateProcessing',
      single: [sequenceTemplate('A'), specialTokenTemplate('</s>')],
      pair: [sequenceTemplate('A'), specialTokenTemplate('</s>'), sequenceTemplate('B'), specialTokenTemplate('</s>')],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: metaspace('first'),
    model: { type: 'Unigram', unk_id: 2, vocab, byte_fallback: false },
  };
  const config = {
    add_prefix_space: true,
    added_tokens_decoder: Object.fromEntries(specials.map((s, id) => [String(id), decoderConfig(s)])),
    additional_special_tokens: [],
    clean_up_tokenization_spaces: true,
    eos_token: '</s>',
    extra_ids: 0,
    legacy: false,
    model_max_length: contextLength,
    pad_token: '</s>',
    sp_model_kwargs: {},
    tokenizer_class: 'T5Tokenizer',
    unk_token: '<unk>',
  };
  const map = { eos_token: decoderConfig('</s>'), pad_token: decoderConfig('</s>'), unk_token: decoderConfig('<unk>') };
  return {
    files: { 'tokenizer.json': json(tokenizer), 'tokenizer_config.json': json(config), 'special_tokens_map.json': json(map) },
    vocabSize: vocab.length,
    padId: 1,
  };
}
