/**
 * Admission on Redis: the cluster-wide counts of unfinished jobs, images and bytes (one hash, plus one per owner),
 * each job's reservation, and its image bytes (a binary list under its own key that expires with the job). Lua
 * scripts check and take, release, and sweep in one step each, so the limits hold across every API process and a
 * job's bytes never outlive it. BullMQ knows nothing of these keys: BullJobQueue moves the work, this module counts it.
 */
import type { AdmissionLimit, AdmissionLimits, OwnerCounts, QueueCounts, Reservation } from '../JobQueue.js';
import { viaRedis, type Redis } from './connection.js';
import type { RedisKeys } from './keys.js';

/** The admission part of the counts (BullMQ's own counts add `waiting` and `active`). */
export type AdmissionCounts = Pick<QueueCounts, 'jobs' | 'images' | 'imageBytes' | 'owners'>;

// KEYS: counts hash, reservations hash, images list, owners hash; ARGV: id, images, bytes, maxJobs, maxImages, maxBytes,
// expiresAt ms, owner ('' for none), maxOwnerJobs, maxOwnerImages, then the images' bytes. Admits (the rule of
// admission.ts) and keeps the bytes (expiring with the job) in one step, one round trip. A reservation reads
// `images:bytes:expiresAt:owner`; the owners hash holds `<owner>:jobs` and `<owner>:images` while the owner has any.
const RESERVE = `
local jobs = tonumber(redis.call('HGET', KEYS[1], 'jobs') or '0')
local images = tonumber(redis.call('HGET', KEYS[1], 'images') or '0')
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
if jobs >= tonumber(ARGV[4]) then return {0, 'jobs', jobs, images, bytes} end
if images + tonumber(ARGV[2]) > tonumber(ARGV[5]) then return {0, 'images', jobs, images, bytes} end
if bytes + tonumber(ARGV[3]) > tonumber(ARGV[6]) then return {0, 'imageBytes', jobs, images, bytes} end
local owner = ARGV[8]
local ownJobs, ownImages = 0, 0
if owner ~= '' then
  ownJobs = tonumber(redis.call('HGET', KEYS[4], owner .. ':jobs') or '0')
  ownImages = tonumber(redis.call('HGET', KEYS[4], owner .. ':images') or '0')
  if ownJobs >= tonumber(ARGV[9]) then return {0, 'ownerJobs', jobs, images, bytes, ownJobs, ownImages} end
  if ownImages + tonumber(ARGV[2]) > tonumber(ARGV[10]) then return {0, 'ownerImages', jobs, images, bytes, ownJobs, ownImages} end
  redis.call('HINCRBY', KEYS[4], owner .. ':jobs', 1)
  redis.call('HINCRBY', KEYS[4], owner .. ':images', ARGV[2])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[7] .. ':' .. owner)
redis.call('HINCRBY', KEYS[1], 'jobs', 1)
redis.call('HINCRBY', KEYS[1], 'images', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[3])
if #ARGV >= 11 then
  for i = 11, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
  redis.call('PEXPIREAT', KEYS[3], ARGV[7])
end
return {1, '', jobs + 1, images + tonumber(ARGV[2]), bytes + tonumber(ARGV[3]), ownJobs + 1, ownImages + tonumber(ARGV[2])}`;

// Shared by RELEASE and SWEEP: forgets a reservation (its value is images:bytes:expiresAt[:owner]) and takes it off
// the counts, its owner's included (whose fields go once it has no job left, so the hash holds only active owners).
const UNRESERVE = `
local function unreserve(counts, reservations, owners, id, reserved)
  local images, bytes, owner = string.match(reserved, '^(%d+):(%d+):%d+:?(.*)$')
  redis.call('HDEL', reservations, id)
  redis.call('HINCRBY', counts, 'jobs', -1)
  redis.call('HINCRBY', counts, 'images', -tonumber(images or '0'))
  redis.call('HINCRBY', counts, 'bytes', -tonumber(bytes or '0'))
  if owner ~= nil and owner ~= '' then
    if redis.call('HINCRBY', owners, owner .. ':jobs', -1) <= 0 then
      redis.call('HDEL', owners, owner .. ':jobs', owner .. ':images')
    else
      redis.call('HINCRBY', owners, owner .. ':images', -tonumber(images or '0'))
    end
  end
end`;

// KEYS: counts hash, reservations hash, images list, owners hash; ARGV: id. Idempotent: a second release of one id does nothing.
const RELEASE = `${UNRESERVE}
redis.call('DEL', KEYS[3])
local reserved = redis.call('HGET', KEYS[2], ARGV[1])
if not reserved then return 0 end
unreserve(KEYS[1], KEYS[2], KEYS[4], ARGV[1], reserved)
return 1`;

// KEYS: counts hash, reservations hash, the store's index, owners hash; ARGV: job key prefix, images key prefix.
// Releases every reservation past its job's expiry whose job is gone from the store (it expired while it waited, or
// its release was lost), with its bytes and index entry; returns their ids. The job keys it checks are computed
// here, not passed in KEYS: fine on one Redis (not Redis Cluster), like the deployment itself. Redis's own clock
// decides, as it does for the job keys' expiry.
const SWEEP = `${UNRESERVE}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local entries = redis.call('HGETALL', KEYS[2])
local swept = {}
for i = 1, #entries, 2 do
  local id, reserved = entries[i], entries[i + 1]
  local expires = tonumber(string.match(reserved, '^%d+:%d+:(%d+)') or '')
  if expires ~= nil and expires <= now and redis.call('EXISTS', ARGV[1] .. id) == 0 then
    unreserve(KEYS[1], KEYS[2], KEYS[4], id, reserved)
    redis.call('DEL', ARGV[2] .. id)
    redis.call('ZREM', KEYS[3], id)
    swept[#swept + 1] = id
  end
end
return swept`;

export class RedisAdmission {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /**
   * Admits the job (the rule of admission.ts) and keeps its bytes, in one round trip. Resolves to whether it was
   * admitted, the limit that refused it if not, and the counts as the script saw them (the owner's from `known`
   * unless the job has an owner).
   */
  async reserve(
    reservation: Reservation,
    limits: AdmissionLimits,
    known: AdmissionCounts,
  ): Promise<{ admitted: boolean; limit: AdmissionLimit; counts: AdmissionCounts }> {
    const { id, owner, expiresAt } = reservation;
    const images = reservation.images.map((bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    const imageBytes = images.reduce((sum, bytes) => sum + bytes.byteLength, 0);
    const reply = (await viaRedis(() =>
      this.#redis.eval(
        RESERVE,
        4,
        this.#keys.admission,
        this.#keys.reservations,
        this.#keys.images(id),
        this.#keys.admissionOwners,
        id,
        images.length,
        imageBytes,
        limits.maxJobs,
        limits.maxImages,
        limits.maxImageBytes,
        expiresAt.getTime(),
        owner ?? '',
        limits.maxJobsPerOwner,
        limits.maxImagesPerOwner,
        ...images,
      ),
    )) as [number, string, number, number, number, number?, number?];
    const [admitted, limit, jobs, imageCount, bytes, ownJobs, ownImages] = reply;
    const owners =
      owner === null || ownJobs === undefined
        ? known.owners
        : { ...known.owners, [owner]: { jobs: ownJobs, images: ownImages ?? 0 } };
    return {
      admitted: admitted === 1,
      limit: limit as AdmissionLimit,
      counts: { jobs, images: imageCount, imageBytes: bytes, owners },
    };
  }

  /** Forgets a reservation and the job's bytes. Idempotent. */
  async release(id: string): Promise<void> {
    await viaRedis(() =>
      this.#redis.eval(
        RELEASE,
        4,
        this.#keys.admission,
        this.#keys.reservations,
        this.#keys.images(id),
        this.#keys.admissionOwners,
        id,
      ),
    );
  }

  /** Releases the reservations (and bytes) of jobs that expired, gone from the store past their expiry; resolves to their ids. */
  async sweepExpired(): Promise<string[]> {
    return (await viaRedis(() =>
      this.#redis.eval(
        SWEEP,
        4,
        this.#keys.admission,
        this.#keys.reservations,
        this.#keys.index,
        this.#keys.admissionOwners,
        this.#keys.jobPrefix,
        this.#keys.imagesPrefix,
      ),
    )) as string[];
  }

  /** The job's image bytes, their expiry moved to `keepUntil`, in one round trip; undefined when the key is gone. */
  async loadImages(id: string, keepUntil: Date): Promise<Uint8Array[] | undefined> {
    const key = this.#keys.images(id);
    const replies = throwOnFailure(
      await viaRedis(() => this.#redis.multi().pexpireat(key, keepUntil.getTime()).lrangeBuffer(key, 0, -1).exec()),
    );
    const [extended, images] = replies as [number, Buffer[]];
    return extended === 1 ? images : undefined;
  }

  /** The counts now (two reads). */
  async counts(): Promise<AdmissionCounts> {
    const [[jobs, images, bytes], owners] = await Promise.all([
      viaRedis(() => this.#redis.hmget(this.#keys.admission, 'jobs', 'images', 'bytes')),
      viaRedis(() => this.#redis.hgetall(this.#keys.admissionOwners)),
    ]);
    return {
      jobs: Number(jobs ?? 0),
      images: Number(images ?? 0),
      imageBytes: Number(bytes ?? 0),
      owners: ownerCountsFrom(owners),
    };
  }
}

/** The owners hash (`<owner>:jobs`, `<owner>:images`) as counts per owner. */
function ownerCountsFrom(fields: Record<string, string>): Record<string, OwnerCounts> {
  const owners: Record<string, OwnerCounts> = {};
  for (const [field, value] of Object.entries(fields)) {
    const split = field.lastIndexOf(':');
    const owner = field.slice(0, split);
    const kind = field.slice(split + 1);
    const counts = (owners[owner] ??= { jobs: 0, images: 0 });
    if (kind === 'jobs') counts.jobs = Number(value);
    else if (kind === 'images') counts.images = Number(value);
  }
  return owners;
}

/** The replies of a MULTI, or the first command's error (a MULTI resolves even when a command in it failed). */
function throwOnFailure(replies: [Error | null, unknown][] | null): unknown[] {
  if (replies === null) throw new Error('Redis discarded the transaction');
  for (const [error] of replies) if (error !== null) throw error;
  return replies.map(([, reply]) => reply);
}
