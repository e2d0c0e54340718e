import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../../../src/errors.js';
import {
  combinedModelFile,
  loadModelFiles,
  parseClipConfig,
  parsePreprocessorConfig,
  requiredFiles,
} from '../../../../src/clip/layouts/hfClip.js';
import { TINY_MODEL_DIR } from '../../../utils/testModel.js';
import { writeFakeModelRepo } from '../../../utils/fakeHub.js';
import { OPENAI_CLIP_PREPROCESSOR, OPENAI_CLIP_PREPROCESSOR_JSON } from '../../../fixtures/clipConfigs.js';

describe('requiredFiles', () => {
  it('should list the configs and both towers with the precision suffix', () => {
    expect(requiredFiles('fp32', 'towers')).toEqual([
      'config.json',
      'preprocessor_config.json',
      'tokenizer.json',
      'onnx/text_model.onnx',
      'onnx/vision_model.onnx',
    ]);
    expect(requiredFiles('fp16', 'towers').slice(3)).toEqual([
      'onnx/text_model_fp16.onnx',
      'onnx/vision_model_fp16.onnx',
    ]);
    expect(requiredFiles('int8', 'combined')).toEqual([
      'config.json',
      'preprocessor_config.json',
      'tokenizer.json',
      'onnx/model_quantized.onnx',
    ]);
    expect(combinedModelFile('fp16')).toBe('onnx/model_fp16.onnx');
  });
});

describe('parsePreprocessorConfig', () => {
  const expectedClip = OPENAI_CLIP_PREPROCESSOR;

  it('should parse the current CLIPImageProcessor form', () => {
    const parsed = parsePreprocessorConfig(OPENAI_CLIP_PREPROCESSOR_JSON);
    expect(parsed).toEqual(expectedClip);
  });

  it('should parse the older CLIPFeatureExtractor form with numeric size and crop_size', () => {
    // As in openai/clip-vit-base-patch32 and its Xenova ONNX copy.
    const parsed = parsePreprocessorConfig({
      crop_size: 224,
      do_center_crop: true,
      do_normalize: true,
      do_resize: true,
      feature_extractor_type: 'CLIPFeatureExtractor',
      image_mean: [0.48145466, 0.4578275, 0.40821073],
      image_std: [0.26862954, 0.26130258, 0.27577711],
      resample: 3,
      size: 224,
    });
    expect(parsed).toEqual(expectedClip);
  });

  it('should fill every missing field with CLIP defaults', () => {
    expect(parsePreprocessorConfig({})).toEqual(expectedClip);
  });

  it('should read other sizes, {height, width}, scalar mean/std and switched-off steps', () => {
    const parsed = parsePreprocessorConfig({
      size: { height: 336, width: 300 },
      crop_size: { height: 336, width: 320 },
      resample: 2,
      do_center_crop: false,
      do_rescale: false,
      do_normalize: false,
      image_mean: 0.5,
      image_std: [0.5],
    });
    expect(parsed).toMatchObject({
      shortestEdge: 300,
      cropHeight: 336,
      cropWidth: 320,
      resample: 2,
      doCenterCrop: false,
      doRescale: false,
      doNormalize: false,
      imageMean: [0.5, 0.5, 0.5],
      imageStd: [0.5, 0.5, 0.5],
    });
  });

  it('should name the file and the field of an invalid value', () => {
    const cases: [unknown, RegExp][] = [
      [[], /invalid preprocessor_config\.json: expected a JSON object, but got \[\]/],
      [
        { size: 'big' },
        /invalid preprocessor_config\.json: "size" expected a positive integer, \{"shortest_edge": n\} or \{"height": h, "width": w\}, but got "big"/,
      ],
      [{ size: { shortest_edge: 0 } }, /"size" expected .* but got \{"shortest_edge":0\}/],
      [
        { crop_size: { height: 224 } },
        /"crop_size" expected a positive integer or \{"height": h, "width": w\}, but got \{"height":224\}/,
      ],
      [{ image_mean: [0.5, 0.5] }, /"image_mean" expected three numbers/],
      [{ image_std: [0.5, 0, 0.5] }, /"image_std" expected three positive numbers/],
      [{ do_resize: 'yes' }, /"do_resize" expected true or false, but got "yes"/],
      [{ rescale_factor: -1 }, /"rescale_factor" expected a positive number, but got -1/],
      [{ resample: 2.5 }, /"resample" expected a non-negative integer, but got 2\.5/],
    ];
    for (const [json, message] of cases) {
      let error: unknown;
      try {
        parsePreprocessorConfig(json);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(json)).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe(ErrorCode.ModelUnavailable);
      expect((error as AppError).message).toMatch(message);
    }
  });
});

describe('parseClipConfig', () => {
  it('should read projection_dim, the text context length, the image size and logit_scale_init_value', () => {
    expect(
      parseClipConfig({
        projection_dim: 768,
        logit_scale_init_value: 2.6592,
        text_config: { max_position_embeddings: 77 },
        vision_config: { image_size: 336 },
      }),
    ).toEqual({ projectionDim: 768, contextLength: 77, imageSize: 336, logitScaleInitValue: 2.6592 });
  });

  it('should fall back to the older *_config_dict copies, then to CLIP defaults', () => {
    expect(
      parseClipConfig({ text_config_dict: { max_position_embeddings: 64 }, vision_config_dict: { image_size: 288 } }),
    ).toEqual({ projectionDim: 512, contextLength: 64, imageSize: 288, logitScaleInitValue: undefined });
    expect(parseClipConfig({})).toEqual({
      projectionDim: 512,
      contextLength: 77,
      imageSize: 224,
      logitScaleInitValue: undefined,
    });
  });

  it('should name the file and field of an invalid value', () => {
    expect(() => parseClipConfig({ projection_dim: '512' }, '/m/config.json')).toThrow(
      'invalid /m/config.json: "projection_dim" expected a positive integer, but got "512"',
    );
    expect(() => parseClipConfig({ text_config: { max_position_embeddings: -1 } })).toThrow(
      'invalid config.json: "text_config.max_position_embeddings" expected a positive integer, but got -1',
    );
    expect(() => parseClipConfig({ vision_config: 7 })).toThrow(
      'invalid config.json: "vision_config" expected an object, but got 7',
    );
    expect(() => parseClipConfig('{')).toThrow('invalid config.json: expected a JSON object, but got "{"');
  });
});

describe('loadModelFiles', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'model-files-test-'));
    await writeFakeModelRepo(dir);
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function loadError(precision: 'fp32' | 'fp16' = 'fp32', at = dir): Promise<AppError> {
    const error = await loadModelFiles(at, precision).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe(ErrorCode.ModelUnavailable);
    return error as AppError;
  }

  it('should return parsed configs and absolute paths of the towers', async () => {
    const loaded = await loadModelFiles(dir, 'fp32');
    expect(loaded.layout).toBe('towers');
    if (loaded.layout !== 'towers') return;
    expect(loaded.textModelPath).toBe(path.join(dir, 'onnx', 'text_model.onnx'));
    expect(loaded.visionModelPath).toBe(path.join(dir, 'onnx', 'vision_model.onnx'));
    expect(loaded.combinedModelPath).toBeUndefined();
    expect(loaded.tokenizerPath).toBe(path.join(dir, 'tokenizer.json'));
    expect(loaded.tokenizerConfigPath).toBe(path.join(dir, 'tokenizer_config.json'));
    expect(loaded.config).toEqual({
      projectionDim: 512,
      contextLength: 77,
      imageSize: 224,
      logitScaleInitValue: 2.6592,
    });
    expect(loaded.preprocessor.shortestEdge).toBe(224);
  });

  it('should report the combined graph next to the towers when present', async () => {
    await writeFakeModelRepo(dir, { combined: 1000 });
    const loaded = await loadModelFiles(dir, 'fp32');
    expect(loaded.layout).toBe('towers');
    expect(loaded.combinedModelPath).toBe(path.join(dir, 'onnx', 'model.onnx'));
  });

  it('should fall back to the combined graph when the towers are absent', async () => {
    await fs.rm(path.join(dir, 'onnx'), { recursive: true });
    await writeFakeModelRepo(dir, { text: 0, vision: 0, combined: 1000 });
    const loaded = await loadModelFiles(dir, 'fp32');
    expect(loaded).toMatchObject({ layout: 'combined', combinedModelPath: path.join(dir, 'onnx', 'model.onnx') });
  });

  it('should name a missing model directory', async () => {
    const missing = path.join(dir, 'nope');
    expect((await loadError('fp32', missing)).message).toBe(
      `model directory ${missing} does not exist or is not a directory`,
    );
  });

  it('should name a missing, empty, truncated or invalid JSON file', async () => {
    const config = path.join(dir, 'config.json');
    await fs.rm(config);
    expect((await loadError()).message).toBe(`${config}: file is missing`);

    await fs.writeFile(config, '');
    expect((await loadError()).message).toBe(`${config} is empty: a truncated download? Delete it and retry`);

    await fs.writeFile(config, '{"projection_dim": 512, "text_con');
    expect((await loadError()).message).toMatch(
      new RegExp(`^${escape(config)} is not valid JSON \\(truncated or corrupt\\?\\): `),
    );

    await fs.writeFile(config, '{"projection_dim": "x"}');
    expect((await loadError()).message).toBe(
      `invalid ${config}: "projection_dim" expected a positive integer, but got "x"`,
    );
  });

  it('should name an invalid preprocessor config and a tokenizer that is not one', async () => {
    const pre = path.join(dir, 'preprocessor_config.json');
    await fs.writeFile(pre, '{"crop_size": "224px"}');
    expect((await loadError()).message).toContain(`invalid ${pre}: "crop_size" expected`);

    await writeFakeModelRepo(dir);
    const tokenizer = path.join(dir, 'tokenizer.json');
    await fs.writeFile(tokenizer, '{"version": "1.0"}');
    expect((await loadError()).message).toBe(
      `invalid ${tokenizer}: expected a Hugging Face tokenizer with a "model" object`,
    );
  });

  it('should name an empty .onnx file', async () => {
    const vision = path.join(dir, 'onnx', 'vision_model.onnx');
    await fs.writeFile(vision, '');
    expect((await loadError()).message).toBe(`${vision} is empty (0 bytes): a truncated download? Delete it and retry`);
  });

  it('should name the missing graph and what a precision needs', async () => {
    const error = await loadError('fp16');
    expect(error.message).toContain(`has no fp16 graphs: ${path.join(dir, 'onnx', 'text_model_fp16.onnx')} is missing`);
    expect(error.message).toContain(
      'needs onnx/text_model_fp16.onnx + onnx/vision_model_fp16.onnx, or onnx/model_fp16.onnx',
    );
  });

  const tinyConfig = path.join(TINY_MODEL_DIR, 'config.json');
  if (!existsSync(tinyConfig))
    console.log(
      `skipping the generated tiny model check: ${tinyConfig} does not exist (test/setup/models.ts makes it)`,
    );
  it.skipIf(!existsSync(tinyConfig))('should load the generated tiny test model', async () => {
    const loaded = await loadModelFiles(TINY_MODEL_DIR, 'fp32');
    expect(loaded.config.contextLength).toBe(77);
    expect(loaded.preprocessor.cropHeight).toBeGreaterThan(0);
    expect(existsSync(loaded.tokenizerPath)).toBe(true);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
