import { describe, expect, it } from 'vitest';
import { textFeeds } from '../../../../src/clip/runtime/towers.js';

describe('textFeeds', () => {
  it('should pad to the longest prompt with the pad id, masking only the real tokens (int64, Hugging Face names)', () => {
    const feeds = textFeeds([[5, 6, 7], [5]], 0);
    expect(feeds.input_ids).toEqual({
      kind: 'int64',
      data: BigInt64Array.from([5n, 6n, 7n, 5n, 0n, 0n]),
      dims: [2, 3],
    });
    expect(feeds.attention_mask).toEqual({
      kind: 'int64',
      data: BigInt64Array.from([1n, 1n, 1n, 1n, 0n, 0n]),
      dims: [2, 3],
    });
  });

  it('should pad to a given length, in the names and type a graph declares', () => {
    const feeds = textFeeds([[1, 2]], 9, 4, { idsInput: 'text', maskInput: undefined, idType: 'int32' });
    expect(Object.keys(feeds)).toEqual(['text']);
    expect(feeds.text).toEqual({ kind: 'int32', data: Int32Array.from([1, 2, 9, 9]), dims: [1, 4] });
  });

  it('should refuse a prompt longer than the length', () => {
    expect(() => textFeeds([[1, 2, 3]], 0, 2)).toThrow(RangeError);
  });
});
