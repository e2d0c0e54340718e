/**
 * The storage boundary: a Job to JSON text and back. Dates travel as ISO strings and are revived by
 * name, so a job read from Redis is indistinguishable from the one that was stored.
 */
import type { Job } from './types.js';

const DATE_FIELDS = ['createdAt', 'expiresAt', 'startedAt', 'finishedAt'] as const;

export function jobToJSON(job: Job): string {
  return JSON.stringify(job);
}

/** Throws on text that is not a stored job (a foreign key in the same Redis database). */
export function jobFromJSON(text: string): Job {
  const raw = JSON.parse(text) as Record<string, unknown>;
  if (typeof raw.id !== 'string' || typeof raw.status !== 'string' || typeof raw.version !== 'number') {
    throw new Error('not a stored job');
  }
  // Stored before jobs had owners: nobody's (only admins see them once keys are configured).
  if (typeof raw.owner !== 'string') raw.owner = null;
  for (const field of DATE_FIELDS) {
    const value = raw[field];
    if (typeof value === 'string') raw[field] = new Date(value);
  }
  return raw as unknown as Job;
}
