/**
 * The key stored weights are kept under: the model's files (ClipService.modelFingerprint) and the recipe (classes and
 * templates, in order, and the recipe's name), hashed. The same recipe on the same files finds its weights after a
 * restart; any change to either builds them again.
 */
import { createHash } from 'node:crypto';

/** open_clip's build_zero_shot_classifier (src/clip/zeroShotWeights.ts); a different recipe must change this name. */
const RECIPE = 'open_clip.build_zero_shot_classifier';

export function weightsKey(modelFingerprint: string, classes: readonly string[], templates: readonly string[]): string {
  return createHash('sha256')
    .update(JSON.stringify({ recipe: RECIPE, model: modelFingerprint, classes, templates }))
    .digest('hex');
}
