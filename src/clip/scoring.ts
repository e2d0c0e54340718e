/**
 * Zero-shot scoring as CLIP defines it: prompts from templates, an ensemble of normalised text
 * embeddings per class, then per image softmax over classes of `logitScale · cos(image, class)`.
 */
import { badUserInput } from '../errors.js';
import { DEFAULT_PROMPT_TEMPLATE, type PromptConfig } from './types.js';

/** The templates a prompt config stands for; validated (each must contain `{}`). */
export function templatesOf(config: PromptConfig): string[] {
  if (config.promptTemplates !== undefined) return config.promptTemplates;
  return [config.promptTemplate ?? DEFAULT_PROMPT_TEMPLATE];
}

/** `"a photo of a {}."` + `"cat"` → `"a photo of a cat."` (every `{}` is replaced). */
export function applyTemplate(template: string, label: string): string {
  return template.split('{}').join(label);
}

const MAX_TEMPLATES = 100;
const MAX_TEMPLATE_LENGTH = 1000;

/** Checks user-supplied per-job config (`{ promptTemplate }` or `{ promptTemplates }`) and returns it typed. */
export function parsePromptConfig(value: unknown, field: string): PromptConfig {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw badUserInput(`${field}: expected an object such as { "promptTemplate": "a photo of a {}." }, got ${describe(value)}`, field);
  }
  const record = value as Record<string, unknown>;
  const known = new Set(['promptTemplate', 'promptTemplates']);
  for (const key of Object.keys(record)) {
    if (!known.has(key)) throw badUserInput(`${field}.${key}: unknown setting; expected promptTemplate or promptTemplates`, `${field}.${key}`);
  }
  const { promptTemplate, promptTemplates } = record;
  if (promptTemplate !== undefined && promptTemplates !== undefined) {
    throw badUserInput(`${field}: give promptTemplate or promptTemplates, not both`, field);
  }
  const config: PromptConfig = {};
  if (promptTemplate !== undefined) {
    config.promptTemplate = checkTemplate(promptTemplate, `${field}.promptTemplate`);
  }
  if (promptTemplates !== undefined) {
    const f = `${field}.promptTemplates`;
    if (!Array.isArray(promptTemplates) || promptTemplates.length === 0) {
      throw badUserInput(`${f}: expected a non-empty list of strings containing {}, got ${describe(promptTemplates)}`, f);
    }
    if (promptTemplates.length > MAX_TEMPLATES) {
      throw badUserInput(`${f}: ${promptTemplates.length} templates exceeds the limit of ${MAX_TEMPLATES}`, f);
    }
    config.promptTemplates = promptTemplates.map((t, i) => checkTemplate(t, `${f}[${i}]`));
  }
  return config;
}

function checkTemplate(value: unknown, field: string): string {
  if (typeof value !== 'string') throw badUserInput(`${field}: expected a string, got ${describe(value)}`, field);
  if (!value.includes('{}')) throw badUserInput(`${field}: the template must contain {} where the class name goes`, field);
  // Once: each further {} adds a whole class name to every prompt (500 of them made 500 KB prompts; issue 5).
  if (value.indexOf('{}') !== value.lastIndexOf('{}')) throw badUserInput(`${field}: the template must contain {} only once`, field);
  if (value.length > MAX_TEMPLATE_LENGTH) {
    throw badUserInput(`${field}: ${value.length} characters exceeds the limit of ${MAX_TEMPLATE_LENGTH}`, field);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? 'a string' : typeof value;
}

/** Scales `v` to unit length in place and returns it. */
export function normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i]! /= norm;
  return v;
}

/** OpenAI's prompt ensemble: the mean of the (already normalised) embeddings, normalised again. */
export function ensemble(embeddings: readonly Float32Array[]): Float32Array {
  const first = embeddings[0];
  if (!first) throw new Error('ensemble of no embeddings');
  if (embeddings.length === 1) return first;
  const mean = new Float32Array(first.length);
  for (const e of embeddings) for (let i = 0; i < mean.length; i++) mean[i]! += e[i]!;
  return normalize(mean);
}

export function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** Numerically stable softmax. */
export function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** Per image, the probability of each class: softmax over classes of `logitScale · cos`. Inputs are unit vectors. */
export function classProbabilities(
  images: readonly Float32Array[],
  classes: readonly Float32Array[],
  logitScale: number,
): number[][] {
  return images.map((image) => softmax(classes.map((c) => logitScale * dot(image, c))));
}
