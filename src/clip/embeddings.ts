/**
 * The embedding task on one model, and its two rules that differ from classification: texts are embedded verbatim
 * unless a template is asked for, and vectors leave the clip folder as plain number arrays (JSON-ready, and free
 * of the cached Float32Array they were read from, which other jobs share).
 */
import type { ClipModel } from './ClipModel.js';
import { applyTemplate, ensemble } from './scoring.js';
import type { EmbeddingVectors, PromptConfig } from './types.js';

/** Texts whose prompts are built and embedded at once by {@link embedTextsOn}. */
const TEXTS_IN_FLIGHT = 256;

/** The template that leaves a text as it is. */
export const VERBATIM_TEMPLATE = '{}';

/** The templates a text embedding applies: the ones asked for, else none (the text itself). */
export function embeddingTemplatesOf(prompt: PromptConfig): string[] {
  if (prompt.promptTemplates !== undefined) return prompt.promptTemplates;
  return [prompt.promptTemplate ?? VERBATIM_TEMPLATE];
}

/**
 * A copy of a normalised embedding as numbers (each the exact float32 value). Array.from over a typed
 * array is a tight copy (~3 ms for 64 × 768); JSON then prints each value as its shortest round-trip double.
 */
export function toVector(embedding: Float32Array): number[] {
  return Array.from(embedding);
}

/** One vector per image, in order, through the model's image cache and batcher (shared with classification). */
export async function embedImagesOn(
  model: ClipModel,
  images: readonly Uint8Array[],
  signal: AbortSignal | undefined,
): Promise<EmbeddingVectors> {
  const vectors = await Promise.all(images.map((bytes, i) => model.embedImage(bytes, i, signal)));
  return { embeddings: vectors.map(toVector) };
}

/**
 * One vector per text, in order, with the token count usage reports: each text through `prompt`'s templates (several
 * are averaged, as classification's ensemble). A chunk at a time, as classification does for labels: bounded prompt
 * strings and promises in flight.
 */
export async function embedTextsOn(
  model: ClipModel,
  texts: readonly string[],
  prompt: PromptConfig,
  signal: AbortSignal | undefined,
): Promise<EmbeddingVectors> {
  const templates = embeddingTemplatesOf(prompt);
  const embeddings: number[][] = [];
  let tokens = 0;
  for (let start = 0; start < texts.length; start += TEXTS_IN_FLIGHT) {
    signal?.throwIfAborted();
    const chunk = texts.slice(start, start + TEXTS_IN_FLIGHT);
    const vectors = await Promise.all(
      chunk.map(async (text) => {
        const prompts = templates.map((template) => applyTemplate(template, text));
        const [vectors, counts] = await Promise.all([
          Promise.all(prompts.map((p) => model.embedPrompt(p))),
          Promise.all(prompts.map((p) => model.countTokens(p))),
        ]);
        for (const count of counts) tokens += count;
        return ensemble(vectors);
      }),
    );
    for (const vector of vectors) embeddings.push(toVector(vector));
  }
  return { embeddings, tokens };
}
