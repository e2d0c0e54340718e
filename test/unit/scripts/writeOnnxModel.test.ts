import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attr, DataType, floatTensor, GraphBuilder } from '../../../scripts/model/onnxGraph.js';
import { writeOnnxModel } from '../../../scripts/model/writeOnnxModel.js';

const { onnx } = onnxProto;

describe('writeOnnxModel', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'write-onnx-model-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should write a ModelProto that protobuf decodes back to the same graph and weights', async () => {
    const builder = new GraphBuilder('roundtrip');
    const x = builder.input({ name: 'x', elemType: DataType.Float, shape: ['batch', 3] });
    // Over the 1 MB write buffer, so the direct-write path is exercised too.
    const big = floatTensor(
      'big',
      [3, 100_000],
      Float32Array.from({ length: 300_000 }, (_, i) => i * 0.5),
    );
    const product = builder.op('MatMul', [x, builder.initializer(big)]);
    builder.op('Softmax', [product], [attr.int('axis', -1)], { outputs: ['y'] });
    builder.output({ name: 'y', elemType: DataType.Float, shape: ['batch', 100_000] });
    const file = path.join(dir, 'model.onnx');

    const bytes = await writeOnnxModel(file, {
      graph: builder.build(),
      irVersion: 8,
      opsetImports: [{ domain: '', version: 17 }],
      producerName: 'test',
      producerVersion: '1',
    });

    const buffer = await readFile(file);
    expect(buffer.length).toBe(bytes);
    const model = onnx.ModelProto.decode(buffer);
    expect(Number(model.irVersion)).toBe(8);
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17]]);
    // Decoded messages are class instances whose repeated fields are always arrays.
    const graph = model.graph as onnxProto.onnx.GraphProto;
    expect(graph.node.map((n) => n.opType)).toEqual(['MatMul', 'Softmax']);
    expect(graph.node[1]?.attribute?.[0]).toMatchObject({ name: 'axis' });
    expect(graph.input[0]?.type?.tensorType?.shape?.dim?.map((d) => d.dimParam || Number(d.dimValue))).toEqual([
      'batch',
      3,
    ]);
    const initializer = graph.initializer[0] as onnxProto.onnx.TensorProto;
    expect(initializer.name).toBe('big');
    expect(initializer.dims.map(Number)).toEqual([3, 100_000]);
    const raw = initializer.rawData;
    // Little-endian float32 bytes, exactly as in memory.
    expect(Buffer.from(raw).equals(Buffer.from(big.data.buffer, big.data.byteOffset, big.data.byteLength))).toBe(true);
    // Written via a temporary file that is renamed into place.
    expect(await readdir(dir)).toEqual(['model.onnx']);
  });
});
