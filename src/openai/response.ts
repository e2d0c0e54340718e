/**
 * @file The answers of the OpenAI-compatible routes, in OpenAI's shapes. Pure functions.
 */
import type { ModelInfo } from '../clip/index.js';
import type { EncodingFormat } from './request.js';

export interface EmbeddingObject {
  object: 'embedding';
  index: number;
  /** Numbers, or (`encoding_format: "base64"`) the float32 values little-endian, base64-encoded, as OpenAI sends them. */
  embedding: number[] | string;
}

export interface EmbeddingsResponse {
  object: 'list';
  data: EmbeddingObject[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

export interface ModelsResponse {
  object: 'list';
  data: ModelObject[];
}

/** The vectors as `/v1/embeddings` answers them, in input order; `tokens` are the texts' (images count 0). */
export function toEmbeddingsResponse(
  vectors: readonly number[][],
  model: string,
  encoding: EncodingFormat,
  tokens: number,
): EmbeddingsResponse {
  return {
    object: 'list',
    data: vectors.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: encoding === 'base64' ? toBase64Float32(vector) : vector,
    })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

/** A vector as little-endian float32 bytes in base64; the values are float32 already, so nothing is rounded. */
export function toBase64Float32(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  for (const [i, value] of vector.entries()) bytes.writeFloatLE(value, i * 4);
  return bytes.toString('base64');
}

/** The inverse of {@link toBase64Float32}, for clients and tests. */
export function fromBase64Float32(text: string): number[] {
  const bytes = Buffer.from(text, 'base64');
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
}

export const MODEL_OWNER = 'clip-classify-server';

/** `GET /v1/models`: every configured model, loaded or not. */
export function toModelsResponse(models: readonly ModelInfo[], createdAt: number): ModelsResponse {
  return {
    object: 'list',
    data: models.map((model) => ({ id: model.name, object: 'model', created: createdAt, owned_by: MODEL_OWNER })),
  };
}
