/**
 * open_clip's `build_zero_shot_classifier` (src/open_clip/zero_shot_classifier.py): for every class, the prompt of
 * every template is embedded, the embeddings are averaged and the mean is L2-normalised, giving one row per class.
 * The text tower's embeddings are already L2-normalised one by one (OpenAI's notebook normalises them before the
 * mean; open_clip's model does it in `encode_text(normalize=True)`), so {@link ensemble} is the whole recipe. Both
 * an inline classification and a stored classifier build their rows here, so their probabilities agree.
 */
import { applyTemplate, ensemble, scoreClasses } from './scoring.js';
import type { Scoring } from './types.js';

/** Embeds one prompt into a unit vector (the text tower, behind a batcher and maybe a cache). */
export type EmbedPrompt = (prompt: string) => Promise<Float32Array>;

export interface ZeroShotWeightOptions {
  /**
   * Prompts built and embedded at once: enough to fill several text batches, few enough that a large classifier's
   * prompt strings are not all created in one go. Progress is reported after each such group.
   */
  promptsInFlight: number;
  /** Called after each group with the prompts embedded so far. */
  onProgress?: ((builtPrompts: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/** One weight row per class, in class order: the normalised mean of the class's normalised prompt embeddings. */
export async function buildZeroShotWeights(
  labels: readonly string[],
  templates: readonly string[],
  embed: EmbedPrompt,
  options: ZeroShotWeightOptions,
): Promise<Float32Array[]> {
  const classesAtOnce = Math.max(1, Math.floor(options.promptsInFlight / Math.max(1, templates.length)));
  const rows: Float32Array[] = [];
  for (let start = 0; start < labels.length; start += classesAtOnce) {
    options.signal?.throwIfAborted();
    const chunk = labels.slice(start, start + classesAtOnce);
    rows.push(
      ...(await Promise.all(
        chunk.map(async (label) => ensemble(await Promise.all(templates.map((t) => embed(applyTemplate(t, label)))))),
      )),
    );
    options.onProgress?.(rows.length * templates.length);
  }
  return rows;
}

/** Rows laid end to end (classes × dimensions), the form weights are stored in. */
export function packWeights(rows: readonly Float32Array[]): Float32Array {
  const width = rows[0]?.length ?? 0;
  const packed = new Float32Array(rows.length * width);
  rows.forEach((row, i) => packed.set(row, i * width));
  return packed;
}

/** The rows of a packed matrix (views, no copy); throws when its length is not a multiple of `dimensions`. */
export function unpackWeights(packed: Float32Array, dimensions: number): Float32Array[] {
  if (dimensions < 1 || packed.length % dimensions !== 0)
    throw new Error(`weights of ${packed.length} values are not rows of ${dimensions}`);
  return Array.from({ length: packed.length / dimensions }, (_, i) =>
    packed.subarray(i * dimensions, (i + 1) * dimensions),
  );
}

/** Per image, the probability of each class row under the model's scoring: no text tower runs. */
export function scoreAgainstWeights(
  images: readonly Float32Array[],
  rows: readonly Float32Array[],
  scoring: Scoring,
): number[][] {
  return scoreClasses(images, rows, scoring);
}
