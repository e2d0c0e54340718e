import { describe, expect, it } from 'vitest';
import { rankBySimilarity } from '../../../src/jobs/similarity.js';

describe('rankBySimilarity', () => {
  it('should rank every candidate by cosine for every query, best first, at most k, ties in input order', () => {
    const s = Math.SQRT1_2;
    const queries = {
      task: 'text-embedding' as const,
      embeddings: [
        [1, 0],
        [0, 1],
      ],
    };
    const candidates = {
      task: 'image-embedding' as const,
      embeddings: [
        [0, 1],
        [s, s],
        [1, 0],
        [s, s],
      ],
    };
    expect(rankBySimilarity(queries, candidates, 3)).toEqual([
      {
        index: 0,
        matches: [
          { index: 2, score: 1 },
          { index: 1, score: s },
          { index: 3, score: s },
        ],
      },
      {
        index: 1,
        matches: [
          { index: 0, score: 1 },
          { index: 1, score: s },
          { index: 3, score: s },
        ],
      },
    ]);
    expect(rankBySimilarity(queries, candidates, 10)[0]?.matches).toHaveLength(4);
  });
});
