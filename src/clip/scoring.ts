/**
 * Zero-shot scoring: prompts from templates, an ensemble of normalised text embeddings per class, then per image
 * either softmax over classes of `scale · cos(image, class)` (CLIP) or, for SigLIP, `σ(scale · cos + bias)` for each
 * class on its own; and where the trained scale and bias come from ({@link resolveScoring}).
 */
import { AppError, ErrorCode, badUserInput } from '../errors.js';
import {
  DEFAULT_PROMPT_TEMPLATE,
  type PromptConfig,
  type Scoring,
  type ScoringKind,
  type ScoringSource,
} from './types.js';

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
    throw badUserInput(
      `${field}: expected an object such as { "promptTemplate": "a photo of a {}." }, got ${describe(value)}`,
      field,
    );
  }
  const record = value as Record<string, unknown>;
  const known = new Set(['promptTemplate', 'promptTemplates']);
  for (const key of Object.keys(record)) {
    if (!known.has(key))
      throw badUserInput(
        `${field}.${key}: unknown setting; expected promptTemplate or promptTemplates`,
        `${field}.${key}`,
      );
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
      throw badUserInput(
        `${f}: expected a non-empty list of strings containing {}, got ${describe(promptTemplates)}`,
        f,
      );
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
  if (!value.includes('{}'))
    throw badUserInput(`${field}: the template must contain {} where the class name goes`, field);
  // Once: each further {} adds a whole class name to every prompt (500 of them make 500 KB prompts).
  if (value.indexOf('{}') !== value.lastIndexOf('{}'))
    throw badUserInput(`${field}: the template must contain {} only once`, field);
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

/** Numerically stable logistic function. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Per image, the probability of each class under the model's scoring. Inputs are unit vectors. */
export function scoreClasses(
  images: readonly Float32Array[],
  classes: readonly Float32Array[],
  scoring: Scoring,
): number[][] {
  switch (scoring.kind) {
    case 'softmax':
      return classProbabilities(images, classes, scoring.logitScale);
    case 'sigmoid':
      // SigLIP is trained with a per-pair sigmoid loss: each class is a yes/no question of its own.
      return images.map((image) => classes.map((c) => sigmoid(scoring.logitScale * dot(image, c) + scoring.logitBias)));
  }
}

/** The places a trained scale (and a SigLIP bias) may come from, most specific first. */
export interface ScoringCandidates {
  /** What the model's files declare (hf-clip: softmax; immich: sigmoid when config.json has `init_logit_bias`). */
  kind: ScoringKind;
  /** The per-model option (`CLIP_MODELS=name=source;logitScale=…;logitBias=…`). */
  option?: { logitScale?: number | undefined; logitBias?: number | undefined } | undefined;
  /** `LOGIT_SCALE`: every softmax model's scale (not SigLIP's, whose scale and bias are trained as a pair). */
  setting?: number | undefined;
  /** Measured from a combined graph's logits. */
  measured?: { logitScale: number; logitBias?: number | undefined } | undefined;
  /** The catalogue's published values. */
  catalogue?: { logitScale?: number | undefined; logitBias?: number | undefined } | undefined;
  /** Names the model in errors. */
  model: string;
}

/** The default scale of a softmax model nothing else informs: OpenAI CLIP's trained value (and open_clip's clamp). */
export const DEFAULT_SOFTMAX_LOGIT_SCALE = 100;

/**
 * Decides the scoring: the per-model option, then (softmax only) LOGIT_SCALE, then the model's own graph, then the
 * catalogue; a softmax model informed by none gets 100 (source `default`, to be warned about). A sigmoid model
 * needs both a scale and a bias from one of those places; otherwise loading it fails with MODEL_UNAVAILABLE
 * naming the option, because a made-up bias gives meaningless probabilities.
 */
export function resolveScoring(c: ScoringCandidates): {
  scoring: Scoring;
  scaleSource: ScoringSource;
  biasSource: ScoringSource | undefined;
} {
  const pick = <T>(...options: [T | undefined, ScoringSource][]): [T, ScoringSource] | undefined =>
    options.find(([value]) => value !== undefined) as [T, ScoringSource] | undefined;
  if (c.kind === 'softmax') {
    const scale = pick<number>(
      [c.option?.logitScale, 'model-option'],
      [c.setting, 'setting'],
      [c.measured?.logitScale, 'model'],
      [c.catalogue?.logitScale, 'catalogue'],
    ) ?? [DEFAULT_SOFTMAX_LOGIT_SCALE, 'default'];
    return { scoring: { kind: 'softmax', logitScale: scale[0] }, scaleSource: scale[1], biasSource: undefined };
  }
  const scale = pick<number>(
    [c.option?.logitScale, 'model-option'],
    [c.measured?.logitScale, 'model'],
    [c.catalogue?.logitScale, 'catalogue'],
  );
  const bias = pick<number>(
    [c.option?.logitBias, 'model-option'],
    [c.measured?.logitBias, 'model'],
    [c.catalogue?.logitBias, 'catalogue'],
  );
  if (scale === undefined || bias === undefined) {
    const missing = [scale === undefined ? 'logitScale' : undefined, bias === undefined ? 'logitBias' : undefined]
      .filter(Boolean)
      .join(' and ');
    throw new AppError(
      ErrorCode.ModelUnavailable,
      `${c.model} is a SigLIP (sigmoid-scored) model, and its trained ${missing} is known neither from its files nor from the catalogue. ` +
        `Give them per model: CLIP_MODELS=${c.model}=<source>;logitScale=<exp of the trained logit_scale>;logitBias=<trained logit_bias> ` +
        '(the same options follow the source in CLIP_MODEL)',
    );
  }
  return {
    scoring: { kind: 'sigmoid', logitScale: scale[0], logitBias: bias[0] },
    scaleSource: scale[1],
    biasSource: bias[1],
  };
}
