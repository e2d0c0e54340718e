import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { IMMICH_TEST_MODELS } from '../../utils/testModel.js';

const sessions: ort.InferenceSession[] = [];
async function session(file: string): Promise<ort.InferenceSession> {
  const s = await ort.InferenceSession.create(file);
  sessions.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
});

function shapeOf(s: ort.InferenceSession, name: string): readonly (number | string)[] {
  const meta = s.inputMetadata.find((m) => m.name === name);
  return meta?.isTensor ? meta.shape : [];
}

describe('make-test-model --layout immich', () => {
  it("should write immich's layout: open_clip config.json, visual/ and textual/ with fixed batch 1 and L, int32 text", async () => {
    const dir = IMMICH_TEST_MODELS.openclip.dir;
    const config = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ embed_dim: 16, vision_cfg: { image_size: 224 }, text_cfg: { context_length: 77 } });
    const preprocess = JSON.parse(await fs.readFile(path.join(dir, 'visual', 'preprocess_cfg.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(preprocess).toMatchObject({
      size: [224, 224],
      mode: 'RGB',
      interpolation: 'bicubic',
      resize_mode: 'shortest',
      fill_color: 0,
    });
    const visual = await session(path.join(dir, 'visual', 'model.onnx'));
    expect([visual.inputNames, visual.outputNames, shapeOf(visual, 'image')]).toEqual([
      ['image'],
      ['embedding'],
      [1, 3, 224, 224],
    ]);
    const textual = await session(path.join(dir, 'textual', 'model.onnx'));
    expect([textual.inputNames, textual.outputNames, shapeOf(textual, 'text')]).toEqual([
      ['text'],
      ['embedding'],
      [1, 77],
    ]);
    const meta = textual.inputMetadata[0]!;
    expect(meta.isTensor && meta.type).toBe('int32');
    const out = await textual.run({
      text: new ort.Tensor(
        'int32',
        Int32Array.from({ length: 77 }, (_, i) => (i === 0 ? 49406 : i === 3 ? 49407 : 0)),
        [1, 77],
      ),
    });
    const embedding = out['embedding']!.data as Float32Array;
    expect(Math.hypot(...embedding)).toBeCloseTo(1, 5);
  });

  it('should write SigLIP with init_logit_bias, canonicalize, L = 64 and squash; M-CLIP with input_ids + attention_mask', async () => {
    const siglip = JSON.parse(
      await fs.readFile(path.join(IMMICH_TEST_MODELS.siglip.dir, 'config.json'), 'utf8'),
    ) as Record<string, unknown>;
    expect(siglip).toMatchObject({
      init_logit_bias: -10,
      text_cfg: { context_length: 64, tokenizer_kwargs: { clean: 'canonicalize' } },
    });
    expect(
      JSON.parse(await fs.readFile(path.join(IMMICH_TEST_MODELS.siglip.dir, 'visual', 'preprocess_cfg.json'), 'utf8')),
    ).toMatchObject({ resize_mode: 'squash', mean: [0.5, 0.5, 0.5] });
    const mclip = await session(path.join(IMMICH_TEST_MODELS.mclip.dir, 'textual', 'model.onnx'));
    expect(mclip.inputNames).toEqual(['input_ids', 'attention_mask']);
    expect(shapeOf(mclip, 'attention_mask')).toEqual([1, 77]);
  });

  it('should store the larger weights as external data files next to model.onnx, which ONNX Runtime loads', async () => {
    const dir = IMMICH_TEST_MODELS.xlmr.dir;
    const textual = await fs.readdir(path.join(dir, 'textual'));
    expect(textual).toContain('text_model.embeddings.token_embedding.weight');
    const size = (await fs.stat(path.join(dir, 'textual', 'model.onnx'))).size;
    const external = (await fs.stat(path.join(dir, 'textual', 'text_model.embeddings.token_embedding.weight'))).size;
    expect(external).toBeGreaterThan(64 * 1024);
    expect(size).toBeLessThan(external * 4);
    const s = await session(path.join(dir, 'textual', 'model.onnx'));
    expect(s.outputNames).toEqual(['embedding']);
  });
});
