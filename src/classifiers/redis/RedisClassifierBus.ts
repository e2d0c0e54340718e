/**
 * The classifiers' bus on Redis, for a cluster: messages as JSON on one pub/sub channel
 * (`<prefix>:classifier-events`), and a build's claim as a key with an expiry (`<prefix>:classifier-claim:<id>:<model>`)
 * that its holder renews while the build makes progress, so a worker lost mid-build frees it for another.
 */
import { closeConnection, viaRedis, type Redis } from '../../jobs/index.js';
import type { ClassifierBus, ClassifierMessage } from '../bus.js';
import { classifierFromJSON, classifierToJSON } from '../serialise.js';

/** How long a claim outlives its last renewal, in ms: builds renew it with every progress report. */
export const CLAIM_MS = 30_000;

/** Deletes a claim only when this process holds it. */
const RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

export interface RedisClassifierBusOptions {
  /** A command connection (shared with the store). Not closed by the bus. */
  redis: Redis;
  /** A connection of the bus's own for the subscription; closed by `close`. */
  subscriber: Redis;
  /** The deployment's REDIS_KEY_PREFIX. */
  keyPrefix: string;
  /** This process, as a claim's holder. */
  processId: string;
}

type WireMessage =
  | { kind: 'updated'; classifier: string }
  | { kind: 'deleted'; id: string }
  | { kind: 'build'; id: string; model: string };

export class RedisClassifierBus implements ClassifierBus {
  readonly #options: RedisClassifierBusOptions;
  readonly #channel: string;
  readonly #listeners = new Set<(message: ClassifierMessage) => void>();
  #subscribed: Promise<unknown> | undefined;

  constructor(options: RedisClassifierBusOptions) {
    this.#options = options;
    this.#channel = `${options.keyPrefix}:classifier-events`;
    options.subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.#channel) return;
      const message = parseMessage(text);
      if (message === undefined) return;
      for (const listener of this.#listeners) listener(message);
    });
  }

  /** Subscribes to the channel (once); resolves when the subscription is in place. */
  open(): Promise<unknown> {
    this.#subscribed ??= this.#options.subscriber.subscribe(this.#channel);
    return this.#subscribed;
  }

  async publish(message: ClassifierMessage): Promise<void> {
    const text = JSON.stringify(toWire(message));
    await viaRedis(() => this.#options.redis.publish(this.#channel, text));
  }

  subscribe(listener: (message: ClassifierMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async claim(id: string, model: string): Promise<boolean> {
    const { redis, processId } = this.#options;
    return (await viaRedis(() => redis.set(this.#claimKey(id, model), processId, 'PX', CLAIM_MS, 'NX'))) === 'OK';
  }

  async renew(id: string, model: string): Promise<void> {
    await viaRedis(() => this.#options.redis.pexpire(this.#claimKey(id, model), CLAIM_MS));
  }

  async release(id: string, model: string): Promise<void> {
    const { redis, processId } = this.#options;
    await viaRedis(() => redis.eval(RELEASE_SCRIPT, 1, this.#claimKey(id, model), processId));
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    await closeConnection(this.#options.subscriber);
  }

  #claimKey(id: string, model: string): string {
    return `${this.#options.keyPrefix}:classifier-claim:${id}:${model}`;
  }
}

function toWire(message: ClassifierMessage): WireMessage {
  return message.kind === 'updated' ? { kind: 'updated', classifier: classifierToJSON(message.classifier) } : message;
}

/** The message, or undefined for text no process of ours published (it is ignored rather than thrown in a handler). */
function parseMessage(text: string): ClassifierMessage | undefined {
  try {
    return fromWire(JSON.parse(text) as WireMessage);
  } catch {
    return undefined;
  }
}

function fromWire(message: WireMessage): ClassifierMessage {
  return message.kind === 'updated' ? { kind: 'updated', classifier: classifierFromJSON(message.classifier) } : message;
}
