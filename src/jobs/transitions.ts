/**
 * The one way a job changes, for both sides (API: cancel; worker: run, finish, fail): read, compute the next
 * state, compare-and-set it in the store, then publish it. A lost race re-reads and tries again, so the
 * winner's state is the only one stored and announced: a job BullMQ delivers twice never completes twice.
 */
import type { Logger } from '../logger.js';
import { UnreachableCaseError } from '../errors.js';
import { ownerLabel } from './caller.js';
import type { JobEvents } from './JobEvents.js';
import type { JobStore } from './JobStore.js';
import { isTerminal, type Job } from './types.js';

export interface TransitionDeps {
  store: JobStore;
  events: JobEvents;
  logger: Logger;
  ttlSeconds: number;
  /** Called with each state this process stored (for per-process totals). */
  onChanged?: (job: Job) => void;
}

/** Most compare-and-set attempts; each loss means another process advanced the job, which only happens a few times. */
const MAX_ATTEMPTS = 8;

/**
 * Applies `next` to the stored job unless it is terminal (or `next` returns null). Resolves to
 * `{ job, changed }`: the state now stored (undefined when unknown or expired) and whether this call made it.
 */
export async function advanceJob(
  deps: TransitionDeps,
  id: string,
  next: (current: Job) => Job | null,
  known?: Job,
): Promise<{ job: Job | undefined; changed: boolean }> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    // `known`: the state the caller stored or read last; tried first without a read (one round trip less on Redis),
    // and if someone changed the job since, the compare-and-set fails and the loop reads the store.
    const current = attempt === 0 && known !== undefined ? known : await deps.store.get(id);
    if (current === undefined || isTerminal(current)) return { job: current, changed: false };
    const proposed = next(current);
    if (proposed === null) return { job: current, changed: false };
    // The TTL counts from the last change, so a finished job keeps its result for the full TTL. The change's own
    // timestamp is the base (not a second clock read), so expiresAt − finishedAt is exactly the TTL even under load.
    const changedAt =
      proposed.status === 'running'
        ? proposed.startedAt
        : proposed.status === 'queued'
          ? new Date()
          : proposed.finishedAt;
    const updated: Job = {
      ...proposed,
      version: current.version + 1,
      expiresAt: new Date(changedAt.getTime() + deps.ttlSeconds * 1000),
    };
    if (await deps.store.transition(id, current.status, updated)) {
      deps.logger.info(jobLogFields(updated), `job ${updated.status}`);
      deps.onChanged?.(updated);
      publishChange(deps, updated);
      return { job: updated, changed: true };
    }
  }
  return { job: await deps.store.get(id), changed: false };
}

/**
 * Announces a stored change without waiting for it: stored is what counts (watchers re-read the store when the bus
 * reconnects, and drop stale versions), and on Redis the publish rides the store's connection right behind the
 * write, in order, so waiting for its reply would only add a round trip to every change.
 */
export function publishChange(deps: Pick<TransitionDeps, 'events' | 'logger'>, job: Job): void {
  deps.events.publish(job).catch((error: unknown) => {
    deps.logger.warn({ err: error, jobId: job.id }, 'publishing a job change failed');
  });
}

export function jobLogFields(job: Job): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    jobId: job.id,
    task: job.task,
    model: job.model,
    status: job.status,
    images: job.imageCount,
    classes: job.classes.length,
    texts: job.texts.length,
  };
  // The same label as /metrics: which key's job this is, never the key.
  if (job.owner !== null) fields.key = ownerLabel(job.owner);
  switch (job.status) {
    case 'queued':
      break;
    case 'running':
      fields.queuedMs = job.startedAt.getTime() - job.createdAt.getTime();
      break;
    case 'complete':
    case 'failed':
    case 'cancelled':
      if (job.startedAt !== null) {
        fields.queuedMs = job.startedAt.getTime() - job.createdAt.getTime();
        fields.runMs = job.finishedAt.getTime() - job.startedAt.getTime();
      }
      fields.totalMs = job.finishedAt.getTime() - job.createdAt.getTime();
      if (job.status === 'failed') fields.error = job.error;
      break;
    default:
      throw new UnreachableCaseError(job);
  }
  return fields;
}
