/**
 * What the workers serve, for the API processes (which load no model): each worker writes its models'
 * ModelInfo (status, embedding size, scale, …) under its own key with a short expiry and renews it; a worker
 * that dies drops out when its key expires. APIs read every worker's entry, or `watch` the views: a worker announces
 * each change of its entry on a channel, and the watch re-reads once per entry TTL for the entries that expired
 * (a lost worker announces nothing).
 *
 * Model control travels the other way: an API publishes `{model, change}` on one channel and every worker that
 * listens applies it to its own models, so a start or stop sent to any API reaches the whole cluster.
 */
import type { ModelInfo } from '../../clip/index.js';
import type { Logger } from '../../logger.js';
import { closeConnection, viaRedis, type Redis } from './connection.js';
import { RedisKeys } from './keys.js';

export interface RedisModelRegistryOptions {
  redis: Redis;
  keyPrefix: string;
  /** How long a worker's entry outlives its last renewal, in ms. */
  entryTtlMs: number;
  /** Whether `close` quits the connection. */
  ownsConnection?: boolean;
  /** Opens a connection for a subscription: the control channel (workers), the change channel (`watch`). */
  connect?: () => Redis;
  logger?: Logger;
}

/** A start or stop of one model (its configured name), for every worker. */
export interface ModelControlMessage {
  model: string;
  change: 'start' | 'stop';
}

function parseControlMessage(text: string): ModelControlMessage | undefined {
  try {
    const value = JSON.parse(text) as Partial<ModelControlMessage>;
    if (typeof value.model === 'string' && (value.change === 'start' || value.change === 'stop'))
      return { model: value.model, change: value.change };
  } catch {
    // Not ours: ignored below.
  }
  return undefined;
}

/**
 * How often per entry TTL a watch re-reads the entries, for those that expired unannounced: a lost worker leaves
 * the views at most two TTLs after its last renewal.
 */
const EXPIRY_CHECKS_PER_TTL = 1;

export class RedisModelRegistry {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #ttlMs: number;
  readonly #ownsConnection: boolean;
  #heartbeat: NodeJS.Timeout | null = null;
  #registeredAs: string | null = null;
  #write: (() => void) | null = null;
  readonly #connect: (() => Redis) | undefined;
  readonly #logger: Logger | undefined;
  #subscriber: Redis | null = null;
  /** The stops of the open `watch`es, called by `close`. */
  readonly #watches = new Set<() => void>();

  constructor(options: RedisModelRegistryOptions) {
    this.#redis = options.redis;
    this.#keys = new RedisKeys(options.keyPrefix);
    this.#ttlMs = options.entryTtlMs;
    this.#ownsConnection = options.ownsConnection ?? false;
    this.#connect = options.connect;
    this.#logger = options.logger;
  }

  /** Asks every listening worker to start or stop `model`. */
  async publishControl(message: ModelControlMessage): Promise<void> {
    // SERVICE_UNAVAILABLE while Redis is down, as every other request that needs it.
    await viaRedis(() => this.#redis.publish(this.#keys.modelControl, JSON.stringify(message)), this.#redis);
  }

  /** Calls `listener` with every control message any API publishes, until `close`. */
  onControl(listener: (message: ModelControlMessage) => void): void {
    if (this.#connect === undefined) throw new TypeError('RedisModelRegistry.onControl needs the connect option');
    const subscriber = this.#connect();
    this.#subscriber = subscriber;
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.#keys.modelControl) return;
      const message = parseControlMessage(text);
      if (message === undefined) this.#logger?.warn({ channel }, 'ignored a malformed model control message');
      else listener(message);
    });
    void subscriber
      .subscribe(this.#keys.modelControl)
      .catch((error: unknown) => this.#logger?.warn({ err: error }, 'model control subscription failed'));
  }

  /** Writes this worker's models now (after a status change), rather than at the next renewal, and announces it. */
  refresh(): void {
    this.#write?.();
  }

  /**
   * Registers this worker's models now (announced to the watches) and renews them every third of the TTL until
   * `close` (a renewal changes nothing a watch shows, so it is not announced).
   */
  register(workerId: string, models: () => ModelInfo[]): void {
    this.#registeredAs = workerId;
    const write = (announce: boolean): void => {
      void this.#redis
        .set(this.#keys.models(workerId), JSON.stringify(models()), 'PX', this.#ttlMs)
        .then(() => (announce ? this.#announce(workerId) : undefined))
        .catch(() => undefined);
    };
    this.#write = () => write(true);
    write(true);
    this.#heartbeat = setInterval(() => write(false), Math.max(100, Math.floor(this.#ttlMs / 3)));
    this.#heartbeat.unref();
  }

  async #announce(workerId: string): Promise<void> {
    await this.#redis.publish(this.#keys.modelsChanged, workerId);
  }

  /**
   * Calls `listener` with every live worker's models (as `read` answers them) now and whenever they change: when a
   * worker announces a change of its entry, when the subscription reconnects (announcements may have been missed),
   * and when an entry may have expired (a worker lost without deregistering: checked once per entry TTL). Equal
   * views are not repeated. The returned function stops the watch; `close` stops every watch.
   */
  watch(listener: (views: ModelInfo[][]) => void): () => void {
    if (this.#connect === undefined) throw new TypeError('RedisModelRegistry.watch needs the connect option');
    const subscriber = this.#connect();
    let stopped = false;
    let reading = false;
    let readAgain = false;
    let last: string | undefined;
    const push = async (): Promise<void> => {
      // One read at a time; changes announced during it are covered by one more read after it.
      if (reading) {
        readAgain = true;
        return;
      }
      reading = true;
      try {
        do {
          readAgain = false;
          const views = await this.read().catch(() => undefined);
          const text = views === undefined ? undefined : JSON.stringify(views);
          if (stopped || views === undefined || text === last) continue;
          last = text;
          listener(views);
        } while (readAgain && !stopped);
      } finally {
        reading = false;
      }
    };
    subscriber.on('message', (channel: string) => {
      if (channel === this.#keys.modelsChanged) void push();
    });
    // 'ready' comes once connected and after every reconnect, when announcements may have been lost meanwhile.
    subscriber.on('ready', () => void push());
    void subscriber
      .subscribe(this.#keys.modelsChanged)
      .catch((error: unknown) => this.#logger?.warn({ err: error }, 'model change subscription failed'));
    const expiries = setInterval(() => void push(), Math.floor(this.#ttlMs / EXPIRY_CHECKS_PER_TTL));
    expiries.unref();
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      clearInterval(expiries);
      this.#watches.delete(stop);
      void closeConnection(subscriber);
    };
    this.#watches.add(stop);
    return stop;
  }

  /** Every live worker's models. */
  async read(): Promise<ModelInfo[][]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.#redis.scan(cursor, 'MATCH', this.#keys.models('*'), 'COUNT', 100);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length === 0) return [];
    const values = await this.#redis.mget(...keys);
    return values.filter((value): value is string => value !== null).map((value) => JSON.parse(value) as ModelInfo[]);
  }

  async close(): Promise<void> {
    for (const stop of [...this.#watches]) stop();
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    const workerId = this.#registeredAs;
    if (workerId !== null) {
      await this.#redis.del(this.#keys.models(workerId)).catch(() => undefined);
      await this.#announce(workerId).catch(() => undefined);
    }
    this.#registeredAs = null;
    this.#write = null;
    if (this.#subscriber !== null) await closeConnection(this.#subscriber);
    this.#subscriber = null;
    if (this.#ownsConnection) await closeConnection(this.#redis);
  }
}

/**
 * The API's view of a model: its configured name and source, with the status and metadata of the best worker
 * entry (running anywhere wins, then the states on the way to running, then stopped, failed last); `loading` while no
 * worker serves it.
 */
export function mergeModelViews(configured: ModelInfo[], workers: ModelInfo[][]): ModelInfo[] {
  const rank: Record<ModelInfo['status'], number> = {
    ready: 6,
    stopping: 5,
    loading: 4,
    starting: 3,
    stopped: 2,
    uninitialized: 1,
    failed: 0,
  };
  return configured.map((model) => {
    let best: ModelInfo | undefined;
    for (const entry of workers) {
      const seen = entry.find((info) => info.name === model.name);
      if (seen !== undefined && (best === undefined || rank[seen.status] > rank[best.status])) best = seen;
    }
    return best === undefined
      ? { ...model, status: 'loading', error: null }
      : { ...best, name: model.name, source: model.source };
  });
}
