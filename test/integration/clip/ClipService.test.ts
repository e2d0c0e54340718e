import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClipService, type ClipServiceOptions } from '../../../src/clip/index.js';
import { withoutServerPaths } from '../../../src/clip/ClipService.js';
import { textFeeds } from '../../../src/clip/runtime/towers.js';
import { loadModelFiles } from '../../../src/clip/layouts/hfClip.js';
import { OnnxGraph } from '../../../src/clip/runtime/onnx.js';
import { preprocessImage } from '../../../src/clip/image/preprocess.js';
import { ClipTokenizer } from '../../../src/clip/text/clipBpe.js';
import { ErrorCode } from '../../../src/errors.js';
import { noiseImage, serviceStarter, testServiceOptions, TEST_IMAGE_LIMITS } from '../../utils/clipService.js';
import { TINY_MODEL_DIR } from '../../utils/testModel.js';

const LIMITS = TEST_IMAGE_LIMITS;

function options(
  inference: Partial<ClipServiceOptions['inference']> = {},
  caches = { textEmbeddings: 1000, imageEmbeddings: 1000 },
): ClipServiceOptions {
  return testServiceOptions({ inference, caches });
}

const CLASSES = ['cat', 'dog', 'a red car', 'diagram'];

describe('ClipService on the tiny generated model', () => {
  const started = serviceStarter();

  let service: ClipService;
  beforeAll(async () => {
    service = await started(new ClipService(options()));
  });

  it('should be ready and report the model, with the trained logit scale read from the combined graph', () => {
    expect(service.readiness()).toEqual({ ready: true, reason: null });
    const [info] = service.models();
    expect(info).toMatchObject({
      name: 'tiny',
      source: 'local:tiny',
      status: 'ready',
      precision: 'fp32',
      contextLength: 77,
      imageSize: 224,
    });
    // exp(4.605170) = 100, not exp(config.json's logit_scale_init_value 2.6592) ≈ 14.3.
    expect(info!.logitScale).toBeCloseTo(100, 2);
  });

  it('should match an independent computation: softmax of the combined graph’s logits_per_image', async () => {
    const image = await noiseImage(1, { format: 'jpeg' });
    const { probabilities } = await service.classify({
      model: TINY_MODEL_DIR,
      images: [image],
      labels: CLASSES,
      prompt: { promptTemplate: '{}' },
    });

    const files = await loadModelFiles(TINY_MODEL_DIR, 'fp32');
    const tokenizer = await ClipTokenizer.fromFile(files.tokenizerPath, { contextLength: 77 });
    const pixels = await preprocessImage(image, files.preprocessor, LIMITS);
    const session = await ort.InferenceSession.create(path.join(TINY_MODEL_DIR, 'onnx', 'model.onnx'));
    const feeds = textFeeds(
      CLASSES.map((c) => Array.from(tokenizer.encode(c))),
      tokenizer.padId,
      77,
    );
    const out = await session.run({
      input_ids: new ort.Tensor('int64', feeds.input_ids!.data as BigInt64Array, [CLASSES.length, 77]),
      attention_mask: new ort.Tensor('int64', feeds.attention_mask!.data as BigInt64Array, [CLASSES.length, 77]),
      pixel_values: new ort.Tensor('float32', pixels, [1, 3, 224, 224]),
    });
    await session.release();
    const logits = Array.from(out.logits_per_image!.data as Float32Array);
    const max = Math.max(...logits);
    const exps = logits.map((l) => Math.exp(l - max));
    const expected = exps.map((e) => e / exps.reduce((a, b) => a + b, 0));

    expect(probabilities).toHaveLength(1);
    probabilities[0]!.forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 4));
    expect(probabilities[0]!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });

  it('should give the same probabilities for an image alone or inside a batch of 32', async () => {
    const noCache = await started(
      new ClipService(options({ maxBatchWaitMs: 1500 }, { textEmbeddings: 1000, imageEmbeddings: 0 })),
    );
    const batches: number[] = [];
    noCache.events.on('batchCompleted', (e) => e.kind === 'image' && batches.push(e.size));
    const images = await Promise.all(Array.from({ length: 32 }, (_, i) => noiseImage(100 + i)));
    const alone = await noCache.classify({ model: TINY_MODEL_DIR, images: [images[5]!], labels: CLASSES, prompt: {} });
    const together = await noCache.classify({ model: TINY_MODEL_DIR, images, labels: CLASSES, prompt: {} });
    expect(batches).toContain(1);
    expect(Math.max(...batches)).toBe(32);
    alone.probabilities[0]!.forEach((p, i) => expect(Math.abs(p - together.probabilities[5]![i]!)).toBeLessThan(1e-5));
  });

  it('should give the same results with two image-tower replicas running batches side by side', async () => {
    const replicated = await started(new ClipService(options({ visionReplicas: 2, intraOpThreads: 2 })));
    const images = await Promise.all(Array.from({ length: 6 }, (_, i) => noiseImage(400 + i)));
    const [one, two] = await Promise.all([
      Promise.all(
        images.map((img) => service.classify({ model: TINY_MODEL_DIR, images: [img], labels: CLASSES, prompt: {} })),
      ),
      Promise.all(
        images.map((img) => replicated.classify({ model: TINY_MODEL_DIR, images: [img], labels: CLASSES, prompt: {} })),
      ),
    ]);
    one.forEach((r, i) =>
      r.probabilities[0]!.forEach((p, j) => expect(Math.abs(p - two[i]!.probabilities[0]![j]!)).toBeLessThan(1e-5)),
    );
  });

  it('should gather images of concurrent requests into shared batches', async () => {
    const fresh = await started(new ClipService(options({ maxBatchWaitMs: 30 })));
    const sizes: number[] = [];
    fresh.events.on('batchCompleted', (e) => e.kind === 'image' && sizes.push(e.size));
    const images = await Promise.all(Array.from({ length: 8 }, (_, i) => noiseImage(300 + i)));
    await Promise.all(
      images.map((img) => fresh.classify({ model: TINY_MODEL_DIR, images: [img], labels: CLASSES, prompt: {} })),
    );
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(8);
    expect(sizes.length).toBeLessThan(8);
  });

  it('should run text batches at their real length with results identical to padding to 77', async () => {
    const files = await loadModelFiles(TINY_MODEL_DIR, 'fp32');
    const tokenizer = await ClipTokenizer.fromFile(files.tokenizerPath, { contextLength: 77 });
    const graph = await OnnxGraph.load(files.textModelPath!, { intraOpThreads: 1, graphOptimizationLevel: 'all' });
    const prompts = ['a photo of a cat.', 'a photo of a very small and rather sleepy tabby cat on a sofa.'].map((p) =>
      Array.from(tokenizer.encode(p)),
    );
    const real = await graph.run(textFeeds(prompts, tokenizer.padId), ['text_embeds']);
    const padded = await graph.run(textFeeds(prompts, tokenizer.padId, 77), ['text_embeds']);
    await graph.release();
    expect(real.text_embeds!.dims).toEqual(padded.text_embeds!.dims);
    real.text_embeds!.data.forEach((v, i) => expect(Math.abs(v - padded.text_embeds!.data[i]!)).toBeLessThan(1e-5));
  });

  it('should serve a repeated class list from the text cache with no text inference', async () => {
    const fresh = await started(new ClipService(options()));
    const textBatches: number[] = [];
    const lookups = { hit: 0, miss: 0 };
    fresh.events.on('batchCompleted', (e) => e.kind === 'text' && textBatches.push(e.size));
    fresh.events.on('cacheLookup', (e) => e.kind === 'text' && lookups[e.hit ? 'hit' : 'miss']++);
    const image = await noiseImage(7);
    const first = await fresh.classify({ model: TINY_MODEL_DIR, images: [image], labels: CLASSES, prompt: {} });
    const before = textBatches.length;
    const second = await fresh.classify({
      model: TINY_MODEL_DIR,
      images: [await noiseImage(8)],
      labels: CLASSES,
      prompt: {},
    });
    expect(textBatches.length).toBe(before);
    expect(lookups).toEqual({ hit: CLASSES.length, miss: CLASSES.length });
    expect(first.probabilities[0]).not.toEqual(second.probabilities[0]);
  });

  it('should serve a repeated image from the image cache with no image inference', async () => {
    const fresh = await started(new ClipService(options()));
    const imageBatches: number[] = [];
    fresh.events.on('batchCompleted', (e) => e.kind === 'image' && imageBatches.push(e.size));
    const image = await noiseImage(9);
    const first = await fresh.classify({ model: TINY_MODEL_DIR, images: [image], labels: CLASSES, prompt: {} });
    const second = await fresh.classify({
      model: TINY_MODEL_DIR,
      images: [Buffer.from(image)],
      labels: ['tree', 'house'],
      prompt: {},
    });
    expect(imageBatches).toEqual([1]);
    expect(first.probabilities[0]).toHaveLength(4);
    expect(second.probabilities[0]).toHaveLength(2);
  });

  it('should average the templates of a prompt ensemble', async () => {
    const image = await noiseImage(11);
    const templates = ['a photo of a {}.', 'a drawing of a {}.'];
    const ensembled = await service.classify({
      model: TINY_MODEL_DIR,
      images: [image],
      labels: CLASSES,
      prompt: { promptTemplates: templates },
    });
    const single = await service.classify({
      model: TINY_MODEL_DIR,
      images: [image],
      labels: CLASSES,
      prompt: { promptTemplate: templates[0]! },
    });
    expect(ensembled.probabilities[0]!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(ensembled.probabilities[0]).not.toEqual(single.probabilities[0]);
  });

  it('should refuse work with OVERLOADED when the image queue is full, and finish what it accepted', async () => {
    const small = await started(
      new ClipService(
        options(
          { maxBatchSize: 1, maxQueuedImages: 2, maxBatchWaitMs: 0 },
          { textEmbeddings: 100, imageEmbeddings: 0 },
        ),
      ),
    );
    const images = await Promise.all(Array.from({ length: 12 }, (_, i) => noiseImage(500 + i)));
    const settled = await Promise.allSettled(
      images.map((img) => small.classify({ model: TINY_MODEL_DIR, images: [img], labels: CLASSES, prompt: {} })),
    );
    const refused = settled.filter((s) => s.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r.reason).toMatchObject({ code: ErrorCode.Overloaded });
    for (const s of settled) if (s.status === 'fulfilled') expect(s.value.probabilities[0]).toHaveLength(4);
  });

  it('should fail only the request whose image cannot be decoded', async () => {
    const good = await noiseImage(21, { format: 'jpeg' });
    const corrupt = Buffer.concat([good.subarray(0, 200), Buffer.alloc(200, 0x41)]);
    const [bad, ok] = await Promise.allSettled([
      service.classify({ model: TINY_MODEL_DIR, images: [good, corrupt], labels: CLASSES, prompt: {} }),
      service.classify({ model: TINY_MODEL_DIR, images: [good], labels: CLASSES, prompt: {} }),
    ]);
    expect(bad.status).toBe('rejected');
    expect((bad as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.BadUserInput });
    expect(ok.status).toBe('fulfilled');
  });

  it('should refuse an unknown model name and resolve kebab/snake variants', async () => {
    await expect(
      service.classify({ model: 'nope', images: [await noiseImage(1)], labels: CLASSES, prompt: {} }),
    ).rejects.toMatchObject({
      code: ErrorCode.BadUserInput,
    });
    expect(service.resolveModelName('TINY')).toBe('tiny');
    expect(service.resolveModelName(TINY_MODEL_DIR)).toBe('tiny');
  });

  it('should report a failed extra model without taking the default down', async () => {
    const withBroken = await started(
      new ClipService({
        ...options(),
        extraModels: [{ name: 'broken', source: path.join(os.tmpdir(), 'clip-tests', 'models', 'no-such-model-dir') }],
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
    const broken = withBroken.models().find((m) => m.name === 'broken');
    expect(broken?.status).toBe('failed');
    expect(broken?.error).toMatch(/no-such-model-dir/);
    expect(broken?.error).not.toContain(path.join(os.tmpdir(), 'clip-tests'));
    expect(withBroken.readiness().ready).toBe(true);
    await expect(
      withBroken.classify({ model: 'broken', images: [await noiseImage(1)], labels: CLASSES, prompt: {} }),
    ).rejects.toMatchObject({
      code: ErrorCode.ModelUnavailable,
    });
  });
});

describe('withoutServerPaths', () => {
  it('should keep only the last two segments of absolute paths, leaving URLs and hub ids alone', () => {
    expect(withoutServerPaths("ENOENT: open '/srv/models/clip/onnx/text_model.onnx'")).toBe(
      "ENOENT: open '…/onnx/text_model.onnx'",
    );
    expect(
      withoutServerPaths(
        'Xenova/clip-vit-base-patch32: 404 at https://hub.example/Xenova/clip/resolve/main/onnx/model.onnx',
      ),
    ).toBe('Xenova/clip-vit-base-patch32: 404 at https://hub.example/Xenova/clip/resolve/main/onnx/model.onnx');
  });
});
