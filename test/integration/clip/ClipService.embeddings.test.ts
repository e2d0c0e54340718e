/**
 * ClipService's embedding methods on the tiny generated model: vectors are the towers' outputs, L2-normalised
 * (checked against the ONNX graphs run directly), texts are verbatim unless a template is asked for, batches keep
 * input order, and the image and text caches are shared with classification.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipService, type ClipServiceOptions } from '../../../src/clip/index.js';
import { textFeeds } from '../../../src/clip/runtime/towers.js';
import { loadModelFiles } from '../../../src/clip/layouts/hfClip.js';
import { preprocessImage } from '../../../src/clip/image/preprocess.js';
import { ClipTokenizer } from '../../../src/clip/text/clipBpe.js';
import { ErrorCode } from '../../../src/errors.js';
import {
  noiseImage as noisePng,
  serviceStarter,
  testServiceOptions,
  TEST_IMAGE_LIMITS,
} from '../../utils/clipService.js';
import { IMMICH_TEST_MODELS, TINY_MODEL_DIR } from '../../utils/testModel.js';

const LIMITS = TEST_IMAGE_LIMITS;
const TEXTS = ['a photo of a cat', 'a diagram', 'x', 'a photo of a very small and rather sleepy tabby cat on a sofa.'];

function options(defaultModel = TINY_MODEL_DIR): ClipServiceOptions {
  return testServiceOptions({ defaultModel, inference: { preprocessConcurrency: 2 } });
}

/** A distinct, deterministic 80×56 RGB PNG per seed. */
function noiseImage(seed: number): Promise<Buffer> {
  return noisePng(seed, { width: 80, height: 56 });
}

function normalised(data: Float32Array, row: number, width: number): number[] {
  const vector = Array.from(data.subarray(row * width, (row + 1) * width));
  const norm = Math.hypot(...vector);
  return vector.map((value) => value / norm);
}

function expectClose(actual: readonly number[], expected: readonly number[], tolerance = 1e-5): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, index) => expect(Math.abs(value - (expected[index] ?? Number.NaN))).toBeLessThan(tolerance));
}

/** The towers run directly with onnxruntime-node: the reference every vector must equal. */
async function towerVectors(
  images: readonly Buffer[],
  texts: readonly string[],
): Promise<{ images: number[][]; texts: number[][] }> {
  const files = await loadModelFiles(TINY_MODEL_DIR, 'fp32');
  const tokenizer = await ClipTokenizer.fromFile(files.tokenizerPath, { contextLength: 77 });
  const vision = await ort.InferenceSession.create(files.visionModelPath!);
  const text = await ort.InferenceSession.create(files.textModelPath!);
  try {
    const size = files.preprocessor.cropHeight;
    const imageVectors: number[][] = [];
    for (const image of images) {
      const pixels = await preprocessImage(image, files.preprocessor, LIMITS);
      const out = await vision.run({
        pixel_values: new ort.Tensor('float32', pixels, [1, 3, size, files.preprocessor.cropWidth]),
      });
      const data = out.image_embeds!.data as Float32Array;
      imageVectors.push(normalised(data, 0, data.length));
    }
    const feeds = textFeeds(
      texts.map((t) => Array.from(tokenizer.encode(t))),
      tokenizer.padId,
      77,
    );
    const out = await text.run({
      input_ids: new ort.Tensor('int64', feeds.input_ids!.data as BigInt64Array, [texts.length, 77]),
      attention_mask: new ort.Tensor('int64', feeds.attention_mask!.data as BigInt64Array, [texts.length, 77]),
    });
    const data = out.text_embeds!.data as Float32Array;
    const width = data.length / texts.length;
    return { images: imageVectors, texts: texts.map((_, row) => normalised(data, row, width)) };
  } finally {
    await Promise.all([vision.release(), text.release()]);
  }
}

describe('ClipService embeddings on the tiny generated model', () => {
  const started = serviceStarter();
  let service: ClipService;
  let images: Buffer[];
  let reference: { images: number[][]; texts: number[][] };
  let combinedOnlyDir: string;

  beforeAll(async () => {
    images = await Promise.all([1, 2, 3].map(noiseImage));
    [service, reference] = await Promise.all([started(new ClipService(options())), towerVectors(images, TEXTS)]);
    // The other file layout the loader reads: the combined graph only (no separate towers).
    combinedOnlyDir = await mkdtemp(path.join(os.tmpdir(), 'clip-combined-'));
    await cp(TINY_MODEL_DIR, combinedOnlyDir, {
      recursive: true,
      filter: (source) => !/(text|vision)_model(_quantized)?\.onnx$|model_quantized\.onnx$/.test(source),
    });
  });
  afterAll(async () => {
    await rm(combinedOnlyDir, { recursive: true, force: true });
  });

  it("should give image vectors equal to the image tower's output, L2-normalised, in input order", async () => {
    const { embeddings } = await service.embedImages({ model: 'tiny', images });
    expect(embeddings).toHaveLength(images.length);
    const size = service.models()[0]!.embeddingSize!;
    embeddings.forEach((vector, index) => {
      expect(vector).toHaveLength(size);
      expect(Math.hypot(...vector)).toBeCloseTo(1, 6);
      expectClose(vector, reference.images[index]!);
    });
    // Plain arrays (JSON-ready), not views of the cached Float32Arrays.
    expect(Array.isArray(embeddings[0])).toBe(true);
  });

  it("should embed a text verbatim by default: the text tower's output for the text itself", async () => {
    const { embeddings } = await service.embedTexts({ model: 'tiny', texts: TEXTS, prompt: {} });
    expect(embeddings).toHaveLength(TEXTS.length);
    embeddings.forEach((vector, index) => {
      expect(Math.hypot(...vector)).toBeCloseTo(1, 6);
      expectClose(vector, reference.texts[index]!);
    });
  });

  it('should apply a template when asked, and average an ensemble of templates', async () => {
    const [templated] = (
      await service.embedTexts({ model: 'tiny', texts: ['cat'], prompt: { promptTemplate: 'a photo of a {}' } })
    ).embeddings;
    expectClose(templated!, reference.texts[0]!);
    const [ensembled] = (
      await service.embedTexts({
        model: 'tiny',
        texts: ['cat'],
        prompt: { promptTemplates: ['a photo of a {}', '{}'] },
      })
    ).embeddings;
    const [plain] = (await service.embedTexts({ model: 'tiny', texts: ['cat'], prompt: {} })).embeddings;
    const mean = templated!.map((value, i) => value + plain![i]!);
    const norm = Math.hypot(...mean);
    expectClose(
      ensembled!,
      mean.map((value) => value / norm),
    );
  });

  it('should keep input order in a batch, with duplicates getting the same vector', async () => {
    const order = [2, 0, 2, 1];
    const { embeddings } = await service.embedImages({ model: 'tiny', images: order.map((i) => images[i]!) });
    order.forEach((source, index) => expectClose(embeddings[index]!, reference.images[source]!));
    const texts = [TEXTS[3]!, TEXTS[1]!, TEXTS[3]!];
    const vectors = (await service.embedTexts({ model: 'tiny', texts, prompt: {} })).embeddings;
    expectClose(vectors[0]!, reference.texts[3]!);
    expectClose(vectors[1]!, reference.texts[1]!);
    expect(vectors[2]).toEqual(vectors[0]);
  });

  it('should share the image cache with classification: an image embedded, then classified, runs the image tower once', async () => {
    const fresh = await started(new ClipService(options()));
    const imageBatches: number[] = [];
    const textBatches: number[] = [];
    fresh.events.on('batchCompleted', (e) => (e.kind === 'image' ? imageBatches : textBatches).push(e.size));
    const image = await noiseImage(40);
    await fresh.embedImages({ model: 'tiny', images: [image] });
    expect(imageBatches).toEqual([1]);
    const classified = await fresh.classify({
      model: 'tiny',
      images: [Buffer.from(image)],
      labels: ['a cat', 'a dog'],
      prompt: { promptTemplate: '{}' },
    });
    expect(imageBatches).toEqual([1]);
    // And the other way round, for texts: classes embedded by classify are served to embedTexts from the cache.
    const textRuns = textBatches.length;
    const vectors = await fresh.embedTexts({ model: 'tiny', texts: ['a dog', 'a cat'], prompt: {} });
    expect(textBatches.length).toBe(textRuns);
    // The shared vectors give back classify's answer: softmax of scale · cosine.
    const [imageVector] = (await fresh.embedImages({ model: 'tiny', images: [image] })).embeddings;
    expect(imageBatches).toEqual([1]);
    const scale = fresh.models()[0]!.logitScale!;
    const logits = [vectors.embeddings[1]!, vectors.embeddings[0]!].map(
      (text) => scale * text.reduce((sum, v, i) => sum + v * imageVector![i]!, 0),
    );
    const exps = logits.map((l) => Math.exp(l - Math.max(...logits)));
    exps.forEach((e, i) => expect(e / (exps[0]! + exps[1]!)).toBeCloseTo(classified.probabilities[0]![i]!, 6));
  });

  it('should give the same vectors from a model with the combined graph only', async () => {
    const combined = await started(new ClipService(options(combinedOnlyDir)));
    const [imageVector] = (await combined.embedImages({ model: path.basename(combinedOnlyDir), images: [images[0]!] }))
      .embeddings;
    expectClose(imageVector!, reference.images[0]!);
    const textVectors = (
      await combined.embedTexts({ model: path.basename(combinedOnlyDir), texts: TEXTS.slice(0, 2), prompt: {} })
    ).embeddings;
    textVectors.forEach((vector, index) => expectClose(vector, reference.texts[index]!));
  });

  it('should refuse an unknown model and an undecodable image with codes', async () => {
    await expect(service.embedImages({ model: 'nope', images })).rejects.toMatchObject({
      code: ErrorCode.BadUserInput,
    });
    await expect(service.embedTexts({ model: 'nope', texts: ['a'], prompt: {} })).rejects.toMatchObject({
      code: ErrorCode.BadUserInput,
    });
    const corrupt = Buffer.concat([images[0]!.subarray(0, 100), Buffer.alloc(100, 0x41)]);
    await expect(service.embedImages({ model: 'tiny', images: [images[0]!, corrupt] })).rejects.toMatchObject({
      code: ErrorCode.BadUserInput,
    });
  });
});

describe('ClipService embeddings on every immich-layout family', () => {
  const started = serviceStarter();

  it.each(Object.entries(IMMICH_TEST_MODELS))(
    'should give unit vectors of the model size, in order, that reproduce classify (%s)',
    async (_name, model) => {
      // SigLIP's trained scale and bias cannot be read from its files: given per model, as an operator would.
      const source = model.preset === 'siglip-tiny' ? `${model.dir};logitScale=10;logitBias=-2` : model.dir;
      const service = await started(new ClipService(options(source)));
      const info = service.models()[0]!;
      const name = info.name;
      const images = await Promise.all([61, 62].map(noiseImage));
      const texts = ['a cat', 'ein rotes Auto'];
      const imageVectors = (await service.embedImages({ model: name, images })).embeddings;
      const textVectors = (await service.embedTexts({ model: name, texts, prompt: {} })).embeddings;
      for (const vector of [...imageVectors, ...textVectors]) {
        expect(vector).toHaveLength(info.embeddingSize!);
        expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
      }
      const [alone] = (await service.embedImages({ model: name, images: [images[1]!] })).embeddings;
      expectClose(alone!, imageVectors[1]!);
      // The vectors are the ones classify scores: softmax(scale · cos) for CLIP, sigmoid(scale · cos + bias) for SigLIP.
      const { probabilities } = await service.classify({
        model: name,
        images: [images[0]!],
        labels: texts,
        prompt: { promptTemplate: '{}' },
      });
      const logits = textVectors.map(
        (text) => info.logitScale! * text.reduce((sum, v, i) => sum + v * imageVectors[0]![i]!, 0),
      );
      const expected =
        info.scoring === 'sigmoid'
          ? logits.map((logit) => 1 / (1 + Math.exp(-(logit + (info.logitBias ?? 0)))))
          : logits
              .map((logit) => Math.exp(logit - Math.max(...logits)))
              .map((e, _i, all) => e / all.reduce((a, b) => a + b, 0));
      probabilities[0]!.forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 5));
    },
  );
});
