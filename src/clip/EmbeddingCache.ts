/**
 * A bounded LRU of embedding *promises*: concurrent callers asking for the same key share one
 * computation, and a rejected computation is evicted so the next caller retries.
 * Used for text embeddings (key: prompt) and image embeddings (key: sha256 of the image bytes).
 *
 * Bounded in bytes as well as entries: a key longer than {@link MAX_PLAIN_KEY_LENGTH} is kept as its SHA-256,
 * so an entry weighs its embedding and at most a few hundred bytes of key, whatever the prompt (a text to embed
 * may be 10,000 characters: 10,000 of them as keys would be 200 MB).
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** Longest key kept as it is, in UTF-16 units; longer ones are kept as their digest. */
const MAX_PLAIN_KEY_LENGTH = 128;

/** The key an entry is stored under: plain and hashed keys in separate namespaces, so no text can pose as a digest. */
function storedKey(key: string): string {
  return key.length <= MAX_PLAIN_KEY_LENGTH ? `=${key}` : `#${createHash('sha256').update(key).digest('base64')}`;
}

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
    const stored = this.#cache === null ? key : storedKey(key);
    const cached = this.#cache?.get(stored);
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
      cache.set(stored, promise);
      promise.catch(() => {
        if (cache.get(stored) === promise) cache.delete(stored);
      });
    }
    return promise;
  }

  clear(): void {
    this.#cache?.clear();
  }
}
