/**
 * Where a model's logit scale (and SigLIP's bias) comes from when neither its own option nor LOGIT_SCALE gives it:
 * a least-squares fit of the combined graph's logits against the cosines of its own embeddings (logits = s · cos
 * [+ b]). config.json's `logit_scale_init_value` is the *initial* value before training and is never used.
 */
import type { Logger } from '../logger.js';
import type { ModelSpec } from './layouts/index.js';
import type { LoadedModel } from './modelLoading.js';
import { OnnxGraph, type OnnxSessionOptions } from './runtime/onnx.js';
import { TextTower } from './runtime/towers.js';
import { normalize, resolveScoring } from './scoring.js';
import type { TextTokenizer } from './tokenizer.js';
import type { PreprocessorConfig } from './types.js';

export type ResolvedScoring = ReturnType<typeof resolveScoring>;

/**
 * What the settings and the catalogue say about a model's scoring (see resolveScoring for the order), with what a
 * measurement on its combined graph needs. Part of ClipModelOptions.
 */
export interface ModelScoringSettings {
  name: string;
  session: OnnxSessionOptions;
  /** `LOGIT_SCALE`: the trained scale (not the log) of every softmax model; ignored by sigmoid (SigLIP) models. */
  logitScale: number | undefined;
  /** This model's own option (`CLIP_MODELS=name=source;logitScale=…;logitBias=…`): wins over everything. */
  modelScoring: { logitScale?: number | undefined; logitBias?: number | undefined } | undefined;
  /** What the catalogue publishes for this model, used when the model files cannot tell. */
  known: { logitScale?: number | undefined; logitBias?: number | undefined } | undefined;
  logger: Logger;
}

/** Prompts the fit runs: different enough that their cosines spread, so the slope is well determined. */
const FIT_PROMPTS = ['a photo of a cat.', 'a diagram', 'x', 'two dogs playing in the snow'];

/** Below these, the cosines do not spread enough to determine a slope. */
const MIN_SPREAD_WITH_BIAS = 1e-10;
const MIN_SPREAD = 1e-8;

/** The scoring from the candidates in order (see resolveScoring); the combined graph is measured only when it can decide. */
export async function resolveModelScoring(
  loaded: LoadedModel,
  candidates: ModelScoringSettings,
): Promise<ResolvedScoring> {
  const { spec } = loaded;
  const needsMeasure =
    candidates.modelScoring?.logitScale === undefined &&
    (spec.scoring === 'sigmoid' || candidates.logitScale === undefined) &&
    loaded.graphs.combinedPath !== undefined;
  const measured = needsMeasure
    ? await measureLogitScale(
        loaded.graphs.combinedPath!,
        spec.image,
        loaded.tokenizer,
        candidates.session,
        spec.scoring === 'sigmoid',
      )
    : null;
  const scoring = resolveScoring({
    kind: spec.scoring,
    model: candidates.name,
    option: candidates.modelScoring,
    setting: candidates.logitScale,
    measured: measured ?? undefined,
    catalogue: candidates.known,
  });
  logScoringCaveats(spec, scoring, candidates);
  return scoring;
}

function logScoringCaveats(spec: ModelSpec, scoring: ResolvedScoring, candidates: ModelScoringSettings): void {
  const log = {
    model: candidates.name,
    layout: spec.layout,
    scoring: scoring.scoring.kind,
    logitScale: scoring.scoring.logitScale,
    logitScaleSource: scoring.scaleSource,
  };
  if (scoring.scaleSource === 'default') {
    candidates.logger.warn(
      log,
      'the trained logit scale is known neither from the model files nor from the catalogue; using 100, as for OpenAI CLIP. Set LOGIT_SCALE or the per-model logitScale option to override',
    );
  }
  if (scoring.scoring.kind === 'sigmoid' && candidates.logitScale !== undefined) {
    candidates.logger.info(
      log,
      'LOGIT_SCALE does not apply to this sigmoid-scored (SigLIP) model; its per-model logitScale option does',
    );
  }
}

/**
 * The trained scale (and, with `withBias`, a SigLIP bias) read from a combined graph (Hugging Face layout): one run
 * over a synthetic image and {@link FIT_PROMPTS}, its logits fitted against the cosines of its own embeddings.
 */
async function measureLogitScale(
  path: string,
  pre: PreprocessorConfig,
  tokenizer: TextTokenizer,
  session: OnnxSessionOptions,
  withBias: boolean,
): Promise<{ logitScale: number; logitBias?: number } | null> {
  // A child process: the combined graph is as big as both towers, and memory a worker thread's session frees stays
  // in the server's heap (glibc), which would double a ViT-B/32 server's resident memory for good.
  const graph = await OnnxGraph.load(path, session, 'process');
  try {
    if (!graph.hasOutput('logits_per_image')) return null;
    const pixels = new Float32Array(3 * pre.cropHeight * pre.cropWidth);
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.sin(i * 0.37);
    const prompts = FIT_PROMPTS.map((prompt) => tokenizer.encode(prompt));
    const text = new TextTower(graph);
    text.setPadding(tokenizer.padId, undefined);
    const out = await graph.run(
      {
        pixel_values: { kind: 'float', data: pixels, dims: [1, 3, pre.cropHeight, pre.cropWidth] },
        ...text.feeds(prompts),
      },
      ['logits_per_image', 'image_embeds', 'text_embeds'],
    );
    const image = normalizedRows(out.image_embeds!.data, 1)[0]!;
    const texts = normalizedRows(out.text_embeds!.data, prompts.length);
    const cosines = texts.map((t) => t.reduce((sum, v, k) => sum + v * image[k]!, 0));
    const logits = Array.from(out.logits_per_image!.data.slice(0, prompts.length));
    return withBias ? fitScaleAndBias(cosines, logits) : fitScale(cosines, logits);
  } finally {
    await graph.release();
  }
}

function normalizedRows(data: Float32Array, rows: number): Float32Array[] {
  const width = data.length / rows;
  return Array.from({ length: rows }, (_, i) => normalize(data.slice(i * width, (i + 1) * width)));
}

/** Least squares of logits = s · cos + b (a line through the points); null when the fit is degenerate. */
export function fitScaleAndBias(
  cosines: readonly number[],
  logits: readonly number[],
): { logitScale: number; logitBias: number } | null {
  const n = cosines.length;
  const mx = cosines.reduce((a, b) => a + b, 0) / n;
  const my = logits.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  cosines.forEach((x, j) => {
    sxy += (x - mx) * (logits[j]! - my);
    sxx += (x - mx) ** 2;
  });
  const scale = sxy / sxx;
  return sxx > MIN_SPREAD_WITH_BIAS && Number.isFinite(scale) && scale > 0
    ? { logitScale: scale, logitBias: my - scale * mx }
    : null;
}

/** Least squares of logits = s · cos (through the origin), robust when one cosine is near 0; null when degenerate. */
export function fitScale(cosines: readonly number[], logits: readonly number[]): { logitScale: number } | null {
  let num = 0;
  let den = 0;
  cosines.forEach((cos, j) => {
    num += logits[j]! * cos;
    den += cos * cos;
  });
  const scale = num / den;
  return den > MIN_SPREAD && Number.isFinite(scale) && scale > 0 ? { logitScale: scale } : null;
}
