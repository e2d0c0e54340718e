/**
 * The JobStore on Redis: one JSON string per job (`<prefix>:job:<id>`, expiring at the job's `expiresAt`),
 * a sorted set of ids by creation sequence for paging (and one per owner, expiring with the owner's last job, so a
 * key pages through its own jobs only), and Lua scripts for create and compare-and-set, so every API and worker
 * process sees one order of changes. Expired ids leave the sets when the queue's expiry sweep meets them (jobs that
 * expired unfinished; the main set) or lazily, when a page meets them.
 */
import { decodeCursor, encodeCursor, type JobPage, type JobStore, type ListJobsOptions } from '../JobStore.js';
import { jobFromJSON, jobToJSON } from '../serialise.js';
import type { Job, JobStatus } from '../types.js';
import { closeConnection, viaRedis, type Redis } from './connection.js';
import { RedisKeys } from './keys.js';

export interface RedisJobStoreOptions {
  redis: Redis;
  /** Key prefix shared by every process of one deployment. */
  keyPrefix: string;
  /** Whether `close` quits the connection (true when the store owns it). */
  ownsConnection?: boolean;
}

// Moves a key's expiry to `at` (ms) unless it already lasts longer (PEXPIREAT's GT needs Redis 7).
const KEEP_UNTIL = `
local function keepUntil(key, at)
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 or now + ttl < tonumber(at) then redis.call('PEXPIREAT', key, at) end
end`;

// KEYS: job key, index, sequence, owner index; ARGV: id, json, expiresAt ms, '1' when the job has an owner.
const CREATE = `${KEEP_UNTIL}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seq = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[4], seq, ARGV[1])
  keepUntil(KEYS[4], ARGV[3])
end
return 1`;

// KEYS: job key, owner index; ARGV: expected status, expected version, json, expiresAt ms, '1' when the job has an owner.
const TRANSITION = `${KEEP_UNTIL}
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local job = cjson.decode(current)
if job.status ~= ARGV[1] or tonumber(job.version) ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PXAT', ARGV[4])
if ARGV[5] == '1' then keepUntil(KEYS[2], ARGV[4]) end
return 1`;

/** Ids fetched per round trip while paging. */
const SCAN_CHUNK = 200;

export class RedisJobStore implements JobStore {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #ownsConnection: boolean;
  #closed = false;

  constructor(options: RedisJobStoreOptions) {
    this.#redis = options.redis;
    this.#keys = new RedisKeys(options.keyPrefix);
    this.#ownsConnection = options.ownsConnection ?? false;
  }

  async create(job: Job): Promise<void> {
    const created = await viaRedis(() =>
      this.#redis.eval(
        CREATE,
        4,
        this.#keys.job(job.id),
        this.#keys.index,
        this.#keys.sequence,
        this.#ownerIndexOf(job),
        job.id,
        jobToJSON(job),
        job.expiresAt.getTime(),
        job.owner === null ? '' : '1',
      ),
    );
    if (created !== 1) throw new Error(`job ${job.id} already exists`);
  }

  async get(id: string): Promise<Job | undefined> {
    const text = await viaRedis(() => this.#redis.get(this.#keys.job(id)));
    return text === null ? undefined : jobFromJSON(text);
  }

  async transition(id: string, from: JobStatus, next: Job): Promise<boolean> {
    const changed = await viaRedis(() =>
      this.#redis.eval(
        TRANSITION,
        2,
        this.#keys.job(id),
        this.#ownerIndexOf(next),
        from,
        next.version - 1,
        jobToJSON(next),
        next.expiresAt.getTime(),
        next.owner === null ? '' : '1',
      ),
    );
    return changed === 1;
  }

  /** A job's owner index; the main index stands in for a job without owner (the scripts then leave it alone). */
  #ownerIndexOf(job: Job): string {
    return job.owner === null ? this.#keys.index : this.#keys.ownerIndex(job.owner);
  }

  async list(options: ListJobsOptions): Promise<JobPage> {
    const afterSeq = options.after === undefined ? -1 : decodeCursor(options.after);
    // One owner's jobs come from its own index: both share the creation sequence, so cursors mean the same.
    const indexKey = options.owner === undefined ? this.#keys.index : this.#keys.ownerIndex(options.owner);
    const jobs: Job[] = [];
    let endSeq: number | null = null;
    let from = `(${afterSeq}`;
    for (;;) {
      const chunk = await viaRedis(() => this.#redis.zrangebyscore(indexKey, from, '+inf', 'WITHSCORES', 'LIMIT', 0, SCAN_CHUNK));
      if (chunk.length === 0) break;
      const ids: string[] = [];
      const seqs: number[] = [];
      for (let i = 0; i < chunk.length; i += 2) {
        ids.push(chunk[i] as string);
        seqs.push(Number(chunk[i + 1]));
      }
      const texts = await viaRedis(() => this.#redis.mget(...ids.map((id) => this.#keys.job(id))));
      const expired: string[] = [];
      for (const [index, text] of texts.entries()) {
        if (text === null) {
          expired.push(ids[index] as string);
          continue;
        }
        const job = jobFromJSON(text);
        if (options.status !== undefined && job.status !== options.status) continue;
        if (options.owner !== undefined && job.owner !== options.owner) continue;
        if (jobs.length === options.first) {
          if (expired.length > 0) await viaRedis(() => this.#redis.zrem(indexKey, ...expired));
          return { jobs, endCursor: endSeq === null ? null : encodeCursor(endSeq), hasNextPage: true };
        }
        jobs.push(job);
        endSeq = seqs[index] as number;
      }
      if (expired.length > 0) await viaRedis(() => this.#redis.zrem(indexKey, ...expired));
      from = `(${seqs[seqs.length - 1] as number}`;
    }
    return { jobs, endCursor: endSeq === null ? null : encodeCursor(endSeq), hasNextPage: false };
  }

  async delete(id: string): Promise<boolean> {
    const [[, deleted]] = (await viaRedis(() => this.#redis.multi().del(this.#keys.job(id)).zrem(this.#keys.index, id).exec())) as [[unknown, number]];
    return deleted === 1;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsConnection) await closeConnection(this.#redis);
  }
}
