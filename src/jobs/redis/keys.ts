/**
 * Every Redis key and channel of one deployment, in one place: the store, the queue and the expiry sweep name the
 * same keys (the sweep looks for a job's key to tell whether the job expired). BullMQ's own keys are
 * `<prefix>:jobs:*` (the queue is named `jobs`).
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** A job's JSON, expiring at its `expiresAt`. */
  job(id: string): string {
    return `${this.jobPrefix}${id}`;
  }

  get jobPrefix(): string {
    return `${this.prefix}:job:`;
  }

  /** Sorted set of job ids by creation sequence, for paging. */
  get index(): string {
    return `${this.prefix}:jobs`;
  }

  /** Finished job ids by expiry (ms): the order the retention budget forgets them in. */
  get finished(): string {
    return `${this.prefix}:finished`;
  }

  /** Each finished job's stored bytes, by id. */
  get retainedSizes(): string {
    return `${this.prefix}:retained`;
  }

  /** The sum of `retainedSizes`: what finished jobs hold now. */
  get retainedBytes(): string {
    return `${this.prefix}:retainedBytes`;
  }

  /**
   * Sorted set of one owner's job ids by creation sequence (owner: keyed hash of an API key), so a key pages through
   * its own jobs without reading everyone's; it expires with the owner's last job.
   */
  ownerIndex(owner: string): string {
    return `${this.prefix}:owner:${owner}:jobs`;
  }

  /** The creation sequence counter. */
  get sequence(): string {
    return `${this.prefix}:seq`;
  }

  /** A job's image bytes: a list of binary strings, expiring with the job. */
  images(id: string): string {
    return `${this.imagesPrefix}${id}`;
  }

  get imagesPrefix(): string {
    return `${this.prefix}:images:`;
  }

  /** Cluster-wide admission counts (jobs, images, bytes). */
  get admission(): string {
    return `${this.prefix}:admission`;
  }

  /** Unfinished jobs and images per owner (keyed hash of an API key, never the key): `<owner>:jobs`, `<owner>:images`. */
  get admissionOwners(): string {
    return `${this.prefix}:admission:owners`;
  }

  /** Each unfinished job's reservation: `images:bytes:expiresAtMs:owner`. */
  get reservations(): string {
    return `${this.prefix}:reservations`;
  }

  /** Job changes (pub/sub). */
  get events(): string {
    return `${this.prefix}:events`;
  }

  /** Channel of model start / stop requests, from any API to every worker. */
  get modelControl(): string {
    return `${this.prefix}:model-control`;
  }

  /** Channel on which a worker announces that its model entry changed (written, or removed). */
  get modelsChanged(): string {
    return `${this.prefix}:models-changed`;
  }

  /** Cancels, for the worker running the job (pub/sub). */
  get cancel(): string {
    return `${this.prefix}:cancel`;
  }

  /** A worker's model entry. */
  models(workerId: string): string {
    return `${this.prefix}:models:${workerId}`;
  }
}
