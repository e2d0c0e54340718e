/**
 * The retention budget of finished jobs (MAX_RETAINED_JOB_BYTES). A finished job keeps its inputs and result until
 * its TTL runs out; the budget bounds what all of them hold together, so a client cannot fill the process (or Redis)
 * with large finished jobs faster than they expire. Past the budget a store forgets the jobs that finished first,
 * whole (they read as unknown, as if expired), never the job that just finished: the bound is the budget plus one job.
 *
 * Each store measures in its own unit: the memory store estimates the heap a job holds ({@link estimatedJobHeapBytes}),
 * the Redis store counts the JSON it stores.
 */
import { UnreachableCaseError } from '../errors.js';
import type { Job } from './types.js';

/** What finished jobs hold against the budget. */
export interface RetentionStats {
  /** Bytes held by finished jobs now, in the store's measure (cluster-wide with Redis). */
  bytes: number;
  /** Finished jobs held now (cluster-wide with Redis). */
  jobs: number;
  /** Finished jobs this process's store dropped before their TTL to stay within the budget, since it started. */
  evicted: number;
}

/** The job object itself, its dates, id, model name and small fields. */
const JOB_OBJECT_BYTES = 1024;
/** V8's header of a string or an array (map, hash or length), rounded up. */
const HEADER_BYTES = 16;
/** One array element: a pointer, or an unboxed double in a double array. */
const SLOT_BYTES = 8;

/** At most 2 bytes per UTF-16 unit: V8 keeps Latin-1 strings at 1 byte per character, others at 2. */
function stringBytes(text: string): number {
  return HEADER_BYTES + 2 * text.length;
}

function stringListBytes(texts: readonly string[]): number {
  let bytes = HEADER_BYTES + SLOT_BYTES * texts.length;
  for (const text of texts) bytes += stringBytes(text);
  return bytes;
}

function numberListsBytes(lists: readonly (readonly number[])[]): number {
  let bytes = HEADER_BYTES + SLOT_BYTES * lists.length;
  for (const list of lists) bytes += 2 * HEADER_BYTES + SLOT_BYTES * list.length;
  return bytes;
}

function outcomeBytes(job: Job): number {
  switch (job.status) {
    case 'queued':
    case 'running':
    case 'cancelled':
      return 0;
    case 'failed':
      return stringBytes(job.error.message);
    case 'complete':
      return job.result.task === 'classification'
        ? numberListsBytes(job.result.images.map((image) => image.probabilities))
        : numberListsBytes(job.result.embeddings);
    default:
      throw new UnreachableCaseError(job);
  }
}

/**
 * An upper estimate of the heap one stored job keeps alive: its texts and classes at 2 bytes per character, its
 * result at 8 bytes per number, plus fixed overheads. Computed from lengths only, so it costs nothing per character.
 */
export function estimatedJobHeapBytes(job: Job): number {
  return JOB_OBJECT_BYTES + stringListBytes(job.classes) + stringListBytes(job.texts) + outcomeBytes(job);
}
