/**
 * The ceiling: onnxruntime-node on the model's graphs alone, with no server, preprocessing or scoring.
 */
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { textFeeds as serverTextFeeds } from '../../src/clip/runtime/towers.js';
import { median } from './stats.js';

/** CLIP's `<|endoftext|>`, which also pads. */
const EOT_ID = 49407;

export interface RawSessions {
  vision: ort.InferenceSession;
  text: ort.InferenceSession;
  release(): Promise<void>;
}

export async function loadRaw(modelDir: string, precision: 'fp32' | 'int8' = 'fp32'): Promise<RawSessions> {
  const suffix = precision === 'int8' ? '_quantized' : '';
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: os.availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  };
  const [vision, text] = await Promise.all([
    ort.InferenceSession.create(path.join(modelDir, 'onnx', `vision_model${suffix}.onnx`), options),
    ort.InferenceSession.create(path.join(modelDir, 'onnx', `text_model${suffix}.onnx`), options),
  ]);
  return { vision, text, release: async () => void (await Promise.all([vision.release(), text.release()])) };
}

/** Deterministic pixel values in CLIP's normalised range. */
export function pixelBatch(batch: number, seed = 1): Float32Array {
  const data = new Float32Array(batch * 3 * 224 * 224);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.013 + seed) * 1.5;
  return data;
}

export async function embedImages(
  session: ort.InferenceSession,
  pixels: Float32Array,
  batch: number,
): Promise<Float32Array> {
  const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [batch, 3, 224, 224]) });
  return out.image_embeds!.data as Float32Array;
}

/** Median images/s and ms per run of the image tower at one batch size. */
export async function visionThroughput(
  session: ort.InferenceSession,
  batch: number,
  runs: number,
): Promise<{ imagesPerSecond: number; msPerRun: number }> {
  const pixels = pixelBatch(batch);
  await embedImages(session, pixels, batch); // warm-up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await embedImages(session, pixels, batch);
    times.push(performance.now() - started);
  }
  const ms = median(times);
  return { imagesPerSecond: (batch * 1000) / ms, msPerRun: ms };
}

/** The server's own text feeds (padded with `<|endoftext|>` to `length`), as raw ONNX Runtime tensors. */
export function textFeeds(prompts: readonly number[][], length: number): Record<string, ort.Tensor> {
  const feeds = serverTextFeeds(prompts, EOT_ID, length);
  return Object.fromEntries(
    Object.entries(feeds).map(([name, feed]) => [name, new ort.Tensor('int64', feed.data as BigInt64Array, feed.dims)]),
  );
}

/** Median ms for the text tower on `prompts`, at their real length and padded to 77. */
export async function textPaddingCost(
  session: ort.InferenceSession,
  prompts: number[][],
  runs: number,
): Promise<{ realMs: number; paddedMs: number; realLength: number }> {
  const realLength = Math.max(...prompts.map((p) => p.length));
  const measure = async (length: number) => {
    await session.run(textFeeds(prompts, length));
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      await session.run(textFeeds(prompts, length));
      times.push(performance.now() - started);
    }
    return median(times);
  };
  return { realMs: await measure(realLength), paddedMs: await measure(77), realLength };
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}
