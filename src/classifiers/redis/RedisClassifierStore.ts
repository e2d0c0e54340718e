/**
 * Classifiers and their weights in Redis, for a cluster: each record as JSON under `<prefix>:classifier:<id>`, the ids
 * in a sorted set by creation time (`<prefix>:classifiers`), each set of weights as raw little-endian float32 bytes
 * under `<prefix>:classifier-weights:<key>`. A record and its index entry change in one MULTI. Redis failures leave as
 * SERVICE_UNAVAILABLE through the jobs' Redis boundary (`viaRedis`).
 */
import { viaRedis, type Redis } from '../../jobs/index.js';
import type { ClassifierStore } from '../ClassifierStore.js';
import { classifierFromJSON, classifierToJSON } from '../serialise.js';
import type { Classifier } from '../types.js';

export interface RedisClassifierStoreOptions {
  /** A command connection (shared with the jobs' backend). Not closed by the store. */
  redis: Redis;
  /** The deployment's REDIS_KEY_PREFIX. */
  keyPrefix: string;
}

export class RedisClassifierStore implements ClassifierStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(options: RedisClassifierStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.keyPrefix;
  }

  #record(id: string): string {
    return `${this.#prefix}:classifier:${id}`;
  }

  get #index(): string {
    return `${this.#prefix}:classifiers`;
  }

  #weights(key: string): string {
    return `${this.#prefix}:classifier-weights:${key}`;
  }

  async get(id: string): Promise<Classifier | undefined> {
    const text = await viaRedis(() => this.#redis.get(this.#record(id)));
    return text === null ? undefined : classifierFromJSON(text);
  }

  async list(): Promise<Classifier[]> {
    const ids = await viaRedis(() => this.#redis.zrange(this.#index, '0', '-1'));
    if (ids.length === 0) return [];
    const texts = await viaRedis(() => this.#redis.mget(...ids.map((id) => this.#record(id))));
    return texts.flatMap((text) => (text === null ? [] : [classifierFromJSON(text)]));
  }

  async put(classifier: Classifier): Promise<void> {
    await viaRedis(() =>
      this.#redis
        .multi()
        .set(this.#record(classifier.id), classifierToJSON(classifier))
        .zadd(this.#index, classifier.createdAt.getTime(), classifier.id)
        .exec(),
    );
  }

  async delete(id: string): Promise<boolean> {
    const results = await viaRedis(() => this.#redis.multi().del(this.#record(id)).zrem(this.#index, id).exec());
    return results?.[0]?.[1] === 1;
  }

  async loadWeights(key: string): Promise<Float32Array | undefined> {
    const bytes = await viaRedis(() => this.#redis.getBuffer(this.#weights(key)));
    if (bytes === null || bytes.byteLength % 4 !== 0) return undefined;
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }

  async saveWeights(key: string, weights: Float32Array): Promise<void> {
    const bytes = Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength);
    await viaRedis(() => this.#redis.set(this.#weights(key), bytes));
  }

  async close(): Promise<void> {
    // The connection is the caller's.
  }
}
