/**
 * A bounded LRU of embedding *promises*: concurrent callers asking for the same key share one
 * computation, and a rejected computation is evicted so the next caller retries.
 * Used for text embeddings (key: prompt) and image embeddings (key: sha256 of the image bytes).
 */
import { LRUCache } from 'lru-cache';

export class EmbeddingCache {
  readonly #cache: LRUCache<string, Promise<Float32Array>> | null;
  #hits = 0;
  #misses = 0;

  /** @param capacity entries kept; 0 disables caching (every lookup computes). */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new TypeError(`Expected \`capacity\` to be an integer ≥ 0, got ${capacity}`);
    }
    this.#cache = capacity > 0 ? new LRUCache({ max: capacity }) : null;
  }

  /** False at capacity 0: callers need not compute a key (e.g. hash an image) that nothing will look up. */
  get enabled(): boolean {
    return this.#cache !== null;
  }

  get size(): number {
    return this.#cache?.size ?? 0;
  }

  get hits(): number {
    return this.#hits;
  }

  get misses(): number {
    return this.#misses;
  }

  /** The cached promise for `key`, or the one `compute` starts (then cached). `onLookup` is told hit or miss. */
  get(key: string, compute: () => Promise<Float32Array>, onLookup?: (hit: boolean) => void): Promise<Float32Array> {
    const cached = this.#cache?.get(key);
    if (cached) {
      this.#hits++;
      onLookup?.(true);
      return cached;
    }
    this.#misses++;
    onLookup?.(false);
    const promise = compute();
    if (this.#cache) {
      const cache = this.#cache;
      cache.set(key, promise);
      promise.catch(() => {
        if (cache.get(key) === promise) cache.delete(key);
      });
    }
    return promise;
  }

  clear(): void {
    this.#cache?.clear();
  }
}
