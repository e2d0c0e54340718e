import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { EmbeddingCache } from '../../../src/clip/EmbeddingCache.js';

/** heapUsed after a full collection. */
function heapAfterGc(): number {
  v8.setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

describe('EmbeddingCache', () => {
  it('should share one computation between concurrent callers and count hits', async () => {
    const cache = new EmbeddingCache(10);
    let calls = 0;
    const compute = async () => {
      calls++;
      return new Float32Array([1]);
    };
    const [a, b] = await Promise.all([cache.get('k', compute), cache.get('k', compute)]);
    expect(a).toBe(b);
    expect(calls).toBe(1);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 1, misses: 1 });
  });

  it('should evict a rejected computation so the next caller retries', async () => {
    const cache = new EmbeddingCache(10);
    await expect(cache.get('k', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await new Promise((r) => setImmediate(r));
    expect(cache.size).toBe(0);
    await expect(cache.get('k', async () => new Float32Array([2]))).resolves.toEqual(new Float32Array([2]));
  });

  it('should stay within its capacity, dropping the least recently used', async () => {
    const cache = new EmbeddingCache(2);
    for (const key of ['a', 'b', 'c']) await cache.get(key, async () => new Float32Array([0]));
    expect(cache.size).toBe(2);
    let recomputed = false;
    await cache.get('a', async () => {
      recomputed = true;
      return new Float32Array([0]);
    });
    expect(recomputed).toBe(true);
  });

  it('should compute every time when the capacity is 0', async () => {
    const cache = new EmbeddingCache(0);
    let calls = 0;
    for (let i = 0; i < 3; i++) await cache.get('k', async () => (calls++, new Float32Array([0])));
    expect(calls).toBe(3);
    expect(cache.enabled).toBe(false);
    expect(new EmbeddingCache(1).enabled).toBe(true);
  });

  it('should keep a long prompt by its digest: the same text hits, another does not, and the texts themselves are not kept', async () => {
    const cache = new EmbeddingCache(10_000);
    // A fresh flat string each time, as a parsed request body gives (`repeat` would share its parts).
    const long = (i: number): string => `${i} ${Buffer.alloc(10_000, 'x').toString('latin1')}`;
    const compute = async (): Promise<Float32Array> => new Float32Array(1);
    await cache.get(long(1), compute);
    await cache.get(long(1), compute);
    await cache.get(long(2), compute);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 1, misses: 2 });
    // 2,000 prompts of 10,000 characters: 20 MB if the cache kept them as keys.
    const before = heapAfterGc();
    for (let i = 10; i < 2_010; i++) await cache.get(long(i), compute);
    const growth = heapAfterGc() - before;
    expect(cache.size).toBe(2_002);
    expect(growth).toBeLessThan(5 * 1024 * 1024);
  });
});
