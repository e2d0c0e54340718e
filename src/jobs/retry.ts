/**
 * Riding out a backend outage: a write a job's fate depends on (its final state, its reservation's release) is
 * retried while the backend answers SERVICE_UNAVAILABLE, instead of being given up after a few tries. Giving up
 * would leave the job RUNNING (or its reservation counted) until it expires; waiting keeps the queue's delivery
 * unacknowledged, so if this process dies meanwhile, stalled-job recovery hands the job on and the store's
 * compare-and-set decides.
 */
import { ErrorCode, isAppError } from '../errors.js';

export interface RetryOptions {
  /** Stops retrying (the job was cancelled, or the process shuts down): the last error is thrown. */
  signal?: AbortSignal | undefined;
  /** Called once per outage, with its first error, when the call starts being retried. */
  onOutage?: (error: unknown) => void;
}

/** First wait between tries, in ms: a blip of the connection is ridden out at once. */
const INITIAL_RETRY_DELAY_MS = 100;
/** Longest wait between tries, in ms: a write lands within this of the backend's return. */
const MAX_RETRY_DELAY_MS = 2000;

/** Whether an error means "the backend is unreachable, try again later" (as opposed to a bug or a refusal). */
export function isUnreachable(error: unknown): boolean {
  return isAppError(error) && error.code === ErrorCode.ServiceUnavailable;
}

/** Runs `call` until it settles with anything but SERVICE_UNAVAILABLE, or `signal` aborts. */
export async function retryWhileUnreachable<T>(call: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { signal, onOutage } = options;
  let delayMs = INITIAL_RETRY_DELAY_MS;
  let reported = false;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!isUnreachable(error) || signal?.aborted === true) throw error;
      if (!reported) onOutage?.(error);
      reported = true;
      const waited = await sleep(delayMs, signal);
      if (!waited) throw error;
      delayMs = Math.min(delayMs * 2, MAX_RETRY_DELAY_MS);
    }
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve(false);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
