/**
 * @file The tokenizer files of the SentencePiece families, in the exact layout of the real exports:
 * - `xlm-r`: xlm-roberta-base's `tokenizer.json` (as transformers' XLMRobertaConverter writes it: `Precompiled` +
 *   `Replace(" {2,}", " ")`, `Metaspace` (prepend always), `Unigram`, `TemplateProcessing` `<s> $A </s>`; ids
 *   `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, pieces from 4, `<mask>` last) with its `tokenizer_config.json` and
 *   `special_tokens_map.json`.
 * - `siglip`: `timm/ViT-B-16-SigLIP`'s T5 layout (T5Converter, legacy=False: `Precompiled` + `Strip(right)` +
 *   `Replace(" {2,}", "▁")`, `Metaspace` (prepend first), `Unigram`, `TemplateProcessing` `$A </s>`; ids
 *   `<pad>`=0, `</s>`=1, `<unk>`=2), padded with `</s>` as open_clip's SigLipTokenizer saves it (`pad_token_id = 1`).
 * - `siglip` with the Gemma vocabulary (SigLIP2, `timm/ViT-B-16-SigLIP2`): GemmaConverter's layout (`Replace(" ", "▁")`,
 *   no pre-tokeniser, `BPE` with `byte_fallback` and `<0x00>`…`<0xFF>`; ids `<pad>`=0, `<eos>`=1, `<bos>`=2,
 *   `<unk>`=3, `<mask>`=4), saved as open_clip builds it: `add_bos_token=false`, `add_eos_token=true`, so the
 *   template is `$A <eos>`, padded with `<pad>`=0.
 * The charsmap and the vocabulary are generated (`charsmap.ts`, `pieces.ts`): deterministic, no network.
 */
import { nmtNfkcCharsmap } from './charsmap.js';
import { pieceCharacters, pieceWords, sentencePiecePieces, WORD_BOUNDARY } from './pieces.js';

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

/** SigLIP2's Gemma files (as open_clip's tokenizer for `timm/ViT-B-16-SigLIP2` saves them), with a generated BPE vocabulary. */
export function siglipGemmaFiles(contextLength: number): SentencePieceTokenizerFiles {
  const specials = ['<pad>', '<eos>', '<bos>', '<unk>', '<mask>'];
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const tokens: string[] = [...specials, ...bytes, WORD_BOUNDARY, ...pieceCharacters()];
  const known = new Set(tokens);
  const merges: Array<[string, string]> = [];
  // Each word becomes a left-to-right chain of merges: ▁ + c1, then (▁c1) + c2, …
  for (const word of pieceWords()) {
    const chars = [...word.toLowerCase()];
    let left = WORD_BOUNDARY;
    for (const char of chars) {
      const merged = left + char;
      if (!known.has(merged)) {
        known.add(merged);
        tokens.push(merged);
        merges.push([left, char]);
      }
      left = merged;
    }
  }
  const vocab = Object.fromEntries(tokens.map((token, id) => [token, id]));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, id) => ({ ...addedToken(id, s), normalized: false })),
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: WORD_BOUNDARY },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [sequenceTemplate('A'), specialTokenTemplate('<eos>')],
      pair: [sequenceTemplate('A'), specialTokenTemplate('<eos>'), sequenceTemplate('B'), specialTokenTemplate('<eos>')],
      special_tokens: { '<eos>': { id: '<eos>', ids: [1], tokens: ['<eos>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: WORD_BOUNDARY }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const config = {
    add_bos_token: false,
    add_eos_token: true,
    added_tokens_decoder: Object.fromEntries(specials.map((s, id) => [String(id), decoderConfig(s)])),
    bos_token: '<bos>',
    clean_up_tokenization_spaces: false,
    eos_token: '<eos>',
    model_max_length: contextLength,
    pad_token: '<pad>',
    padding_side: 'right',
    sp_model_kwargs: {},
    spaces_between_special_tokens: false,
    tokenizer_class: 'GemmaTokenizer',
    unk_token: '<unk>',
    use_default_system_prompt: false,
  };
  const map = { bos_token: decoderConfig('<bos>'), eos_token: decoderConfig('<eos>'), pad_token: decoderConfig('<pad>'), unk_token: decoderConfig('<unk>') };
  return {
    files: { 'tokenizer.json': json(tokenizer), 'tokenizer_config.json': json(config), 'special_tokens_map.json': json(map) },
    vocabSize: tokens.length,
    padId: 0,
  };
}
