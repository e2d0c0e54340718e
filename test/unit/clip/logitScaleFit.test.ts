import { describe, expect, it } from 'vitest';
import { fitScale, fitScaleAndBias } from '../../../src/clip/logitScaleFit.js';

describe('the logit-scale fit', () => {
  const cosines = [0.31, 0.12, -0.04, 0.27];

  it('should recover the scale of logits = s · cos', () => {
    const logits = cosines.map((c) => 100 * c);
    expect(fitScale(cosines, logits)?.logitScale).toBeCloseTo(100, 9);
  });

  it('should recover the scale and bias of logits = s · cos + b', () => {
    const logits = cosines.map((c) => 112.3 * c - 16.5);
    const fit = fitScaleAndBias(cosines, logits);
    expect(fit?.logitScale).toBeCloseTo(112.3, 9);
    expect(fit?.logitBias).toBeCloseTo(-16.5, 9);
  });

  it('should give nothing when the cosines cannot determine a positive slope', () => {
    expect(fitScale([0, 0, 0], [1, 2, 3])).toBeNull();
    expect(fitScaleAndBias([0.2, 0.2, 0.2], [1, 2, 3])).toBeNull();
    expect(
      fitScale(
        cosines,
        cosines.map((c) => -5 * c),
      ),
    ).toBeNull();
  });
});
