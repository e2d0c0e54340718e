/** open_clip's build_zero_shot_classifier as implemented once for inline classes and stored classifiers. */
import { describe, expect, it } from 'vitest';
import { normalize } from '../../../src/clip/scoring.js';
import { buildZeroShotWeights, packWeights, unpackWeights } from '../../../src/clip/zeroShotWeights.js';

/** A deterministic unit vector per prompt, as the text tower gives (already normalised). */
function fakeEmbedding(prompt: string): Float32Array {
  const v = new Float32Array(8);
  for (let i = 0; i < v.length; i++) v[i] = Math.sin((prompt.charCodeAt(i % prompt.length) + 1) * (i + 1));
  return normalize(v);
}

describe('buildZeroShotWeights', () => {
  it('should give per class the normalised mean of its normalised prompt embeddings, in class order', async () => {
    const labels = ['cat', 'dog', 'bird'];
    const templates = ['a photo of a {}.', 'a drawing of a {}.', '{}'];
    const rows = await buildZeroShotWeights(labels, templates, async (p) => fakeEmbedding(p), { promptsInFlight: 4 });
    expect(rows).toHaveLength(3);
    labels.forEach((label, c) => {
      const mean = new Float32Array(8);
      for (const t of templates) {
        const e = fakeEmbedding(t.replace('{}', label));
        for (let i = 0; i < 8; i++) mean[i]! += e[i]! / templates.length;
      }
      const expected = normalize(mean);
      expect(Math.hypot(...rows[c]!)).toBeCloseTo(1, 6);
      rows[c]!.forEach((value, i) => expect(value).toBeCloseTo(expected[i]!, 6));
    });
  });

  it('should report progress in prompts after each group of classes', async () => {
    const progress: number[] = [];
    await buildZeroShotWeights(['a', 'b', 'c', 'd', 'e'], ['{}', 'x {}'], async (p) => fakeEmbedding(p), {
      promptsInFlight: 4,
      onProgress: (built) => progress.push(built),
    });
    expect(progress).toEqual([4, 8, 10]);
  });

  it('should stop between groups once aborted', async () => {
    const stop = new AbortController();
    stop.abort(new Error('stopped'));
    await expect(
      buildZeroShotWeights(['a'], ['{}'], async (p) => fakeEmbedding(p), { promptsInFlight: 4, signal: stop.signal }),
    ).rejects.toThrow('stopped');
  });

  it('should pack rows end to end and unpack them as views', () => {
    const rows = [new Float32Array([1, 2]), new Float32Array([3, 4]), new Float32Array([5, 6])];
    const packed = packWeights(rows);
    expect([...packed]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(unpackWeights(packed, 2).map((row) => [...row])).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(() => unpackWeights(packed, 4)).toThrow();
  });
});
