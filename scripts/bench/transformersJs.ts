/**
 * The alternative a Node user would reach for: transformers.js's zero-shot-image-classification
 * pipeline, on the same model directory, from local files only.
 */
import path from 'node:path';
import { env, pipeline, RawImage } from '@huggingface/transformers';
import { median } from './stats.js';

export interface TjsPipeline {
  /** One call: decode the JPEGs, classify them against `classes`; returns ms. */
  call(jpegs: Buffer[], classes: string[]): Promise<number>;
  dispose(): Promise<void>;
}

export async function loadTransformersJs(modelDir: string, dtype: 'fp32' | 'q8' = 'fp32'): Promise<TjsPipeline> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(modelDir);
  const classifier = await pipeline('zero-shot-image-classification', path.basename(modelDir), {
    dtype,
    device: 'cpu',
  });
  return {
    async call(jpegs, classes) {
      const started = performance.now();
      const images = await Promise.all(jpegs.map((jpeg) => RawImage.fromBlob(new Blob([new Uint8Array(jpeg)]))));
      const output = await classifier(images.length === 1 ? images[0]! : images, classes, {
        hypothesis_template: 'a photo of a {}.',
      });
      const rows = (images.length === 1 ? [output] : output) as unknown[];
      if (rows.length !== jpegs.length)
        throw new Error(`transformers.js returned ${rows.length} results for ${jpegs.length} images`);
      return performance.now() - started;
    },
    dispose: () => classifier.dispose(),
  };
}

/** Images/s and median ms per call over `calls` calls. */
export async function tjsThroughput(
  tjs: TjsPipeline,
  calls: number,
  next: () => { jpegs: Buffer[]; classes: string[] },
): Promise<{ imagesPerSecond: number; msPerCall: number }> {
  const times: number[] = [];
  let images = 0;
  for (let i = 0; i < calls; i++) {
    const { jpegs, classes } = next();
    times.push(await tjs.call(jpegs, classes));
    images += jpegs.length;
  }
  const total = times.reduce((a, b) => a + b, 0);
  return { imagesPerSecond: (images * 1000) / total, msPerCall: median(times) };
}
