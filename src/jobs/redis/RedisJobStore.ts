/**
 * The JobStore on Redis: one JSON string per job (`<prefix>:job:<id>`, expiring at the job's `expiresAt`),
 * a sorted set of ids by creation sequence for paging (and one per owner, expiring with the owner's last job, so a
 * key pages through its own jobs only), and Lua scripts for create and compare-and-set, so every API and worker
 * process sees one order of changes. Expired ids leave the sets when the queue's expiry sweep meets them (jobs that
 * expired unfinished; the main set) or lazily, when a page meets them.
 *
 * The retention budget (retention.ts) is kept per deployment in the same scripts: each finished job's JSON size in a
 * hash, their ids by expiry in a sorted set, and the total; a job that finishes over the budget makes the script
 * delete the jobs that expire first (they finished first: one TTL for all), in the same step, for every process.
 */
import { decodeCursor, encodeCursor, type JobPage, type JobStore, type ListJobsOptions } from '../JobStore.js';
import type { RetentionStats } from '../retention.js';
import { jobFromJSON, jobToJSON } from '../serialise.js';
import { isTerminal, type Job, type JobStatus } from '../types.js';
import { closeConnection, viaRedis, type Redis } from './connection.js';
import { RedisKeys } from './keys.js';

export interface RedisJobStoreOptions {
  redis: Redis;
  /** Key prefix shared by every process of one deployment. */
  keyPrefix: string;
  /** Whether `close` quits the connection (true when the store owns it). */
  ownsConnection?: boolean;
  /** MAX_RETAINED_JOB_BYTES: the JSON bytes finished jobs of the deployment may hold; no bound when omitted. */
  maxRetainedBytes?: number;
}

// Shared by the scripts that touch retention. KEYS[2..4] are always: finished ids by expiry, sizes hash, total.
const RETENTION_FUNCTIONS = `
local function forget(id)
  local size = redis.call('HGET', KEYS[3], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  if size then redis.call('DECRBY', KEYS[4], size) end
end
-- Finished jobs whose keys Redis expired (their TTL ran out) leave the count, a bounded number per call.
local function forgetExpired()
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)) do forget(id) end
end`;

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

// KEYS: job key, finished, sizes, total, index, owner index; ARGV: expected status, expected version, json, expiresAt ms,
// id, whether the new state is terminal (1/0), the budget in bytes, the job key prefix, '1' when the job has an owner.
// Returns {changed, evicted}. The jobs evicted are deleted here, by keys computed from the prefix: fine on one Redis
// (not Redis Cluster); their ids leave the owner indexes lazily, when a page meets them.
const TRANSITION = `${RETENTION_FUNCTIONS}${KEEP_UNTIL}
local current = redis.call('GET', KEYS[1])
if not current then return {0, 0} end
local job = cjson.decode(current)
if job.status ~= ARGV[1] or tonumber(job.version) ~= tonumber(ARGV[2]) then return {0, 0} end
redis.call('SET', KEYS[1], ARGV[3], 'PXAT', ARGV[4])
if ARGV[9] == '1' then keepUntil(KEYS[6], ARGV[4]) end
if ARGV[6] ~= '1' then return {1, 0} end
forgetExpired()
local size = string.len(ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[3], ARGV[5], size)
local total = redis.call('INCRBY', KEYS[4], size)
local budget = tonumber(ARGV[7])
local evicted = 0
while total > budget do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  -- The job that just finished is always kept, even alone over the budget.
  if not oldest or oldest == ARGV[5] then break end
  forget(oldest)
  redis.call('DEL', ARGV[8] .. oldest)
  redis.call('ZREM', KEYS[5], oldest)
  total = tonumber(redis.call('GET', KEYS[4]) or '0')
  evicted = evicted + 1
end
return {1, evicted}`;

// KEYS: job key, finished, sizes, total, index; ARGV: id. Returns whether the job existed.
const DELETE = `${RETENTION_FUNCTIONS}
forget(ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return redis.call('DEL', KEYS[1])`;

// KEYS: (unused), finished, sizes, total. Returns {bytes, jobs} once expired entries are gone.
const RETENTION = `${RETENTION_FUNCTIONS}
forgetExpired()
return {tonumber(redis.call('GET', KEYS[4]) or '0'), redis.call('ZCARD', KEYS[2])}`;

/** Ids fetched per round trip while paging. */
const SCAN_CHUNK = 200;

export class RedisJobStore implements JobStore {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #ownsConnection: boolean;
  readonly #maxRetainedBytes: number;
  #evicted = 0;
  #closed = false;

  constructor(options: RedisJobStoreOptions) {
    this.#redis = options.redis;
    this.#keys = new RedisKeys(options.keyPrefix);
    this.#ownsConnection = options.ownsConnection ?? false;
    const max = options.maxRetainedBytes ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(max) || max < 1)
      throw new TypeError(`RedisJobStore: expected maxRetainedBytes to be a positive integer, got ${max}`);
    this.#maxRetainedBytes = max;
  }

  /** The keys every retention-aware script takes, after the job's own. */
  #retentionKeys(id: string): string[] {
    const keys = this.#keys;
    return [keys.job(id), keys.finished, keys.retainedSizes, keys.retainedBytes, keys.index];
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
    const [changed, evicted] = (await viaRedis(() =>
      this.#redis.eval(
        TRANSITION,
        6,
        ...this.#retentionKeys(id),
        this.#ownerIndexOf(next),
        from,
        next.version - 1,
        jobToJSON(next),
        next.expiresAt.getTime(),
        id,
        isTerminal(next) ? 1 : 0,
        this.#maxRetainedBytes,
        this.#keys.jobPrefix,
        next.owner === null ? '' : '1',
      ),
    )) as [number, number];
    this.#evicted += evicted;
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
      const chunk = await viaRedis(() =>
        this.#redis.zrangebyscore(indexKey, from, '+inf', 'WITHSCORES', 'LIMIT', 0, SCAN_CHUNK),
      );
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
    const deleted = await viaRedis(() => this.#redis.eval(DELETE, 5, ...this.#retentionKeys(id), id));
    return deleted === 1;
  }

  async retention(): Promise<RetentionStats> {
    const [bytes, jobs] = (await viaRedis(() =>
      this.#redis.eval(
        RETENTION,
        4,
        this.#keys.index,
        this.#keys.finished,
        this.#keys.retainedSizes,
        this.#keys.retainedBytes,
      ),
    )) as [number, number];
    return { bytes, jobs, evicted: this.#evicted };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsConnection) await closeConnection(this.#redis);
  }
}
