/**
 * Who asks: every read and write of a job names its caller, and a job is answered only to its owner (the API key
 * that created it) and to admins. Another key's job is answered exactly like one that does not exist, so ids cannot
 * be probed. The caller carries a keyed hash of its API key (http/auth.ts makes it), never the key.
 */
import { AppError, ErrorCode } from '../errors.js';
import type { Job } from './types.js';

export interface Caller {
  /** The keyed hash of the caller's API key, recorded on the jobs it creates; null when authentication is off. */
  readonly owner: string | null;
  /** Sees and may cancel every job: an admin key, or anyone when authentication is off. */
  readonly seesAll: boolean;
  /** May take operator actions: an admin key, or anyone when authentication is off. */
  readonly operator: boolean;
}

/** The caller when no API keys are configured: one shared client that sees and may do everything. */
export const OPEN_CALLER: Caller = Object.freeze({ owner: null, seesAll: true, operator: true });

/** Whether `caller` may see `job` at all; when not, the job is answered as unknown. */
export function canAccess(caller: Caller, job: Job): boolean {
  return caller.seesAll || (caller.owner !== null && job.owner === caller.owner);
}

/** The job when `caller` may see it, else undefined (the same answer as an unknown id). */
export function visibleTo(caller: Caller, job: Job | undefined): Job | undefined {
  return job !== undefined && canAccess(caller, job) ? job : undefined;
}

/** Throws FORBIDDEN unless `caller` may take operator actions (`action` says which, for the message). */
export function assertOperator(caller: Caller, action: string): void {
  if (!caller.operator) {
    throw new AppError(
      ErrorCode.Forbidden,
      `${action} needs an admin API key, one listed in ADMIN_API_KEYS (while it is empty, no key may)`,
    );
  }
}

/** Hex digits of the owner hash in a metrics label: enough to tell keys apart, too few to stand for the hash. */
const OWNER_LABEL_LENGTH = 12;

/** The fingerprint `/metrics` labels a key's queued jobs with: a prefix of the keyed hash, never the key. */
export function ownerLabel(owner: string): string {
  return owner.slice(0, OWNER_LABEL_LENGTH);
}
