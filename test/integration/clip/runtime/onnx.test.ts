import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxGraph } from '../../../../src/clip/runtime/onnx.js';
import { TINY_MODEL_DIR } from '../../../utils/testModel.js';

const OPTIONS = { intraOpThreads: 1, graphOptimizationLevel: 'all' } as const;

describe('OnnxGraph', () => {
  it('should read input and output names from the session', async () => {
    const graph = await OnnxGraph.load(path.join(TINY_MODEL_DIR, 'onnx', 'text_model.onnx'), OPTIONS);
    expect(graph.inputNames).toEqual(['input_ids', 'attention_mask']);
    expect(graph.outputNames).toContain('text_embeds');
    await graph.release();
  });

  it('should run inference off the event loop', async () => {
    const graph = await OnnxGraph.load(path.join(TINY_MODEL_DIR, 'onnx', 'vision_model.onnx'), OPTIONS);
    const batch = 512;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    const out = await graph.run(
      { pixel_values: { kind: 'float', data: new Float32Array(batch * 3 * 224 * 224), dims: [batch, 3, 224, 224] } },
      ['image_embeds'],
    );
    const ms = performance.now() - started;
    clearInterval(timer);
    await graph.release();
    expect(out.image_embeds!.dims).toEqual([batch, 16]);
    expect(ms).toBeGreaterThan(5);
    // A blocked event loop fires no timer at all while the batch runs.
    console.log(`batch of ${batch}: ${ms.toFixed(0)} ms, ${ticks} timer ticks meanwhile`);
    expect(ms).toBeGreaterThan(20);
    expect(ticks).toBeGreaterThan(ms / 20);
  });

  it('should ignore feeds the graph does not declare and name missing ones', async () => {
    const graph = await OnnxGraph.load(path.join(TINY_MODEL_DIR, 'onnx', 'vision_model.onnx'), OPTIONS);
    const pixels = { kind: 'float' as const, data: new Float32Array(3 * 224 * 224), dims: [1, 3, 224, 224] };
    const extra = { kind: 'int64' as const, data: new BigInt64Array(2), dims: [1, 2] };
    await expect(graph.run({ pixel_values: pixels, input_ids: extra }, ['image_embeds'])).resolves.toHaveProperty(
      'image_embeds',
    );
    await expect(graph.run({ input_ids: extra }, ['image_embeds'])).rejects.toThrow(
      /needs an input named pixel_values/,
    );
    await graph.release();
    await expect(graph.run({ pixel_values: pixels }, ['image_embeds'])).rejects.toThrow(/released/);
  });

  it('should report a corrupt model file with its path', async () => {
    await expect(OnnxGraph.load(path.join(TINY_MODEL_DIR, 'config.json'), OPTIONS)).rejects.toThrow(/config\.json/);
  });
});
