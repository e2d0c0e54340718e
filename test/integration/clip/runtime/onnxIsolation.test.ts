/**
 * A session in a child process (issue 12: a graph loaded once, e.g. the combined graph whose logits give the
 * trained scale, must give its memory back to the OS) answers exactly as one in a worker thread.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxGraph } from '../../../../src/clip/runtime/onnx.js';
import { TINY_MODEL_DIR } from '../../../utils/testModel.js';

const OPTIONS = { intraOpThreads: 1, graphOptimizationLevel: 'all' } as const;

describe('OnnxGraph isolation', () => {
  it('should run a graph in a child process with the same metadata and outputs as in a worker thread', async () => {
    const file = path.join(TINY_MODEL_DIR, 'onnx', 'vision_model.onnx');
    const [thread, child] = await Promise.all([
      OnnxGraph.load(file, OPTIONS, 'thread'),
      OnnxGraph.load(file, OPTIONS, 'process'),
    ]);
    const feeds = () => ({
      pixel_values: {
        kind: 'float' as const,
        data: new Float32Array(2 * 3 * 224 * 224).map((_, i) => Math.cos(i * 0.01)),
        dims: [2, 3, 224, 224],
      },
    });
    try {
      expect(child.inputs).toEqual(thread.inputs);
      expect(child.outputNames).toEqual(thread.outputNames);
      const [a, b] = [await thread.run(feeds(), ['image_embeds']), await child.run(feeds(), ['image_embeds'])];
      expect(b.image_embeds!.dims).toEqual([2, 16]);
      expect(Array.from(b.image_embeds!.data)).toEqual(Array.from(a.image_embeds!.data));
      await expect(child.run({}, ['image_embeds'])).rejects.toThrow(/needs an input named pixel_values/);
    } finally {
      await Promise.all([thread.release(), child.release()]);
    }
    await expect(child.run(feeds(), ['image_embeds'])).rejects.toThrow(/released/);
  });
});
