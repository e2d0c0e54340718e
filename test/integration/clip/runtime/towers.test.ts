import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OnnxGraph } from '../../../../src/clip/runtime/onnx.js';
import { ImageTower, TextTower } from '../../../../src/clip/runtime/towers.js';
import { IMMICH_TEST_MODELS, TINY_MODEL_DIR } from '../../../utils/testModel.js';

const SESSION = { intraOpThreads: 1, graphOptimizationLevel: 'all' as const };
const graphs: OnnxGraph[] = [];
async function load(file: string): Promise<OnnxGraph> {
  const graph = await OnnxGraph.load(file, SESSION);
  graphs.push(graph);
  return graph;
}
afterAll(async () => {
  await Promise.all(graphs.map((g) => g.release()));
});

describe('towers read from the sessions', () => {
  it("should see immich's fixed batch 1 and fixed L, int32 ids and the `embedding` outputs", async () => {
    const text = new TextTower(await load(path.join(IMMICH_TEST_MODELS.openclip.dir, 'textual', 'model.onnx')));
    expect(text).toMatchObject({
      idsInput: 'text',
      maskInput: undefined,
      idType: 'int32',
      output: 'embedding',
      fixedBatch: 1,
      fixedLength: 77,
    });
    text.setPadding(49407, undefined);
    const feeds = text.feeds([[49406, 320, 49407]]);
    expect(feeds['text']).toMatchObject({ kind: 'int32', dims: [1, 77] });
    expect(Array.from((feeds['text']!.data as Int32Array).slice(0, 5))).toEqual([49406, 320, 49407, 49407, 49407]);
    expect(() => text.feeds([new Array<number>(78).fill(1)])).toThrow(/78 tokens does not fit the text graph's 77/);

    const image = new ImageTower(await load(path.join(IMMICH_TEST_MODELS.openclip.dir, 'visual', 'model.onnx')), {
      height: 224,
      width: 224,
    });
    expect(image).toMatchObject({ input: 'image', output: 'embedding', fixedBatch: 1 });
    const out = await image.embed([new Float32Array(image.pixelCount), new Float32Array(image.pixelCount).fill(0.5)]);
    expect(out).toHaveLength(2);
    expect(out[0]!.length).toBe(16);
  });

  it("should see M-CLIP's input_ids + attention_mask, older exports' dynamic batch and outputs, and Hugging Face's int64 towers", async () => {
    const mclip = new TextTower(await load(path.join(IMMICH_TEST_MODELS.mclip.dir, 'textual', 'model.onnx')));
    expect(mclip).toMatchObject({
      idsInput: 'input_ids',
      maskInput: 'attention_mask',
      idType: 'int32',
      fixedLength: 77,
    });
    mclip.setPadding(1, undefined);
    expect(Array.from((mclip.feeds([[0, 5, 2]])['attention_mask']!.data as Int32Array).slice(0, 4))).toEqual([
      1, 1, 1, 0,
    ]);

    const old = new TextTower(await load(path.join(IMMICH_TEST_MODELS.openclipDynamic.dir, 'textual', 'model.onnx')));
    expect(old).toMatchObject({ output: 'text_embedding', fixedBatch: undefined });
    const oldImage = new ImageTower(
      await load(path.join(IMMICH_TEST_MODELS.openclipDynamic.dir, 'visual', 'model.onnx')),
      { height: 224, width: 224 },
    );
    expect(oldImage).toMatchObject({ output: 'image_embedding', fixedBatch: undefined });

    const hf = new TextTower(await load(path.join(TINY_MODEL_DIR, 'onnx', 'text_model.onnx')));
    expect(hf).toMatchObject({
      idsInput: 'input_ids',
      maskInput: 'attention_mask',
      idType: 'int64',
      fixedBatch: undefined,
      fixedLength: undefined,
      output: 'text_embeds',
    });
    hf.setPadding(49407, undefined);
    expect(
      hf.feeds([
        [1, 2],
        [1, 2, 3],
      ])['input_ids'],
    ).toMatchObject({ kind: 'int64', dims: [2, 3] });
  });

  it('should refuse an image graph whose fixed size disagrees with the preprocessing config', async () => {
    const graph = await load(path.join(IMMICH_TEST_MODELS.openclip.dir, 'visual', 'model.onnx'));
    expect(() => new ImageTower(graph, { height: 256, width: 256 })).toThrow(
      /height 224, but the preprocessing config gives 256/,
    );
  });
});
