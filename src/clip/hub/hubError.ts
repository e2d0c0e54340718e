/** The hub's one error class, and how an HTTP status or a network failure becomes a message naming file, URL and why. */
import { AppError, ErrorCode } from '../../errors.js';

/** Why a hub file could not be had; `HubError.reason`. */
export type HubErrorReason = 'unauthorized' | 'not-found' | 'network' | 'http' | 'integrity' | 'offline-miss';

/** A file that could not be downloaded: MODEL_UNAVAILABLE, with the file, URL and reason for callers that branch on it. */
export class HubError extends AppError {
  override name = 'HubError';

  constructor(
    readonly reason: HubErrorReason,
    readonly file: string,
    readonly url: string | undefined,
    message: string,
    readonly retryable = false,
    cause?: unknown,
  ) {
    super(ErrorCode.ModelUnavailable, message, cause === undefined ? {} : { cause });
  }
}

/** What to do about a 401 or 403: give a token, or one with access. */
export function tokenHint(hasToken: boolean): string {
  return hasToken ? 'the HF_TOKEN given has no access to it' : 'set HF_TOKEN';
}

/**
 * The error for a `resolve` answer that is no success: gated, not found, or an HTTP failure (retryable when 5xx, 408
 * or 429). `repoRevision` is `owner/name@revision`.
 */
export function statusError(
  repoRevision: string,
  hasToken: boolean,
  file: string,
  url: string,
  response: { status: number; statusText: string },
): HubError {
  const { status, statusText } = response;
  if (status === 401 || status === 403) {
    return new HubError(
      'unauthorized',
      file,
      url,
      `${repoRevision} is gated or private (HTTP ${status} for ${file} at ${url}): ${tokenHint(hasToken)}`,
    );
  }
  if (status === 404) {
    return new HubError(
      'not-found',
      file,
      url,
      `${file} of ${repoRevision} not found at ${url} (check the repo id, revision and precision)`,
    );
  }
  const retryable = status >= 500 || status === 429 || status === 408;
  return new HubError(
    'http',
    file,
    url,
    `cannot download ${file} from ${url}: HTTP ${status} ${statusText}`.trimEnd(),
    retryable,
  );
}

/** A failure's message with its cause's code and message (undici hides the socket error there). */
export function causeText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code === undefined ? `${error.message}: ${cause.message}` : `${error.message}: ${code} ${cause.message}`;
  }
  return error.message;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
