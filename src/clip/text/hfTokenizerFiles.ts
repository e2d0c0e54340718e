/**
 * @file Reading a Hugging Face tokenizer directory (`tokenizer.json`, `tokenizer_config.json`,
 * `special_tokens_map.json`) into the facts the families need: the special-token framing the file's
 * post-processor adds, the pad token, and which family that makes. Pure parsing; every error names the file.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TokenizerFamily } from './types.js';

export const TOKENIZER_JSON = 'tokenizer.json';
export const TOKENIZER_CONFIG_JSON = 'tokenizer_config.json';
export const SPECIAL_TOKENS_MAP_JSON = 'special_tokens_map.json';

export type JsonRecord = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A tokenizer directory's files, parsed; the two optional ones are `undefined` when absent. */
export interface HfTokenizerFiles {
  dir: string;
  tokenizer: JsonRecord;
  config: JsonRecord | undefined;
  specialTokensMap: JsonRecord | undefined;
}

async function readJson(file: string, required: boolean): Promise<JsonRecord | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!isRecord(json))
    throw new Error(`${file}: expected a JSON object, got ${Array.isArray(json) ? 'an array' : typeof json}`);
  return json;
}

/** Reads `tokenizer.json` (required) and the two optional JSON files of `dir`. */
export async function readHfTokenizerFiles(dir: string): Promise<HfTokenizerFiles> {
  const [tokenizer, config, specialTokensMap] = await Promise.all([
    readJson(path.join(dir, TOKENIZER_JSON), true),
    readJson(path.join(dir, TOKENIZER_CONFIG_JSON), false),
    readJson(path.join(dir, SPECIAL_TOKENS_MAP_JSON), false),
  ]);
  if (tokenizer === undefined) throw new Error(`cannot read ${path.join(dir, TOKENIZER_JSON)}`);
  if (!isRecord(tokenizer['model']))
    throw new Error(`${path.join(dir, TOKENIZER_JSON)}: expected a Hugging Face tokenizer with a "model" object`);
  return { dir, tokenizer, config, specialTokensMap };
}

/** The content of a special-token entry: transformers writes a string or `{ "content": … }`. */
export function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isRecord(value) && typeof value['content'] === 'string') return value['content'];
  return undefined;
}

/** A token's id: an added token first (as the Rust library looks it up), else the model's vocabulary. */
export function tokenId(tokenizer: JsonRecord, content: string): number | undefined {
  const added = tokenizer['added_tokens'];
  if (Array.isArray(added)) {
    for (const token of added) {
      if (isRecord(token) && token['content'] === content && typeof token['id'] === 'number') return token['id'];
    }
  }
  const model = tokenizer['model'];
  if (!isRecord(model)) return undefined;
  const vocab = model['vocab'];
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], …], id = index.
    const index = vocab.findIndex((entry) => Array.isArray(entry) && entry[0] === content);
    return index >= 0 ? index : undefined;
  }
  if (isRecord(vocab) && typeof vocab[content] === 'number') return vocab[content];
  return undefined;
}

/** The special ids the file's post-processor puts around a single sequence. */
export interface Framing {
  prefix: number[];
  suffix: number[];
}

function templateFraming(processor: JsonRecord, file: string): Framing {
  const single = processor['single'];
  const specials = processor['special_tokens'];
  if (!Array.isArray(single)) throw new Error(`${file}: TemplateProcessing has no "single" template`);
  const framing: Framing = { prefix: [], suffix: [] };
  let seenSequence = false;
  for (const piece of single) {
    if (isRecord(piece) && isRecord(piece['Sequence'])) {
      seenSequence = true;
      continue;
    }
    const name = isRecord(piece) && isRecord(piece['SpecialToken']) ? piece['SpecialToken']['id'] : undefined;
    const entry = typeof name === 'string' && isRecord(specials) ? specials[name] : undefined;
    const ids = isRecord(entry) ? entry['ids'] : undefined;
    if (typeof name !== 'string' || !Array.isArray(ids) || !ids.every((id) => Number.isInteger(id))) {
      throw new Error(`${file}: TemplateProcessing entry ${JSON.stringify(piece)} has no ids in "special_tokens"`);
    }
    (seenSequence ? framing.suffix : framing.prefix).push(...(ids as number[]));
  }
  if (!seenSequence) throw new Error(`${file}: TemplateProcessing's "single" template has no $A sequence`);
  return framing;
}

function pairId(value: unknown, what: string, file: string): number {
  if (Array.isArray(value) && typeof value[1] === 'number') return value[1];
  throw new Error(`${file}: post_processor "${what}" should be [token, id], got ${JSON.stringify(value)}`);
}

/** Framing from `post_processor` (TemplateProcessing, RobertaProcessing, BertProcessing, a Sequence of them, or none). */
export function postProcessorFraming(processor: unknown, file: string): Framing {
  if (processor === null || processor === undefined) return { prefix: [], suffix: [] };
  if (!isRecord(processor)) throw new Error(`${file}: expected "post_processor" to be an object or null`);
  switch (processor['type']) {
    case 'TemplateProcessing':
      return templateFraming(processor, file);
    case 'RobertaProcessing':
    case 'BertProcessing':
      return { prefix: [pairId(processor['cls'], 'cls', file)], suffix: [pairId(processor['sep'], 'sep', file)] };
    case 'ByteLevel':
      return { prefix: [], suffix: [] };
    case 'Sequence': {
      const processors = processor['processors'];
      if (!Array.isArray(processors)) throw new Error(`${file}: Sequence post_processor has no "processors"`);
      const framings = processors
        .map((p) => postProcessorFraming(p, file))
        .filter((f) => f.prefix.length + f.suffix.length > 0);
      return framings[0] ?? { prefix: [], suffix: [] };
    }
    default:
      throw new Error(`${file}: unsupported post_processor type ${JSON.stringify(processor['type'])}`);
  }
}

/**
 * The framing a transformers tokenizer built from these files adds: the post-processor's, except that
 * `add_bos_token` / `add_eos_token` in `tokenizer_config.json` (Gemma/Llama-style fast tokenizers rebuild their
 * template from them; open_clip sets them for SigLIP2) decide whether the start and end tokens are there.
 */
export function effectiveFraming(files: HfTokenizerFiles): Framing {
  const file = path.join(files.dir, TOKENIZER_JSON);
  const framing = postProcessorFraming(files.tokenizer['post_processor'], file);
  const config = files.config;
  if (config === undefined) return framing;
  const configFile = path.join(files.dir, TOKENIZER_CONFIG_JSON);
  const flagged = (
    flag: 'add_bos_token' | 'add_eos_token',
    token: 'bos_token' | 'eos_token',
    side: 'prefix' | 'suffix',
  ): void => {
    const value = config[flag];
    if (value === undefined || value === null) return;
    if (typeof value !== 'boolean')
      throw new Error(`${configFile}: expected ${flag} to be a boolean, got ${JSON.stringify(value)}`);
    const content = tokenContent(config[token]) ?? tokenContent(files.specialTokensMap?.[token]);
    const id = content === undefined ? undefined : tokenId(files.tokenizer, content);
    if (!value) {
      if (id !== undefined) framing[side] = framing[side].filter((x) => x !== id);
      else if (side === 'prefix') framing.prefix = [];
      else framing.suffix = [];
      return;
    }
    if (id === undefined)
      throw new Error(`${configFile}: ${flag} is true but ${token} ${JSON.stringify(content)} is not in ${file}`);
    if (!framing[side].includes(id))
      framing[side] = side === 'prefix' ? [id, ...framing.prefix] : [...framing.suffix, id];
  };
  flagged('add_bos_token', 'bos_token', 'prefix');
  flagged('add_eos_token', 'eos_token', 'suffix');
  return framing;
}

/**
 * The pad id: `pad_token` of `tokenizer_config.json`, else of `special_tokens_map.json` (a string or `{content}`),
 * else the `padding.pad_id` of `tokenizer.json`. `undefined` when none names one.
 */
export function padTokenId(files: HfTokenizerFiles): number | undefined {
  const sources: Array<[string, unknown]> = [
    [TOKENIZER_CONFIG_JSON, files.config?.['pad_token']],
    [SPECIAL_TOKENS_MAP_JSON, files.specialTokensMap?.['pad_token']],
  ];
  for (const [name, value] of sources) {
    if (value === undefined || value === null) continue;
    const content = tokenContent(value);
    const file = path.join(files.dir, name);
    if (content === undefined)
      throw new Error(
        `${file}: expected pad_token to be a string or an object with "content", got ${JSON.stringify(value)}`,
      );
    const id = tokenId(files.tokenizer, content);
    if (id === undefined)
      throw new Error(
        `${file}: pad_token ${JSON.stringify(content)} is not a token of ${path.join(files.dir, TOKENIZER_JSON)}`,
      );
    return id;
  }
  const padding = files.tokenizer['padding'];
  if (isRecord(padding) && Number.isInteger(padding['pad_id'])) return padding['pad_id'] as number;
  return undefined;
}

/** `model.type` of `tokenizer.json`. */
export function modelType(files: HfTokenizerFiles): string {
  const model = files.tokenizer['model'] as JsonRecord;
  return typeof model['type'] === 'string' ? model['type'] : 'unknown';
}

/** CLIP's markers. */
const CLIP_MARKERS = ['<|startoftext|>', '<|endoftext|>'] as const;

/** A BPE model with both CLIP markers as added tokens: OpenAI's CLIP tokenizer (whatever its post-processor). */
export function isClipBpe(files: HfTokenizerFiles): boolean {
  const added = Array.isArray(files.tokenizer['added_tokens']) ? (files.tokenizer['added_tokens'] as unknown[]) : [];
  const hasMarker = (m: string): boolean => added.some((t) => isRecord(t) && t['content'] === m);
  return modelType(files) === 'BPE' && CLIP_MARKERS.every(hasMarker);
}

/** A FLORES-200 language code (`eng_Latn`): NLLB's tokenizers open every text with one. */
const FLORES_CODE = /^[a-z]{3}_[A-Z][a-z]{3}$/;

/** The content of the token with `id` among the added tokens. */
function addedTokenContent(tokenizer: JsonRecord, id: number): string | undefined {
  const added = tokenizer['added_tokens'];
  if (!Array.isArray(added)) return undefined;
  const token: unknown = added.find((t) => isRecord(t) && t['id'] === id);
  return isRecord(token) && typeof token['content'] === 'string' ? token['content'] : undefined;
}

/**
 * Picks the family from the files' content: CLIP BPE by its markers; otherwise by the model type and the framing
 * the post-processor adds: a language code … `</s>` is NLLB; `<bos> … <eos>` is XLM-R on a Unigram model and BERT on
 * a WordPiece one; `… <eos>` alone is SigLIP (T5 Unigram or Gemma BPE).
 */
export function detectFamily(files: HfTokenizerFiles, framing: Framing): TokenizerFamily {
  if (isClipBpe(files)) return 'clip-bpe';
  const file = path.join(files.dir, TOKENIZER_JSON);
  const type = modelType(files);
  const { prefix, suffix } = framing;
  if (prefix.length === 1 && suffix.length === 1) {
    const first = addedTokenContent(files.tokenizer, prefix[0] as number);
    if (first !== undefined && FLORES_CODE.test(first) && (type === 'BPE' || type === 'Unigram')) return 'nllb';
    if (type === 'Unigram') return 'xlm-r';
    if (type === 'WordPiece') return 'bert';
  }
  if ((type === 'Unigram' || type === 'BPE') && prefix.length === 0 && suffix.length === 1) return 'siglip';
  const shape = `${prefix.length} start and ${suffix.length} end token(s)`;
  throw new Error(
    `${file}: unsupported tokenizer (a ${type} model whose post-processor adds ${shape}); supported: CLIP BPE ` +
      '(<|startoftext|> … <|endoftext|>), XLM-R (Unigram, <s> … </s>), SigLIP (T5 Unigram or Gemma BPE, … </s>), ' +
      'NLLB (<language code> … </s>), BERT (WordPiece, [CLS] … [SEP])',
  );
}
