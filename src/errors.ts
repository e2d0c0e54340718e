/**
 * The public error contract. Codes are API: GraphQL puts them in `extensions.code`,
 * REST maps them to HTTP statuses. Every error a user can cause is an AppError with one of these codes;
 * anything else is masked as INTERNAL_SERVER_ERROR at the API exits.
 */
export enum ErrorCode {
  /** The request is malformed or violates a documented limit. */
  BadUserInput = 'BAD_USER_INPUT',
  /** The job (or model) asked for does not exist (or has expired). */
  NotFound = 'NOT_FOUND',
  /** The inference queue is full; retry later. */
  Overloaded = 'OVERLOADED',
  /** The server is draining for shutdown and accepts no new work. */
  ShuttingDown = 'SHUTTING_DOWN',
  /** Missing or wrong API key. */
  Unauthenticated = 'UNAUTHENTICATED',
  /** A valid API key that may not do this (model control needs an ADMIN_API_KEYS key). */
  Forbidden = 'FORBIDDEN',
  /** A model could not be downloaded or loaded. */
  ModelUnavailable = 'MODEL_UNAVAILABLE',
  /** The model failed while running a job's images or prompts. */
  InferenceFailed = 'INFERENCE_FAILED',
  /** The request body is over the configured byte limit. */
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  /** The worker running the job stopped answering (crashed or cut off) more often than MAX_STALLED_COUNT allows. */
  WorkerLost = 'WORKER_LOST',
  /** A backing service (Redis) is unreachable; retry later. */
  ServiceUnavailable = 'SERVICE_UNAVAILABLE',
  /** Anything not caused by the user; details are only logged. */
  InternalServerError = 'INTERNAL_SERVER_ERROR',
}

const HTTP_STATUS: Record<ErrorCode, number> = {
  [ErrorCode.BadUserInput]: 422,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Overloaded]: 429,
  [ErrorCode.ShuttingDown]: 503,
  [ErrorCode.Unauthenticated]: 401,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.ModelUnavailable]: 503,
  [ErrorCode.InferenceFailed]: 500,
  [ErrorCode.PayloadTooLarge]: 413,
  [ErrorCode.WorkerLost]: 500,
  [ErrorCode.ServiceUnavailable]: 503,
  [ErrorCode.InternalServerError]: 500,
};

/** The HTTP status an error code maps to on the REST API. */
export function httpStatusOf(code: ErrorCode): number {
  return HTTP_STATUS[code];
}

export interface AppErrorOptions {
  /** The input field at fault (e.g. `images[3]`, `classes`), for BAD_USER_INPUT. */
  field?: string;
  cause?: unknown;
}

/** An error whose message is safe to show to the client that caused it. */
export class AppError extends Error {
  override name = 'AppError';
  readonly code: ErrorCode;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
  }

  get httpStatus(): number {
    return httpStatusOf(this.code);
  }
}

export function badUserInput(message: string, field?: string): AppError {
  return new AppError(ErrorCode.BadUserInput, message, field === undefined ? {} : { field });
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/** Thrown by `default:` branches of exhaustive switches over unions. */
export class UnreachableCaseError extends Error {
  constructor(value: never) {
    super(`Unreachable case: ${JSON.stringify(value)}`);
  }
}
