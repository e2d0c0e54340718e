import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attr, DataType, floatTensor, GraphBuilder, type Graph } from '../../../scripts/model/onnxGraph.js';
import { MICROSOFT_DOMAIN, quantizeDynamic } from '../../../scripts/model/quantizeDynamic.js';
import { createRng, fillNormal } from '../../../scripts/model/rng.js';
import { writeOnnxModel } from '../../../scripts/model/writeOnnxModel.js';

const K = 64;
const N = 48;
const VOCAB = 100;

/** y = x · W + b, and z = E[ids]: one of each pattern the pass rewrites. */
function testGraph(): Graph {
  const builder = new GraphBuilder('quantize_test');
  const x = builder.input({ name: 'x', elemType: DataType.Float, shape: ['rows', K] });
  const ids = builder.input({ name: 'ids', elemType: DataType.Int64, shape: ['count'] });
  const weight = builder.initializer(
    floatTensor('w', [K, N], fillNormal(new Float32Array(K * N), createRng(0, 'w'), 0.1)),
  );
  const bias = builder.initializer(floatTensor('b', [N], fillNormal(new Float32Array(N), createRng(0, 'b'), 0.1)));
  builder.op('Add', [builder.op('MatMul', [x, weight]), bias], [], { outputs: ['y'] });
  const table = builder.initializer(
    floatTensor('e', [VOCAB, N], fillNormal(new Float32Array(VOCAB * N), createRng(0, 'e'), 0.02)),
  );
  builder.op('Gather', [table, ids], [attr.int('axis', 0)], { outputs: ['z'] });
  builder.output({ name: 'y', elemType: DataType.Float, shape: ['rows', N] });
  builder.output({ name: 'z', elemType: DataType.Float, shape: ['count', N] });
  return builder.build();
}

describe('quantizeDynamic', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'quantize-dynamic-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should fuse MatMul + bias Add into one DynamicQuantizeMatMul over int8 per-column weights', () => {
    const graph = testGraph();
    const quantized = quantizeDynamic(graph);
    const matmul = quantized.nodes.find((node) => node.opType === 'DynamicQuantizeMatMul');
    expect(matmul).toMatchObject({
      domain: MICROSOFT_DOMAIN,
      inputs: ['x', 'w_quantized', 'w_scale', 'w_zero_point', 'b'],
      outputs: ['y'],
    });
    expect(quantized.nodes.some((node) => node.opType === 'MatMul' || node.opType === 'Add')).toBe(false);
    expect(quantized.initializers.get('w_quantized')).toMatchObject({ dataType: DataType.Int8, dims: [K, N] });
    expect(quantized.initializers.get('w_scale')?.dims).toEqual([N]);
    // The float weights are gone; the input graph is untouched.
    expect(quantized.initializers.has('w')).toBe(false);
    expect(quantized.initializers.has('e')).toBe(false);
    expect(graph.nodes.map((node) => node.opType)).toEqual(['MatMul', 'Add', 'Gather']);
  });

  it('should share quantised weights through the cache', () => {
    const cache = new Map();
    const first = quantizeDynamic(testGraph(), cache);
    const second = quantizeDynamic(testGraph(), cache);
    expect(second.initializers.get('w_quantized')).toBe(first.initializers.get('w_quantized'));
  });

  it('should run in onnxruntime and match float results to int8 precision', async () => {
    const graph = testGraph();
    const files = { fp32: path.join(dir, 'fp32.onnx'), int8: path.join(dir, 'int8.onnx') };
    const model = { irVersion: 8, producerName: 'test', producerVersion: '0' };
    await writeOnnxModel(files.fp32, { ...model, graph, opsetImports: [{ domain: '', version: 17 }] });
    await writeOnnxModel(files.int8, {
      ...model,
      graph: quantizeDynamic(graph),
      opsetImports: [
        { domain: '', version: 17 },
        { domain: MICROSOFT_DOMAIN, version: 1 },
      ],
    });
    const x = fillNormal(new Float32Array(8 * K), createRng(1, 'x'), 1);
    const feeds = {
      x: new ort.Tensor('float32', x, [8, K]),
      ids: new ort.Tensor('int64', BigInt64Array.of(0n, 5n, 99n), [3]),
    };
    const options = { intraOpNumThreads: 1 };
    const [fp32, int8] = await Promise.all([
      ort.InferenceSession.create(files.fp32, options),
      ort.InferenceSession.create(files.int8, options),
    ]);
    const expected = await fp32.run(feeds);
    const actual = await int8.run(feeds);
    for (const name of ['y', 'z']) {
      const e = expected[name]?.data as Float32Array;
      const a = actual[name]?.data as Float32Array;
      expect(a.length).toBe(e.length);
      const scale = Math.max(...e.map(Math.abs));
      const worst = Math.max(...a.map((v, i) => Math.abs(v - (e[i] ?? NaN))));
      // int8 keeps ~2 significant digits: well under 5% of the output range, but not exact.
      expect(worst, name).toBeLessThan(0.05 * scale);
      expect(worst, name).toBeGreaterThan(0);
    }
    await Promise.all([fp32.release(), int8.release()]);
  });
});
