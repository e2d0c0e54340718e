/**
 * Hugging Face-layout SigLIP exports (`Xenova/siglip-base-patch16-224`'s files, generated with random weights by
 * `make-test-model --layout hf-siglip`): detected by model_type, read as SiglipImageProcessor and SiglipConfig mean
 * them, towers picked by `pooler_output`, and the trained scale and bias read from the combined graph, which the
 * served probabilities must reproduce.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { HF_SIGLIP_TEST_SCORING } from '../../../../scripts/make-test-model.js';
import { ClipService } from '../../../../src/clip/index.js';
import { fetchModelFiles } from '../../../../src/clip/hub/index.js';
import { parseSiglipConfig, parseSiglipPreprocessorConfig } from '../../../../src/clip/layouts/hfSiglip.js';
import { loadModelSpec } from '../../../../src/clip/layouts/index.js';
import { decodeRgb } from '../../../../src/clip/image/decode.js';
import { pixelValuesInto, pixelValuesLength } from '../../../../src/clip/image/preprocess.js';
import { loadTextTokenizer, padIds } from '../../../../src/clip/text/index.js';
import { startFakeHub, type FakeHub } from '../../../utils/fakeHub.js';
import { noiseImage, serviceStarter, TEST_IMAGE_LIMITS, testServiceOptions } from '../../../utils/clipService.js';
import { HF_SIGLIP_TEST_MODEL_DIR } from '../../../utils/testModel.js';

const DIR = HF_SIGLIP_TEST_MODEL_DIR;
const CLASSES = ['A cat!', 'two_dogs', 'a red car', 'diagram'];
const started = serviceStarter();
const temporaries: string[] = [];
afterAll(async () => {
  await Promise.all(temporaries.map((dir) => fs.rm(dir, { recursive: true, force: true })));
});

function service(source: string): ClipService {
  return new ClipService(
    testServiceOptions({ defaultModel: source, caches: { textEmbeddings: 0, imageEmbeddings: 0 } }),
  );
}

/** A copy of the test model (symlinked files) without the given ones. */
async function copyWithout(...left: string[]): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hf-siglip-'));
  temporaries.push(dir);
  await fs.mkdir(path.join(dir, 'onnx'));
  for (const entry of await fs.readdir(DIR, { recursive: true, withFileTypes: true })) {
    const relative = path.relative(DIR, path.join(entry.parentPath, entry.name));
    if (!entry.isFile() || left.includes(relative) || relative.startsWith('.')) continue;
    await fs.symlink(path.join(DIR, relative), path.join(dir, relative));
  }
  return dir;
}

describe('Hugging Face SigLIP layout files', () => {
  it("should read SiglipImageProcessor's config as a squash resize to size, no crop, with its defaults", () => {
    expect(parseSiglipPreprocessorConfig({ size: { height: 384, width: 384 } })).toMatchObject({
      resizeMode: 'squash',
      cropHeight: 384,
      cropWidth: 384,
      resample: 3,
      imageMean: [0.5, 0.5, 0.5],
      imageStd: [0.5, 0.5, 0.5],
      rescaleFactor: 1 / 255,
    });
    expect(parseSiglipPreprocessorConfig({})).toMatchObject({ cropHeight: 224, cropWidth: 224, resizeMode: 'squash' });
    expect(() => parseSiglipPreprocessorConfig({ size: 'big' }, 'x/preprocessor_config.json')).toThrow(
      /x\/preprocessor_config.json.*"size"/,
    );
  });

  it("should read SiglipConfig's context length (64 when absent) and the vision tower's width as the embedding size", () => {
    expect(parseSiglipConfig({ model_type: 'siglip', text_config: {}, vision_config: {} })).toMatchObject({
      contextLength: 64,
      embeddingSize: 768,
    });
    expect(
      parseSiglipConfig({ text_config: { max_position_embeddings: 16 }, vision_config: { hidden_size: 1152 } }),
    ).toMatchObject({ contextLength: 16, embeddingSize: 1152 });
    expect(() => parseSiglipConfig({ text_config: { max_position_embeddings: -1 } }, 'x/config.json')).toThrow(
      /x\/config.json.*text_config.max_position_embeddings/,
    );
  });

  it('should detect the layout from model_type and describe the model as SigLIP: sigmoid, padded to 64, canonicalised, pooler_output', async () => {
    const spec = await loadModelSpec(DIR, 'fp32');
    expect(spec).toMatchObject({
      layout: 'hf-siglip',
      scoring: 'sigmoid',
      embeddingOutputs: { image: ['pooler_output'], text: ['pooler_output'] },
    });
    expect(spec.image.resizeMode).toBe('squash');
    expect(spec.text.padToContext).toBe(true);
    expect(spec.text.resolve({ fixedLength: undefined, takesAttentionMask: false })).toEqual({
      contextLength: 64,
      clean: 'canonicalize',
    });
    expect(spec.graphs).toMatchObject({ kind: 'towers', combined: path.join(DIR, 'onnx', 'model.onnx') });
  });
});

describe('Hugging Face SigLIP models through ClipService', () => {
  it("should take the trained scale and bias from the combined graph and serve exactly the combined graph's sigmoids (1e-5)", async () => {
    const clip = await started(service(DIR));
    const [info] = clip.models();
    expect(info).toMatchObject({ status: 'ready', layout: 'hf-siglip', scoring: 'sigmoid', contextLength: 64 });
    expect(info!.logitScale).toBeCloseTo(HF_SIGLIP_TEST_SCORING.logitScale, 3);
    expect(info!.logitBias).toBeCloseTo(HF_SIGLIP_TEST_SCORING.logitBias, 3);

    const png = await noiseImage(41, { width: 120, height: 50 });
    const served = (
      await clip.classify({ model: info!.name, images: [png], labels: CLASSES, prompt: { promptTemplate: '{}' } })
    ).probabilities[0]!;

    // The reference: the export's own combined graph on the same pixels and the same padded ids, read with ONNX Runtime.
    const spec = await loadModelSpec(DIR, 'fp32');
    const pixels = new Float32Array(pixelValuesLength(spec.image));
    pixelValuesInto(await decodeRgb(png, TEST_IMAGE_LIMITS), spec.image, pixels);
    const tokenizer = await loadTextTokenizer(DIR, { contextLength: 64, clean: 'canonicalize' });
    const ids = CLASSES.flatMap((label) => padIds(tokenizer.encode(label), 64, tokenizer.padId)).map(BigInt);
    const session = await ort.InferenceSession.create(path.join(DIR, 'onnx', 'model.onnx'));
    try {
      const out = await session.run({
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids), [CLASSES.length, 64]),
        pixel_values: new ort.Tensor('float32', pixels, [1, 3, spec.image.cropHeight, spec.image.cropWidth]),
      });
      const logits = Array.from(out['logits_per_image']!.data as Float32Array);
      const expected = logits.map((logit) => 1 / (1 + Math.exp(-logit)));
      served.forEach((p, j) => expect(Math.abs(p - expected[j]!)).toBeLessThan(1e-5));
    } finally {
      await session.release();
    }
    // Each class on its own: the row does not sum to 1, and one class asked alone scores the same.
    expect(Math.abs(served.reduce((a, b) => a + b, 0) - 1)).toBeGreaterThan(1e-3);
    const alone = (
      await clip.classify({ model: info!.name, images: [png], labels: [CLASSES[2]!], prompt: { promptTemplate: '{}' } })
    ).probabilities[0]!;
    expect(alone[0]).toBeCloseTo(served[2]!, 6);
  });

  it('should refuse a SigLIP export without its combined graph unless the per-model option gives the scale and bias', async () => {
    const towersOnly = await copyWithout(path.join('onnx', 'model.onnx'));
    const refused = service(towersOnly);
    await expect(started(refused)).rejects.toThrow(/logitScale and logitBias.*CLIP_MODELS=.*;logitScale=.*;logitBias=/);
    const given = await started(service(`${towersOnly};logitScale=12;logitBias=-3`));
    expect(given.models()[0]).toMatchObject({ status: 'ready', layout: 'hf-siglip', logitScale: 12, logitBias: -3 });
  });
});

describe('Hugging Face SigLIP repos from the hub', () => {
  let hub: FakeHub | undefined;
  afterAll(async () => {
    await hub?.close();
  });

  it('should fetch the combined graph of a SigLIP repo (its scale and bias) when asked for it where needed, and not otherwise', async () => {
    hub = await startFakeHub({ repos: { 'Xenova/siglip-base-patch16-224': DIR } });
    const source = { repo: 'Xenova/siglip-base-patch16-224', revision: 'main' };
    const cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hf-siglip-cache-'));
    temporaries.push(cacheDir);
    const hubOptions = { cacheDir, endpoint: hub.url, offline: false, progress: false };
    const plain = await fetchModelFiles(source, 'fp32', { ...hubOptions, withScaleFiles: 'never' });
    await expect(fs.stat(path.join(plain, 'onnx', 'model.onnx'))).rejects.toThrow();
    const dir = await fetchModelFiles(source, 'fp32', { ...hubOptions, withScaleFiles: 'when-needed' });
    expect((await fs.stat(path.join(dir, 'onnx', 'model.onnx'))).size).toBe(
      (await fs.stat(path.join(DIR, 'onnx', 'model.onnx'))).size,
    );
    // The towers were not downloaded twice.
    expect(hub.contentRequests('onnx/vision_model.onnx')).toHaveLength(1);
    expect((await loadModelSpec(dir, 'fp32')).layout).toBe('hf-siglip');
  });
});
