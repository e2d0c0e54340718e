/**
 * The bound on what one GraphQL answer may carry (MAX_RESPONSE_BYTES). The complexity limit prices a document before
 * it runs, but it cannot know how long a job's texts or vectors are; this is the run-time half. Every field that
 * returns job data of unbounded size (texts, classes, probabilities, vectors, labels) charges its estimated JSON size
 * to the operation's budget before returning it, and the first field over the budget throws RESPONSE_TOO_LARGE.
 * The transports then send that one error instead of the partial answer (apollo.ts, subscriptions.ts), so an
 * answer over the budget is never serialised.
 *
 * Estimates count characters and numbers, not exact UTF-8 bytes: a string costs its length plus its quotes and
 * comma, a number what a float32 value prints as in JSON.
 */
import { AppError, ErrorCode } from '../errors.js';

/** `-0.012345678901234567,`: the longest a float64 holding a float32 value usually prints. */
const NUMBER_BYTES = 22;
/** Quotes and comma around a string in a list. */
const STRING_FRAME_BYTES = 3;

export function stringBytes(text: string): number {
  return text.length + STRING_FRAME_BYTES;
}

export function stringListBytes(texts: readonly string[]): number {
  let bytes = 2;
  for (const text of texts) bytes += stringBytes(text);
  return bytes;
}

export function numberListBytes(count: number): number {
  return 2 + count * NUMBER_BYTES;
}

export class ResponseBudget {
  readonly maxBytes: number;
  #spent = 0;
  #refusal: AppError | null = null;

  constructor(maxBytes: number) {
    if (!(maxBytes > 0))
      throw new TypeError(`ResponseBudget: expected maxBytes to be a positive number, got ${maxBytes}`);
    this.maxBytes = maxBytes;
  }

  /** The error the answer must be replaced with, once a field passed the budget; null while within it. */
  get refusal(): AppError | null {
    return this.#refusal;
  }

  /**
   * Adds `bytes` for `field` to what the answer will carry. Throws AppError RESPONSE_TOO_LARGE when that passes the
   * budget, and for every charge after the first refusal (the answer is refused whole).
   */
  charge(bytes: number, field: string): void {
    if (this.#refusal !== null) throw this.#refusal;
    this.#spent += bytes;
    if (this.#spent <= this.maxBytes) return;
    this.#refusal = new AppError(
      ErrorCode.ResponseTooLarge,
      `The answer would be larger than ${this.maxBytes} bytes (MAX_RESPONSE_BYTES; reached at ${field}): ask for fewer jobs (a smaller \`first\`) or fewer fields`,
    );
    throw this.#refusal;
  }

  /** Starts over: a subscription answers each event on its own. */
  reset(): void {
    this.#spent = 0;
    this.#refusal = null;
  }
}
