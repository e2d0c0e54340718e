import { describe, expect, it } from 'vitest';
import { resolveScoring, scoreClasses, sigmoid } from '../../../src/clip/scoring.js';
import { ConfigError, loadConfig, parseModelOptions } from '../../../src/config.js';

describe('per-model options', () => {
  it('should split source;logitScale=…;logitBias=… with camel or snake case keys', () => {
    expect(parseModelOptions('immich-app/ViT-B-16-SigLIP__webli;logitScale=112.3;logit_bias=-16.5')).toEqual({
      source: 'immich-app/ViT-B-16-SigLIP__webli',
      options: { logitScale: 112.3, logitBias: -16.5 },
    });
    expect(parseModelOptions('/models/clip')).toEqual({ source: '/models/clip', options: {} });
  });

  it.each([
    ['x;logitScale=0', /logitScale to be a positive number/],
    ['x;logitScale=abc', /logitScale to be a positive number/],
    ['x;logitBias=', /logitBias to be a number/],
    ['x;temperature=2', /among logitScale, logitBias, load, got "temperature"/],
    ['x;logitScale', /key=value/],
  ])('should refuse %s', (text, message) => {
    expect(() => parseModelOptions(text)).toThrow(message);
  });

  it('should read load=lazy or eager, in any case, and refuse other policies', () => {
    expect(parseModelOptions('x;load=lazy').options).toEqual({ load: 'lazy' });
    expect(parseModelOptions('x;Load=EAGER').options).toEqual({ load: 'eager' });
    expect(() => parseModelOptions('x;load=sometimes')).toThrow(/expected load to be eager or lazy, got "sometimes"/);
  });

  it('should be validated at start in CLIP_MODEL and CLIP_MODELS, naming the variable', () => {
    expect(
      loadConfig([], { CLIP_MODELS: 'sig=immich-app/ViT-B-16-SigLIP__webli;logitScale=10;logitBias=-5' }).clipModels,
    ).toEqual([{ name: 'sig', source: 'immich-app/ViT-B-16-SigLIP__webli;logitScale=10;logitBias=-5' }]);
    expect(() => loadConfig([], { CLIP_MODELS: 'sig=x;logitScale=-1' })).toThrow(ConfigError);
    expect(() => loadConfig([], { CLIP_MODEL: 'x;bias=1' })).toThrow(/CLIP_MODEL: expected a model option/);
  });
});

describe('resolveScoring', () => {
  it('should take a softmax scale from the model option, then LOGIT_SCALE, the graph, the catalogue, else 100', () => {
    const base = { kind: 'softmax' as const, model: 'm' };
    expect(
      resolveScoring({
        ...base,
        option: { logitScale: 50 },
        setting: 70,
        measured: { logitScale: 90 },
        catalogue: { logitScale: 100 },
      }),
    ).toMatchObject({ scoring: { logitScale: 50 }, scaleSource: 'model-option' });
    expect(resolveScoring({ ...base, setting: 70, measured: { logitScale: 90 } })).toMatchObject({
      scoring: { logitScale: 70 },
      scaleSource: 'setting',
    });
    expect(resolveScoring({ ...base, measured: { logitScale: 90 }, catalogue: { logitScale: 100 } })).toMatchObject({
      scaleSource: 'model',
    });
    expect(resolveScoring({ ...base, catalogue: { logitScale: 100 } })).toMatchObject({ scaleSource: 'catalogue' });
    expect(resolveScoring(base)).toEqual({
      scoring: { kind: 'softmax', logitScale: 100 },
      scaleSource: 'default',
      biasSource: undefined,
    });
  });

  it("should need a sigmoid model's scale and bias from somewhere, ignore LOGIT_SCALE for it, and never invent them", () => {
    expect(() => resolveScoring({ kind: 'sigmoid', model: 'siglip', setting: 100 })).toThrow(
      /siglip is a SigLIP .* logitScale and logitBias .*CLIP_MODELS=siglip=<source>;logitScale=/,
    );
    expect(() => resolveScoring({ kind: 'sigmoid', model: 's', option: { logitScale: 10 } })).toThrow(
      /trained logitBias is known/,
    );
    expect(
      resolveScoring({
        kind: 'sigmoid',
        model: 's',
        option: { logitBias: -3 },
        measured: { logitScale: 12, logitBias: -9 },
      }),
    ).toEqual({
      scoring: { kind: 'sigmoid', logitScale: 12, logitBias: -3 },
      scaleSource: 'model',
      biasSource: 'model-option',
    });
  });

  it('should score sigmoid classes independently and softmax classes as a distribution', () => {
    const image = Float32Array.of(1, 0);
    const classes = [Float32Array.of(1, 0), Float32Array.of(0, 1)];
    expect(scoreClasses([image], classes, { kind: 'sigmoid', logitScale: 10, logitBias: -5 })[0]).toEqual([
      sigmoid(5),
      sigmoid(-5),
    ]);
    const softmax = scoreClasses([image], classes, { kind: 'softmax', logitScale: 10 })[0]!;
    expect(softmax[0]! + softmax[1]!).toBeCloseTo(1, 12);
    expect(sigmoid(-800)).toBe(0);
    expect(sigmoid(800)).toBe(1);
  });
});
