import { describe, expect, it } from 'vitest';
import { clipWeightSpecs } from '../../../scripts/model/clipWeights.js';
import { countParameters, imageTowerFlops, PRESETS } from '../../../scripts/model/presets.js';

function specTotal(preset: (typeof PRESETS)[keyof typeof PRESETS], prefix?: string): number {
  return clipWeightSpecs(preset)
    .filter((spec) => prefix === undefined || spec.name.startsWith(prefix))
    .reduce((sum, spec) => sum + spec.dims.reduce((a, b) => a * b, 1), 0);
}

describe('presets', () => {
  it('should give vit-b-32 the real ViT-B/32 parameter counts', () => {
    const counts = countParameters(PRESETS['vit-b-32']);
    // HF counts for openai/clip-vit-base-patch32: vision_model 87,456,000 + visual_projection 393,216.
    expect(counts.visionModel).toBe(87_456_000);
    expect(counts.visualProjection).toBe(393_216);
    expect(counts.imageTower).toBe(87_849_216);
    expect(counts.textTower).toBe(63_428_096);
    expect(counts.total).toBe(151_277_313);
  });

  it('should count exactly the weights the generator draws', () => {
    for (const preset of Object.values(PRESETS)) {
      const counts = countParameters(preset);
      expect(specTotal(preset), preset.name).toBe(counts.total);
      expect(specTotal(preset, 'vision_model.') + specTotal(preset, 'visual_projection.'), preset.name).toBe(
        counts.imageTower,
      );
      expect(specTotal(preset, 'text_model.') + specTotal(preset, 'text_projection.'), preset.name).toBe(
        counts.textTower,
      );
    }
  });

  it('should put ViT-B/32 at about 8.8 GFLOP per image', () => {
    expect(imageTowerFlops(PRESETS['vit-b-32']) / 1e9).toBeCloseTo(8.8, 1);
  });

  it('should make the slow preset cost a third of ViT-B/32 per image in under 1 % of its image-tower weights', () => {
    expect(imageTowerFlops(PRESETS.slow) / 1e9).toBeCloseTo(2.84, 2);
    expect(imageTowerFlops(PRESETS.slow) / imageTowerFlops(PRESETS['vit-b-32'])).toBeGreaterThan(0.3);
    expect(countParameters(PRESETS.slow).imageTower / countParameters(PRESETS['vit-b-32']).imageTower).toBeLessThan(
      0.01,
    );
  });
});
