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
  /** The request's `Host` is not one the server answers to (ALLOWED_HOSTS). */
  ForbiddenHost = 'FORBIDDEN_HOST',
  /** A valid API key that may not do this (an operator action needs an admin key). */
  Forbidden = 'FORBIDDEN',
  /** A model could not be downloaded or loaded. */
  ModelUnavailable = 'MODEL_UNAVAILABLE',
  /** The model failed while running a job's images or prompts. */
  InferenceFailed = 'INFERENCE_FAILED',
  /** The request body is over the configured byte limit. */
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  /** The answer would be over the configured byte limit (MAX_RESPONSE_BYTES): ask for less at once. */
  ResponseTooLarge = 'RESPONSE_TOO_LARGE',
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
  [ErrorCode.ForbiddenHost]: 403,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.ModelUnavailable]: 503,
  [ErrorCode.InferenceFailed]: 500,
  [ErrorCode.PayloadTooLarge]: 413,
  [ErrorCode.ResponseTooLarge]: 400,
  [ErrorCode.WorkerLost]: 500,
  [ErrorCode.ServiceUnavailable]: 503,
  [ErrorCode.InternalServerError]: 500,
};

/** The HTTP status an error code maps to on the REST API. */
export function httpStatusOf(code: ErrorCode): number {
  return HTTP_STATUS[code];
}

/**
 * Why an image URL was refused: a finer code inside BAD_USER_INPUT (GraphQL `extensions.reason`, REST
 * `error.reason`, OpenAI `error.code`). Each names the rule of the URL guard (src/imageUrls/) that refused it.
 */
export enum ImageUrlRefusal {
  /** IMAGE_URLS=off: this server takes no image URLs. */
  Off = 'URL_IMAGES_OFF',
  /** Not a well-formed absolute URL. */
  Malformed = 'URL_MALFORMED',
  /** A scheme other than http or https. */
  Scheme = 'URL_SCHEME',
  /** A user name or password in the URL. */
  Credentials = 'URL_CREDENTIALS',
  /** The destination (or one of the addresses its name resolves to) is not a public address, nor in IMAGE_URL_ALLOWED_NETWORKS. */
  Forbidden = 'URL_FORBIDDEN',
  /** The name does not resolve, or the server could not be reached. */
  Unreachable = 'URL_UNREACHABLE',
  /** More redirects than IMAGE_URL_MAX_REDIRECTS, or a redirect without a usable Location. */
  Redirects = 'URL_REDIRECTS',
  /** The body is over MAX_IMAGE_BYTES. */
  TooLarge = 'URL_TOO_LARGE',
  /** The whole fetch took longer than IMAGE_URL_TIMEOUT_MS. */
  Timeout = 'URL_TIMEOUT',
  /** The server answered with a status other than 2xx. */
  HttpStatus = 'URL_HTTP_STATUS',
}

export interface AppErrorOptions {
  /** The input field at fault (e.g. `images[3]`, `classes`), for BAD_USER_INPUT. */
  field?: string;
  /** A finer code inside `code` (an {@link ImageUrlRefusal}); sent as `reason` (GraphQL extensions, REST, OpenAI `code`). */
  refusal?: string;
  cause?: unknown;
}

/** An error whose message is safe to show to the client that caused it. */
export class AppError extends Error {
  override name = 'AppError';
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly refusal: string | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
    this.refusal = options.refusal;
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
