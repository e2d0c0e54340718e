/**
 * JobEvents over Redis pub/sub: `publish` sends the job's JSON on one channel per deployment; every process
 * subscribes once and fans messages out to its local listeners. Pub/sub drops what is sent while a process is
 * disconnected, so after every reconnect the bus emits `resynced` and watchers re-read their jobs; stale or
 * repeated messages are dropped by version.
 */
import { LocalEmitter, type JobEventListener, type JobEventName, type JobEvents } from '../JobEvents.js';
import { jobFromJSON, jobToJSON } from '../serialise.js';
import type { Job } from '../types.js';
import { closeConnection, viaRedis, type Redis } from './connection.js';
import { RedisKeys } from './keys.js';

export interface RedisJobEventsOptions {
  /** A command connection for PUBLISH. */
  publisher: Redis;
  /** A connection this bus owns and puts in subscriber mode. */
  subscriber: Redis;
  keyPrefix: string;
  onListenerError?: (error: unknown) => void;
}

export class RedisJobEvents implements JobEvents {
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #local: LocalEmitter;
  readonly #subscribed: Promise<void>;
  #closed = false;

  constructor(options: RedisJobEventsOptions) {
    this.#publisher = options.publisher;
    this.#subscriber = options.subscriber;
    this.#channel = new RedisKeys(options.keyPrefix).events;
    this.#local = new LocalEmitter(options.onListenerError);
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      let job: Job;
      try {
        job = jobFromJSON(message);
      } catch {
        return;
      }
      this.#local.emit('jobUpdated', job);
    });
    let connectedOnce = false;
    // ioredis re-subscribes on reconnect; whatever was published meanwhile is lost, so watchers re-read.
    this.#subscriber.on('ready', () => {
      if (connectedOnce) this.#local.emit('resynced');
      connectedOnce = true;
    });
    this.#subscribed = this.#subscriber.subscribe(this.#channel).then(() => undefined);
    this.#subscribed.catch(() => undefined);
  }

  /** Resolves once the subscription is live (changes published after it are delivered here). */
  ready(): Promise<void> {
    return this.#subscribed;
  }

  async publish(job: Job): Promise<void> {
    await viaRedis(() => this.#publisher.publish(this.#channel, jobToJSON(job)));
  }

  on<K extends JobEventName>(event: K, listener: JobEventListener<K>): () => void {
    return this.#local.on(event, listener);
  }

  listenerCount(event: JobEventName): number {
    return this.#local.listenerCount(event);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeConnection(this.#subscriber);
  }
}
