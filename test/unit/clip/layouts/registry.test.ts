import { describe, expect, it } from 'vitest';
import { hfClipLayout, hfFilePlan } from '../../../../src/clip/layouts/hfClip.js';
import { hfSiglipLayout } from '../../../../src/clip/layouts/hfSiglip.js';
import { immichFilePlan, immichLayout } from '../../../../src/clip/layouts/immich.js';
import { FALLBACK_LAYOUT, LAYOUT_NAMES, layoutOfListing } from '../../../../src/clip/layouts/index.js';

const URL = 'https://hub.test/api/models/o/n/revision/main';
const HF_CONFIGS = ['config.json', 'preprocessor_config.json', 'tokenizer.json'];
const HF_OPTIONAL = ['tokenizer_config.json', 'special_tokens_map.json'];
const IMMICH = [
  'config.json',
  'visual/model.onnx',
  'visual/preprocess_cfg.json',
  'visual/fp16/model.armnn',
  'textual/model.onnx',
  'textual/tokenizer.json',
];

describe('the layout registry', () => {
  it('should name every layout once, in the order directories and listings are matched', () => {
    expect(LAYOUT_NAMES).toEqual(['immich', 'hf-siglip', 'hf-clip']);
    expect(FALLBACK_LAYOUT).toBe(hfClipLayout);
  });

  it("should read a listing as immich's when it has immich's graphs, else as Hugging Face's", () => {
    expect(layoutOfListing(IMMICH)).toBe(immichLayout);
    expect(layoutOfListing([...HF_CONFIGS, 'onnx/model.onnx'])).toBe(hfClipLayout);
    // SigLIP's files are CLIP's: only config.json, once downloaded, tells them apart.
    expect(hfSiglipLayout.files.inListing([...HF_CONFIGS, 'onnx/model.onnx'])).toBe(false);
    expect(layoutOfListing(['README.md'])).toBe(FALLBACK_LAYOUT);
  });

  it('should say where each layout keeps its trained scale, and where it is the only source', () => {
    expect(hfClipLayout.files.trainedScale('fp16')).toEqual({ files: ['onnx/model_fp16.onnx'], needed: false });
    expect(hfSiglipLayout.files.trainedScale('fp32')).toEqual({ files: ['onnx/model.onnx'], needed: true });
    expect(immichLayout.files.trainedScale('fp32')).toEqual({ files: [], needed: false });
  });
});

describe('the Hugging Face file plan', () => {
  const towers = [...HF_CONFIGS, 'onnx/text_model_fp16.onnx', 'onnx/vision_model_fp16.onnx'];
  const combined = [...HF_CONFIGS, 'onnx/model_fp16.onnx'];

  it('should offer the towers, then the combined graph, when there is no listing', () => {
    expect(hfFilePlan('fp16', undefined)).toEqual({
      kind: 'fetch',
      sets: [
        { label: 'the two towers', required: towers, optional: HF_OPTIONAL },
        { label: 'the combined graph', required: combined, optional: HF_OPTIONAL },
      ],
    });
  });

  it('should take the set the listing has, towers first', () => {
    const both = hfFilePlan('fp16', { files: [...towers, 'onnx/model_fp16.onnx'], url: URL });
    expect(both.kind === 'fetch' && both.sets.map((set) => set.required)).toEqual([towers]);
    const onlyCombined = hfFilePlan('fp16', { files: combined, url: URL });
    expect(onlyCombined.kind === 'fetch' && onlyCombined.sets.map((set) => set.required)).toEqual([combined]);
  });

  it('should refuse a listing without the precision, naming the graphs it has', () => {
    expect(hfFilePlan('int8', { files: [...HF_CONFIGS, 'onnx/model.onnx'], url: URL })).toEqual({
      kind: 'refuse',
      file: 'onnx/vision_model_quantized.onnx',
      reason:
        'has no int8 graphs (CLIP_PRECISION=int8 needs onnx/text_model_quantized.onnx + onnx/vision_model_quantized.onnx, ' +
        'or onnx/model_quantized.onnx); it has onnx/model.onnx',
    });
  });
});

describe("immich's file plan", () => {
  it('should fetch every listed file of its folders but other runtimes', () => {
    expect(immichFilePlan('fp32', { files: IMMICH, url: URL })).toEqual({
      kind: 'fetch',
      sets: [
        {
          label: "immich's graphs",
          required: IMMICH.filter((file) => !file.endsWith('.armnn')),
          optional: [],
        },
      ],
    });
  });

  it('should use a cached directory as it is when there is no listing', () => {
    expect(immichFilePlan('fp32', undefined)).toEqual({ kind: 'as-cached' });
  });

  it('should refuse another precision, and a listing that lacks part of the layout, naming the files', () => {
    expect(immichFilePlan('fp16', { files: IMMICH, url: URL })).toMatchObject({
      kind: 'refuse',
      file: 'visual/model.onnx',
      reason: expect.stringMatching(
        /^is in immich's layout and has only fp32 ONNX graphs \(visual\/model\.onnx, textual\/model\.onnx\)/,
      ),
    });
    const lacking = IMMICH.filter((file) => file !== 'textual/tokenizer.json' && file !== 'visual/preprocess_cfg.json');
    expect(immichFilePlan('fp32', { files: lacking, url: URL })).toEqual({
      kind: 'refuse',
      file: 'visual/preprocess_cfg.json',
      reason: `lacks visual/preprocess_cfg.json, textual/tokenizer.json (immich layout; its listing at ${URL})`,
    });
  });
});
