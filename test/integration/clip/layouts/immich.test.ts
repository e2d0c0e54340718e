import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ClipService, type ClipServiceOptions } from '../../../../src/clip/index.js';
import { loadModelSpec } from '../../../../src/clip/layouts/index.js';
import {
  immichFilesToFetch,
  parseOpenClipConfig,
  parseOpenClipPreprocessCfg,
} from '../../../../src/clip/layouts/immich.js';
import { noiseImage as noisePng, serviceStarter, testServiceOptions } from '../../../utils/clipService.js';
import { IMMICH_TEST_MODELS, TINY_MODEL_DIR } from '../../../utils/testModel.js';

function options(defaultModel: string, extraModels: ClipServiceOptions['extraModels'] = []): ClipServiceOptions {
  return testServiceOptions({
    defaultModel,
    extraModels,
    inference: { maxBatchSize: 16 },
    caches: { textEmbeddings: 0, imageEmbeddings: 0 },
  });
}

function noiseImage(seed: number, width = 80, height = 60): Promise<Buffer> {
  return noisePng(seed, { width, height });
}

const started = serviceStarter();

const CLASSES = ['a cat', 'un chien', 'ein rotes Auto', 'diagram'];

describe('immich layout files', () => {
  it('should read open_clip config.json with its defaults: context length 77, clean, SigLIP init_logit_bias', () => {
    expect(parseOpenClipConfig({ embed_dim: 512, vision_cfg: { image_size: 224 }, text_cfg: {} })).toMatchObject({
      embedDim: 512,
      imageSize: 224,
      contextLength: 77,
      clean: undefined,
      initLogitBias: undefined,
    });
    expect(
      parseOpenClipConfig({
        embed_dim: 768,
        init_logit_bias: -10,
        vision_cfg: { image_size: [256, 256] },
        text_cfg: { context_length: 64, tokenizer_kwargs: { clean: 'canonicalize' } },
      }),
    ).toMatchObject({ embedDim: 768, imageSize: 256, contextLength: 64, clean: 'canonicalize', initLogitBias: -10 });
    expect(() => parseOpenClipConfig({ vision_cfg: { image_size: 224 } }, 'x/config.json')).toThrow(
      /x\/config.json.*embed_dim/,
    );
  });

  it('should read preprocess_cfg.json: size, mean, std, interpolation, resize_mode, fill_color; and refuse unknown modes', () => {
    const config = parseOpenClipPreprocessCfg({
      size: [240, 240],
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
      interpolation: 'bilinear',
      resize_mode: 'longest',
      fill_color: 128,
    });
    expect(config).toMatchObject({
      cropHeight: 240,
      cropWidth: 240,
      resample: 2,
      resizeMode: 'longest',
      fillColor: 128,
      imageMean: [0.5, 0.5, 0.5],
    });
    expect(parseOpenClipPreprocessCfg({ size: 224 })).toMatchObject({
      resizeMode: 'shortest',
      resample: 3,
      fillColor: 0,
    });
    expect(() => parseOpenClipPreprocessCfg({ size: 224, resize_mode: 'crop' })).toThrow(
      /resize_mode.*shortest, squash, longest.*"crop"/,
    );
    expect(() => parseOpenClipPreprocessCfg({ size: 224, interpolation: 'lanczos' })).toThrow(/interpolation/);
  });

  it("should fetch config.json and every visual/ and textual/ file, external data included, but no other runtime's files", () => {
    const listing = [
      '.gitattributes',
      'README.md',
      'config.json',
      'visual/model.onnx',
      'visual/preprocess_cfg.json',
      'visual/fp16/model.armnn',
      'visual/rknpu/rk3588/model.rknn',
      'visual/onnx__MatMul_4321',
      'textual/model.onnx',
      'textual/model.onnx_data',
      'textual/tokenizer.json',
      'textual/tokenizer_config.json',
      'textual/special_tokens_map.json',
      'textual/fp16/model.armnn',
    ];
    expect(immichFilesToFetch(listing)).toEqual([
      'config.json',
      'visual/model.onnx',
      'visual/preprocess_cfg.json',
      'visual/onnx__MatMul_4321',
      'textual/model.onnx',
      'textual/model.onnx_data',
      'textual/tokenizer.json',
      'textual/tokenizer_config.json',
      'textual/special_tokens_map.json',
    ]);
  });

  it('should detect the layout from the files and refuse a precision the layout does not have, naming what exists', async () => {
    const spec = await loadModelSpec(IMMICH_TEST_MODELS.openclip.dir, 'fp32');
    expect(spec.layout).toBe('immich');
    expect(spec.image.resizeMode).toBe('shortest');
    await expect(loadModelSpec(IMMICH_TEST_MODELS.openclip.dir, 'fp16')).rejects.toThrow(
      /only fp32 ONNX graphs \(visual\/model.onnx, textual\/model.onnx\).*CLIP_PRECISION=fp16/,
    );
  });
});

describe('the Hugging Face layout', () => {
  it('should be detected for the tiny model, and refuse a model_type it does not know rather than run it as CLIP', async () => {
    expect((await loadModelSpec(TINY_MODEL_DIR, 'fp32')).layout).toBe('hf-clip');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hf-siglip-'));
    try {
      for (const file of ['preprocessor_config.json', 'tokenizer.json'])
        await fs.copyFile(path.join(TINY_MODEL_DIR, file), path.join(dir, file));
      await fs.symlink(path.join(TINY_MODEL_DIR, 'onnx'), path.join(dir, 'onnx'));
      const config = JSON.parse(await fs.readFile(path.join(TINY_MODEL_DIR, 'config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'flava' }));
      await expect(loadModelSpec(dir, 'fp32')).rejects.toThrow(
        /model_type "flava" is not served in the Hugging Face layout \(only "clip" and "siglip"\).*immich-app/,
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('immich-layout models through ClipService', () => {
  it('should give 16 concurrent jobs on a fixed-batch model the results of each job run alone (1e-5), gathering across jobs', async () => {
    // A batch waits up to 200 ms for company, so that gathering does not depend on how fast this machine preprocesses.
    const base = options(IMMICH_TEST_MODELS.openclip.dir);
    const service = await started(new ClipService({ ...base, inference: { ...base.inference, maxBatchWaitMs: 200 } }));
    const info = service.models()[0]!;
    expect(info).toMatchObject({
      status: 'ready',
      layout: 'immich',
      scoring: 'softmax',
      logitScale: 100,
      contextLength: 77,
      imageSize: 224,
    });
    const images = await Promise.all(Array.from({ length: 16 }, (_, i) => noiseImage(i + 1, 60 + i, 50 + 2 * i)));
    const classesOf = (i: number): string[] => [...CLASSES.slice(i % 3), `class ${i}`];
    const alone: number[][][] = [];
    for (let i = 0; i < 16; i++) {
      alone.push(
        (await service.classify({ model: info.name, images: [images[i]!], labels: classesOf(i), prompt: {} }))
          .probabilities,
      );
    }
    const sizes: number[] = [];
    service.events.on('batchCompleted', (e) => {
      if (e.kind === 'image') sizes.push(e.size);
    });
    const together = await Promise.all(
      images.map((image, i) =>
        service.classify({ model: info.name, images: [image], labels: classesOf(i), prompt: {} }),
      ),
    );
    together.forEach((result, i) => {
      const expected = alone[i]![0]!;
      expect(result.probabilities[0]!.length).toBe(expected.length);
      result.probabilities[0]!.forEach((p, j) => expect(Math.abs(p - expected[j]!)).toBeLessThan(1e-5));
      expect(result.probabilities[0]!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    });
    // The fixed-batch graph ran item by item, but the Batcher still gathered images of different jobs into one run.
    expect(Math.max(...sizes)).toBeGreaterThan(1);
  });

  it('should run a fixed-batch image graph as two replicas by default (two runs in flight) with the results of one', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const two = await started(
      new ClipService({
        ...options(IMMICH_TEST_MODELS.openclip.dir),
        inference: { ...options('').inference, intraOpThreads: 2 },
        logger,
      }),
    );
    const one = await started(
      new ClipService({
        ...options(IMMICH_TEST_MODELS.openclip.dir),
        inference: { ...options('').inference, intraOpThreads: 2, visionReplicas: 1 },
      }),
    );
    const plan = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((entry) => entry.msg === 'image tower replicas');
    expect(plan).toMatchObject({ visionReplicas: 2, threadsEach: 1 });
    const images = await Promise.all(Array.from({ length: 16 }, (_, i) => noiseImage(40 + i, 64 + i, 48 + i)));
    const classify = (service: ClipService, image: Buffer) =>
      service.classify({ model: service.defaultModelName, images: [image], labels: CLASSES, prompt: {} });
    const alone: number[][] = [];
    for (const image of images) alone.push((await classify(one, image)).probabilities[0]!);
    const together = await Promise.all(images.map((image) => classify(two, image)));
    together.forEach((result, i) =>
      result.probabilities[0]!.forEach((p, j) => expect(Math.abs(p - alone[i]![j]!)).toBeLessThan(1e-5)),
    );
  });

  it('should share the queue of a fixed-batch graph between its two replicas and drain both on stop', async () => {
    // A long batch wait with room for more than 16: the 16 images below all wait in the queue until stop() dispatches them.
    const inference = { ...options('').inference, intraOpThreads: 2, maxBatchSize: 32, maxBatchWaitMs: 60_000 };
    const two = new ClipService({ ...options(IMMICH_TEST_MODELS.openclip.dir), inference });
    await two.start();
    const one = await started(
      new ClipService({
        ...options(IMMICH_TEST_MODELS.openclip.dir),
        inference: { ...options('').inference, visionReplicas: 1 },
      }),
    );
    const images = await Promise.all(Array.from({ length: 16 }, (_, i) => noiseImage(70 + i, 50 + i, 70 - i)));
    const expected = await one.embedImages({ model: one.defaultModelName, images });
    const sizes: number[] = [];
    two.events.on('batchCompleted', (e) => e.kind === 'image' && sizes.push(e.size));
    const jobs = images.map((image) => two.embedImages({ model: two.defaultModelName, images: [image] }));
    while (two.queuedImages() < 16) await new Promise((resolve) => setTimeout(resolve, 10));
    // Stopping with every image queued: each of the two replicas takes two batches of a quarter (one running, the next
    // waiting in its worker), and every job completes.
    await two.stop();
    const results = await Promise.all(jobs);
    expect(sizes).toEqual([4, 4, 4, 4]);
    results.forEach((result, i) =>
      result.embeddings[0]!.forEach((v, k) => expect(Math.abs(v - expected.embeddings[i]![k]!)).toBeLessThan(1e-5)),
    );
  });

  it('should load a model whose weights are ONNX external data (the XLM-R text tower), and classify', async () => {
    const dir = IMMICH_TEST_MODELS.xlmr.dir;
    const visual = await fs.readdir(path.join(dir, 'visual'));
    expect(visual.filter((f) => f !== 'model.onnx' && f !== 'preprocess_cfg.json').length).toBeGreaterThan(0);
    const service = await started(new ClipService(options(dir)));
    expect(service.models()[0]).toMatchObject({ status: 'ready', layout: 'immich', contextLength: 77 });
    const { probabilities } = await service.classify({
      model: service.defaultModelName,
      images: [await noiseImage(3)],
      labels: CLASSES,
      prompt: {},
    });
    expect(probabilities[0]!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('should run an M-CLIP text tower (input_ids + attention_mask) and an older dynamic-batch export', async () => {
    const service = await started(
      new ClipService(
        options(IMMICH_TEST_MODELS.mclip.dir, [{ name: 'dynamic', source: IMMICH_TEST_MODELS.openclipDynamic.dir }]),
      ),
    );
    const image = await noiseImage(5);
    for (const model of [service.defaultModelName, 'dynamic']) {
      const { probabilities } = await service.classify({
        model,
        images: [image, await noiseImage(6)],
        labels: CLASSES,
        prompt: {},
      });
      expect(probabilities).toHaveLength(2);
      for (const row of probabilities) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    expect(service.models().map((m) => m.status)).toEqual(['ready', 'ready']);
  });

  it('should refuse to load a SigLIP model without a trained scale and bias, naming the per-model option', async () => {
    const service = new ClipService(
      options(IMMICH_TEST_MODELS.openclip.dir, [{ name: 'siglip', source: IMMICH_TEST_MODELS.siglip.dir }]),
    );
    await started(service);
    await expect.poll(() => service.models()[1]!.status, { timeout: 30_000 }).toBe('failed');
    expect(service.models()[1]!.error).toMatch(
      /SigLIP.*logitScale and logitBias.*CLIP_MODELS=siglip=<source>;logitScale=.*;logitBias=/,
    );
  });

  it('should score SigLIP classes as independent sigmoids of scale · cos + bias', async () => {
    const dir = IMMICH_TEST_MODELS.siglip.dir;
    const service = await started(
      new ClipService(
        options(`${dir};logitScale=10;logitBias=-2`, [{ name: 'bias3', source: `${dir};logitScale=10;logitBias=-3` }]),
      ),
    );
    await expect.poll(() => service.models()[1]!.status, { timeout: 30_000 }).toBe('ready');
    const [main, bias3] = service.models();
    expect(main).toMatchObject({
      status: 'ready',
      scoring: 'sigmoid',
      logitScale: 10,
      logitBias: -2,
      contextLength: 64,
    });
    expect(bias3).toMatchObject({ status: 'ready', logitBias: -3 });
    const image = await noiseImage(9);
    const all = (await service.classify({ model: main!.name, images: [image], labels: CLASSES, prompt: {} }))
      .probabilities[0]!;
    const one = (await service.classify({ model: main!.name, images: [image], labels: [CLASSES[1]!], prompt: {} }))
      .probabilities[0]!;
    const shifted = (await service.classify({ model: 'bias3', images: [image], labels: CLASSES, prompt: {} }))
      .probabilities[0]!;
    // Each class on its own: the same class scores the same whatever else is asked, and the row need not sum to 1.
    expect(one[0]).toBeCloseTo(all[1]!, 6);
    expect(Math.abs(all.reduce((a, b) => a + b, 0) - 1)).toBeGreaterThan(1e-3);
    // logit(p) = scale · cos + bias: one less bias is exactly one less logit for every class.
    const logit = (p: number): number => Math.log(p / (1 - p));
    all.forEach((p, j) => expect(logit(p) - logit(shifted[j]!)).toBeCloseTo(1, 4));
  });
});
