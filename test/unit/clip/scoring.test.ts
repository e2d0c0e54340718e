import { describe, expect, it } from 'vitest';
import {
  applyTemplate,
  classProbabilities,
  ensemble,
  normalize,
  parsePromptConfig,
  softmax,
  templatesOf,
} from '../../../src/clip/scoring.js';
import { ErrorCode } from '../../../src/errors.js';

describe('scoring', () => {
  it('should apply templates, with "{}" meaning the class verbatim', () => {
    expect(applyTemplate('a photo of a {}.', 'cat')).toBe('a photo of a cat.');
    expect(applyTemplate('{}', 'a red car')).toBe('a red car');
    expect(templatesOf({})).toEqual(['a photo of a {}.']);
    expect(templatesOf({ promptTemplates: ['{}', 'art of {}'] })).toEqual(['{}', 'art of {}']);
  });

  it('should give probabilities that are the softmax of scale times cosine, summing to 1', () => {
    const image = normalize(new Float32Array([1, 0]));
    const classes = [normalize(new Float32Array([1, 0])), normalize(new Float32Array([0, 1]))];
    const [probs] = classProbabilities([image], classes, 100);
    expect(probs![0]! + probs![1]!).toBeCloseTo(1, 12);
    expect(probs![0]).toBeCloseTo(1 / (1 + Math.exp(-100)), 12);
  });

  it('should keep softmax finite for large logits', () => {
    expect(softmax([1000, 999])).toEqual([1 / (1 + Math.exp(-1)), Math.exp(-1) / (1 + Math.exp(-1))]);
  });

  it('should average normalised embeddings and renormalise for an ensemble', () => {
    const e = ensemble([normalize(new Float32Array([1, 0])), normalize(new Float32Array([0, 1]))]);
    expect(Array.from(e)).toEqual([Math.SQRT1_2, Math.SQRT1_2].map((x) => Math.fround(x)));
  });

  it.each([
    [{ promptTemplate: 'no placeholder' }, 'config.promptTemplate'],
    [{ promptTemplate: 3 }, 'config.promptTemplate'],
    [{ promptTemplates: [] }, 'config.promptTemplates'],
    [{ promptTemplates: ['{}', 7] }, 'config.promptTemplates[1]'],
    [{ promptTemplate: '{}', promptTemplates: ['{}'] }, 'config'],
    [{ temperature: 2 }, 'config.temperature'],
    ['text', 'config'],
  ])('should refuse the prompt config %j naming %s', (value, field) => {
    expect(() => parsePromptConfig(value, 'config')).toThrow(
      expect.objectContaining({ code: ErrorCode.BadUserInput, field }),
    );
  });

  it('should accept valid prompt configs', () => {
    expect(parsePromptConfig(undefined, 'config')).toEqual({});
    expect(parsePromptConfig({ promptTemplate: '{}' }, 'config')).toEqual({ promptTemplate: '{}' });
  });
});
