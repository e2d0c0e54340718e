/**
 * The embedding task's two rules that differ from classification: texts are embedded verbatim unless a
 * template is asked for, and vectors leave the clip folder as plain number arrays (JSON-ready, and free
 * of the cached Float32Array they were read from, which other jobs share).
 */
import type { PromptConfig } from './types.js';

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
