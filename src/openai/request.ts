/**
 * @file The body of `POST /v1/embeddings`, read into texts and images. Pure: no express, no I/O.
 *
 * `input` is a string or a list. A string is a text, except a `data:image/…` URI, which is an image (as NV-CLIP
 * takes them); with `modality: "image"` every string is an image (data URI, bare base64 or http(s) URL), with
 * `modality: "text"` every string is a text. A list may also hold `{"text": …}` and `{"image": …}` objects
 * (as Jina's API), mixed. A URL is never guessed to be an image: it is embedded as text unless `modality` or an
 * `{"image"}` object says otherwise. Token arrays (OpenAI's pre-tokenized input) are refused: the tokens of
 * OpenAI's tokenizers mean nothing to a CLIP text tower.
 */
import { badUserInput } from '../errors.js';

/** One input, in request order. */
export type EmbeddingInput = { kind: 'text'; text: string } | { kind: 'image'; image: string };

export type EncodingFormat = 'float' | 'base64';
export type Modality = 'text' | 'image';

export interface EmbeddingRequest {
  model: string;
  inputs: EmbeddingInput[];
  /** True when `input` was one string, not a list: errors then name `input`, not `input[0]`. */
  single: boolean;
  encodingFormat: EncodingFormat;
  /** Asked-for vector size; only the model's own is accepted (checked against the model). */
  dimensions: number | undefined;
}

const DATA_IMAGE_URI = /^\s*data:image\//i;

/** Reads a `POST /v1/embeddings` body; throws BAD_USER_INPUT naming the parameter (`input[3]`, `encoding_format`, …). */
export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  if (!isPlainObject(body))
    throw badUserInput(
      'The request body must be a JSON object with "model" and "input" (Content-Type: application/json)',
    );
  const model = body.model;
  if (typeof model !== 'string' || model.trim() === '')
    throw badUserInput(`"model" must be a model name, got ${describe(model)}`, 'model');
  const modality = parseModality(body.modality);
  const { inputs, single } = parseInputs(body.input, modality);
  return {
    model,
    inputs,
    single,
    encodingFormat: parseEncodingFormat(body.encoding_format),
    dimensions: parseDimensions(body.dimensions),
  };
}

function parseModality(value: unknown): Modality | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === 'text' || value === 'image') return value;
  throw badUserInput(`"modality" must be "text" or "image", got ${describe(value)}`, 'modality');
}

function parseEncodingFormat(value: unknown): EncodingFormat {
  if (value === undefined || value === null) return 'float';
  if (value === 'float' || value === 'base64') return value;
  throw badUserInput(`"encoding_format" must be "float" or "base64", got ${describe(value)}`, 'encoding_format');
}

function parseDimensions(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw badUserInput(`"dimensions" must be a positive integer, got ${describe(value)}`, 'dimensions');
  return value;
}

function parseInputs(value: unknown, modality: Modality | undefined): { inputs: EmbeddingInput[]; single: boolean } {
  if (typeof value === 'string') return { inputs: [stringInput(value, modality)], single: true };
  if (!Array.isArray(value)) {
    throw badUserInput(
      `"input" must be a string or a list of strings, {"text"} or {"image"} objects, got ${describe(value)}`,
      'input',
    );
  }
  if (value.length === 0) throw badUserInput('"input" must not be empty', 'input');
  if (value.every((item) => typeof item === 'number')) throw tokenArrays('input');
  return { inputs: value.map((item: unknown, index) => listItem(item, modality, `input[${index}]`)), single: false };
}

function stringInput(value: string, modality: Modality | undefined): EmbeddingInput {
  const isImage = modality === 'image' || (modality === undefined && DATA_IMAGE_URI.test(value));
  return isImage ? { kind: 'image', image: value } : { kind: 'text', text: value };
}

function listItem(item: unknown, modality: Modality | undefined, param: string): EmbeddingInput {
  if (typeof item === 'string') return stringInput(item, modality);
  if (Array.isArray(item)) throw tokenArrays(param);
  if (isPlainObject(item)) {
    const keys = ['text', 'image'].filter((key) => key in item);
    if (keys.length === 1 && typeof item.text === 'string') return { kind: 'text', text: item.text };
    if (keys.length === 1 && typeof item.image === 'string') return { kind: 'image', image: item.image };
    if (keys.length === 1)
      throw badUserInput(`"${param}.${keys[0]}" must be a string, got ${describe(item[keys[0] as string])}`, param);
    throw badUserInput(
      `"${param}" must be {"text": "…"} or {"image": "…"} (exactly one of them), got an object with ${keys.length === 0 ? 'neither' : 'both'}`,
      param,
    );
  }
  throw badUserInput(`"${param}" must be a string, {"text"} or {"image"} object, got ${describe(item)}`, param);
}

function tokenArrays(param: string) {
  return badUserInput(
    `"${param}": token arrays are not supported (a CLIP text tower has its own tokenizer); send the text as a string`,
    param,
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 50 ? `${value.slice(0, 50)}…` : value);
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
