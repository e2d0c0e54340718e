import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OnnxGraph, type ValueInfo } from '../../../../src/clip/runtime/onnx.js';
import { declaredInputs } from '../../../../src/clip/runtime/onnxHeader.js';
import { planVisionReplicas } from '../../../../src/clip/runtime/replicas.js';
import { IMMICH_TEST_MODELS, TINY_MODEL_DIR } from '../../../utils/testModel.js';

const fixed: ValueInfo[] = [{ name: 'image', type: 'float32', shape: [1, 3, 224, 224] }];
const dynamic: ValueInfo[] = [{ name: 'pixel_values', type: 'float32', shape: ['batch_size', 3, 224, 224] }];

describe('planVisionReplicas', () => {
  it('should run a fixed-batch image graph as two runs in flight with half the threads each', () => {
    expect(planVisionReplicas(undefined, 2, fixed)).toMatchObject({ replicas: 2, threadsEach: 1 });
    expect(planVisionReplicas(undefined, 8, fixed)).toMatchObject({ replicas: 2, threadsEach: 4 });
    expect(planVisionReplicas(undefined, 3, fixed)).toMatchObject({ replicas: 2, threadsEach: 1 });
  });

  it('should keep one copy on every thread for a dynamic batch, or when there is a single thread', () => {
    expect(planVisionReplicas(undefined, 2, dynamic)).toMatchObject({ replicas: 1, threadsEach: 2 });
    expect(planVisionReplicas(undefined, 1, fixed)).toMatchObject({ replicas: 1, threadsEach: 1 });
    // Inputs that could not be read ahead of loading: the old behaviour, one copy on every thread.
    expect(planVisionReplicas(undefined, 2, [])).toMatchObject({ replicas: 1, threadsEach: 2 });
    // The 4-d input is the pixel input when its name is not a known one.
    expect(planVisionReplicas(undefined, 2, [{ name: 'x', type: 'float32', shape: [1, 3, 32, 32] }])).toMatchObject({
      replicas: 2,
    });
  });

  it('should follow VISION_REPLICAS whatever the graph', () => {
    expect(planVisionReplicas(1, 2, fixed)).toMatchObject({ replicas: 1, threadsEach: 2, reason: 'VISION_REPLICAS' });
    expect(planVisionReplicas(2, 2, dynamic)).toMatchObject({ replicas: 2, threadsEach: 1 });
    expect(planVisionReplicas(4, 2, fixed)).toMatchObject({ replicas: 4, threadsEach: 1 });
  });
});

describe('declaredInputs (read from the file, before any session)', () => {
  const graphs: OnnxGraph[] = [];
  afterAll(async () => {
    await Promise.all(graphs.map((g) => g.release()));
  });

  it("should give exactly the inputs ONNX Runtime's session declares, for every test graph", async () => {
    const files = [
      ...['vision_model.onnx', 'text_model.onnx', 'model.onnx'].map((f) => path.join(TINY_MODEL_DIR, 'onnx', f)),
      ...Object.values(IMMICH_TEST_MODELS).flatMap((m) =>
        ['visual', 'textual'].map((tower) => path.join(m.dir, tower, 'model.onnx')),
      ),
    ];
    for (const file of files) {
      const graph = await OnnxGraph.load(file, { intraOpThreads: 1, graphOptimizationLevel: 'disabled' });
      graphs.push(graph);
      expect(await declaredInputs(file), file).toEqual(
        graph.inputs.map((info) => ({ name: info.name, type: info.type, shape: [...info.shape] })),
      );
    }
  });

  it('should read a fixed batch from a graph whose weights are external data, and say which file it could not read', async () => {
    expect((await declaredInputs(path.join(IMMICH_TEST_MODELS.xlmr.dir, 'visual', 'model.onnx')))[0]!.shape[0]).toBe(1);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onnx-header-'));
    const bad = path.join(dir, 'model.onnx');
    await fs.writeFile(bad, Buffer.from([0x3a, 0xff, 0xff, 0x01, 0x00]));
    await expect(declaredInputs(bad)).rejects.toThrow(`${bad}: could not read the ONNX graph's inputs`);
    await fs.writeFile(bad, 'not an onnx file at all');
    await expect(declaredInputs(bad)).rejects.toThrow(bad);
    await fs.rm(dir, { recursive: true, force: true });
  });
});
