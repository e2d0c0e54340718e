/**
 * @file The tokenizer files of the Hugging Face-tokenizer families, in the exact layout of the real exports:
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
 * - `nllb` (facebook/nllb-200-distilled-600M) and `bert` (LaBSE's cased WordPiece): see their functions.
 * The charsmap and the vocabulary are generated (`charsmap.ts`, `pieces.ts`): deterministic, no network.
 */
import { nmtNfkcCharsmap } from './charsmap.js';
import { bpeVocabulary, pieceCharacters, pieceWords, sentencePiecePieces, WORD_BOUNDARY } from './pieces.js';

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
export interface FamilyTokenizerFiles {
  files: Record<string, string>;
  vocabSize: number;
  padId: number;
}

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** xlm-roberta-base's files, with the generated vocabulary and charsmap. */
export function xlmRobertaFiles(): FamilyTokenizerFiles {
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
        specialTokenTemplate('<s>'),
        sequenceTemplate('A'),
        specialTokenTemplate('</s>'),
        specialTokenTemplate('</s>'),
        sequenceTemplate('B'),
        specialTokenTemplate('</s>'),
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
    added_tokens_decoder: Object.fromEntries([
      ...specials.map((s, id) => [String(id), decoderConfig(s)] as const),
      [String(maskId), decoderConfig('<mask>', true)] as const,
    ]),
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
  const map = {
    bos_token: '<s>',
    cls_token: '<s>',
    eos_token: '</s>',
    mask_token: mask,
    pad_token: '<pad>',
    sep_token: '</s>',
    unk_token: '<unk>',
  };
  return {
    files: {
      'tokenizer.json': json(tokenizer),
      'tokenizer_config.json': json(config),
      'special_tokens_map.json': json(map),
    },
    vocabSize: vocab.length,
    padId: 1,
  };
}

/** timm/ViT-B-16-SigLIP's T5 files (as open_clip's SigLipTokenizer saves them), with the generated vocabulary and charsmap. */
export function siglipT5Files(contextLength: number): FamilyTokenizerFiles {
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
    files: {
      'tokenizer.json': json(tokenizer),
      'tokenizer_config.json': json(config),
      'special_tokens_map.json': json(map),
    },
    vocabSize: vocab.length,
    padId: 1,
  };
}

/** SigLIP2's Gemma files (as open_clip's tokenizer for `timm/ViT-B-16-SigLIP2` saves them), with a generated BPE vocabulary. */
export function siglipGemmaFiles(contextLength: number): FamilyTokenizerFiles {
  const specials = ['<pad>', '<eos>', '<bos>', '<unk>', '<mask>'];
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  // SigLIP2's texts are canonicalised (lower-cased) before tokenizing.
  const { tokens, merges } = bpeVocabulary([...specials, ...bytes], { lowercase: true });
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
      pair: [
        sequenceTemplate('A'),
        specialTokenTemplate('<eos>'),
        sequenceTemplate('B'),
        specialTokenTemplate('<eos>'),
      ],
      special_tokens: { '<eos>': { id: '<eos>', ids: [1], tokens: ['<eos>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: WORD_BOUNDARY }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
      ],
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
  const map = {
    bos_token: decoderConfig('<bos>'),
    eos_token: decoderConfig('<eos>'),
    pad_token: decoderConfig('<pad>'),
    unk_token: decoderConfig('<unk>'),
  };
  return {
    files: {
      'tokenizer.json': json(tokenizer),
      'tokenizer_config.json': json(config),
      'special_tokens_map.json': json(map),
    },
    vocabSize: tokens.length,
    padId: 0,
  };
}

/** FLORES-200 codes the generated NLLB vocabulary carries (the real one has 202); `eng_Latn` frames texts by default. */
export const NLLB_LANGUAGE_CODES = [
  'eng_Latn',
  'deu_Latn',
  'fra_Latn',
  'spa_Latn',
  'rus_Cyrl',
  'jpn_Jpan',
  'zho_Hans',
] as const;

/**
 * facebook/nllb-200-distilled-600M's files (NllbConverter: `Precompiled` + `Replace(" {2,}", " ")`, `Metaspace`
 * (prepend always), SentencePiece `BPE`, `TemplateProcessing` `eng_Latn $A </s>`; ids `<s>`=0, `<pad>`=1, `</s>`=2,
 * `<unk>`=3, the language codes and `<mask>` after the pieces), with a generated vocabulary and charsmap.
 */
export function nllbFiles(): FamilyTokenizerFiles {
  const specials = ['<s>', '<pad>', '</s>', '<unk>'];
  const { tokens, merges } = bpeVocabulary(specials, { lowercase: false });
  const codesFrom = tokens.length;
  tokens.push(...NLLB_LANGUAGE_CODES, '<mask>');
  const vocab = Object.fromEntries(tokens.map((token, id) => [token, id]));
  const addedIds = [0, 1, 2, 3, ...NLLB_LANGUAGE_CODES.map((_, i) => codesFrom + i), tokens.length - 1];
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedIds.map((id) => addedToken(id, tokens[id] as string, tokens[id] === '<mask>')),
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
      single: [specialTokenTemplate('eng_Latn'), sequenceTemplate('A'), specialTokenTemplate('</s>')],
      pair: [
        specialTokenTemplate('eng_Latn'),
        sequenceTemplate('A'),
        sequenceTemplate('B'),
        specialTokenTemplate('</s>'),
      ],
      special_tokens: {
        eng_Latn: { id: 'eng_Latn', ids: [codesFrom], tokens: ['eng_Latn'] },
        '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] },
      },
    },
    decoder: metaspace('always'),
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const config = {
    added_tokens_decoder: Object.fromEntries(
      addedIds.map((id) => [String(id), decoderConfig(tokens[id] as string, tokens[id] === '<mask>')]),
    ),
    additional_special_tokens: [...NLLB_LANGUAGE_CODES],
    bos_token: '<s>',
    clean_up_tokenization_spaces: true,
    cls_token: '<s>',
    eos_token: '</s>',
    legacy_behaviour: false,
    mask_token: '<mask>',
    model_max_length: 1024,
    pad_token: '<pad>',
    sep_token: '</s>',
    src_lang: 'eng_Latn',
    tgt_lang: null,
    tokenizer_class: 'NllbTokenizer',
    unk_token: '<unk>',
  };
  const map = {
    additional_special_tokens: [...NLLB_LANGUAGE_CODES],
    bos_token: '<s>',
    cls_token: '<s>',
    eos_token: '</s>',
    mask_token: { content: '<mask>', lstrip: true, normalized: true, rstrip: false, single_word: false },
    pad_token: '<pad>',
    sep_token: '</s>',
    unk_token: '<unk>',
  };
  return {
    files: {
      'tokenizer.json': json(tokenizer),
      'tokenizer_config.json': json(config),
      'special_tokens_map.json': json(map),
    },
    vocabSize: tokens.length,
    padId: 1,
  };
}

/**
 * A cased multilingual BERT WordPiece tokenizer in LaBSE's layout (M-CLIP's `LABSE-Vit-L-14`): `BertNormalizer`
 * (no lowercasing, no accent stripping), `BertPreTokenizer`, `WordPiece` (`##` continuations), `[CLS] $A [SEP]`;
 * ids `[PAD]`=0, `[UNK]`=1, `[CLS]`=2, `[SEP]`=3, `[MASK]`=4.
 */
export function bertFiles(contextLength: number): FamilyTokenizerFiles {
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const chars = pieceCharacters();
  const tokens = [...specials, ...chars, ...chars.map((c) => `##${c}`), ...pieceWords()];
  const unique = [...new Set(tokens)];
  const vocab = Object.fromEntries(unique.map((token, id) => [token, id]));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, id) => addedToken(id, s)),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: false,
      lowercase: false,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [specialTokenTemplate('[CLS]'), sequenceTemplate('A'), specialTokenTemplate('[SEP]')],
      pair: [
        specialTokenTemplate('[CLS]'),
        sequenceTemplate('A'),
        specialTokenTemplate('[SEP]'),
        sequenceTemplate('B'),
        specialTokenTemplate('[SEP]'),
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
  const config = {
    added_tokens_decoder: Object.fromEntries(specials.map((s, id) => [String(id), decoderConfig(s)])),
    clean_up_tokenization_spaces: true,
    cls_token: '[CLS]',
    do_basic_tokenize: true,
    do_lower_case: false,
    mask_token: '[MASK]',
    model_max_length: contextLength,
    never_split: null,
    pad_token: '[PAD]',
    sep_token: '[SEP]',
    strip_accents: null,
    tokenize_chinese_chars: true,
    tokenizer_class: 'BertTokenizer',
    unk_token: '[UNK]',
  };
  const map = { cls_token: '[CLS]', mask_token: '[MASK]', pad_token: '[PAD]', sep_token: '[SEP]', unk_token: '[UNK]' };
  return {
    files: {
      'tokenizer.json': json(tokenizer),
      'tokenizer_config.json': json(config),
      'special_tokens_map.json': json(map),
    },
    vocabSize: unique.length,
    padId: 0,
  };
}
