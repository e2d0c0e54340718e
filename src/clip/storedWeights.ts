/**
 * What stored zero-shot classifiers need of the models, beside ClipService: the fingerprint of the files each model
 * was loaded from (what stored weights are keyed by), open_clip's weights built past the text cache with progress,
 * and images scored against built weights with the image tower alone.
 */
import type { ClipModel } from './ClipModel.js';
import { modelFingerprint } from './modelFingerprint.js';
import type { BuildWeightsRequest, ClassifyWithWeightsRequest, Precision } from './types.js';
import { buildZeroShotWeights, scoreAgainstWeights } from './zeroShotWeights.js';

/** Text batches a build keeps in flight: enough that the text tower never waits for the next group's prompts. */
const TEXT_BATCHES_IN_FLIGHT = 4;

export interface StoredWeightsOptions {
  precision: Precision;
  /** Largest text batch (prompts): see MAX_TEXT_BATCH_SIZE. */
  maxTextBatchSize: number;
}

export class StoredWeights {
  readonly #options: StoredWeightsOptions;
  /** Per model, the fingerprint of the files it was last loaded from (see modelFingerprint.ts). */
  readonly #fingerprints = new Map<string, Promise<string>>();

  constructor(options: StoredWeightsOptions) {
    this.#options = options;
  }

  /** Records where a model's files are, once they are in place, as it starts loading. */
  filesReady(model: string, dir: string): void {
    const fingerprint = modelFingerprint(dir, this.#options.precision);
    // Read only when asked for; a failure then reaches the caller, never an unobserved rejection.
    fingerprint.catch(() => undefined);
    this.#fingerprints.set(model, fingerprint);
  }

  /** The fingerprint of a loaded model's files. */
  fingerprintOf(model: string): Promise<string> {
    const fingerprint = this.#fingerprints.get(model);
    if (fingerprint === undefined) throw new Error(`model ${model} has not been loaded`);
    return fingerprint;
  }

  /** open_clip's zero-shot weights (one row per label), embedded past the text cache, with progress. */
  build(model: ClipModel, request: BuildWeightsRequest): Promise<Float32Array[]> {
    return buildZeroShotWeights(request.labels, request.templates, (prompt) => model.embedPromptUncached(prompt), {
      promptsInFlight: this.#options.maxTextBatchSize * TEXT_BATCHES_IN_FLIGHT,
      onProgress: request.onProgress,
      signal: request.signal,
    });
  }

  /** Per image, the probability of each row of the request's weights: only the image tower runs. */
  async score(model: ClipModel, request: ClassifyWithWeightsRequest): Promise<number[][]> {
    const images = await Promise.all(request.images.map((bytes, i) => model.embedImage(bytes, i, request.signal)));
    return scoreAgainstWeights(images, request.weights, model.scoring);
  }
}
