/**
 * The single error exit of the REST API: anything thrown or passed to `next(err)` under `/api` ends here and
 * leaves as JSON, never as an HTML page, a stack trace or a file path.
 *
 * Body shape: `{ "error": { "code", "message", "field"?, "reason"? }, "detail": message }`. `error` is ours (codes from
 * src/errors.ts); `detail` repeats the message because FES (feature-extraction-server, FastAPI) answers
 * every error as `{ "detail": "..." }`, and its clients print that field.
 *
 * Statuses: AppError → `httpStatusOf(code)` (422 bad input, 404 not found, 429 overloaded, 503 shutting down,
 * 413 too large …); express.json's own errors → 400 malformed JSON, 413 body over the limit, 415 unsupported
 * encoding; a path that is not valid percent-encoding → 400; anything else → 500 "Internal server error" with
 * the detail only logged.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { ErrorCode, httpStatusOf, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';

/** The JSON body of every REST error response. */
export interface RestErrorBody {
  error: {
    code: string;
    message: string;
    /** The request field at fault (`image`, `image[2]`, `classes`, `config`, `model`), when known. */
    field?: string;
    /** A finer code inside `code`, e.g. why an image URL was refused (`URL_FORBIDDEN`). */
    reason?: string;
  };
  /** The message again, where FES's clients look for it. */
  detail: string;
}

/** An error turned into what the client is told. */
export interface RestError {
  status: number;
  body: RestErrorBody;
  /** True when the client caused it (4xx); false when it is our fault and worth an error log. */
  clientError: boolean;
}

const INTERNAL_MESSAGE = 'Internal server error';

/**
 * Maps anything thrown to a status and body. Never throws; unknown errors become a masked 500.
 */
export function toRestError(error: unknown): RestError {
  if (isAppError(error)) {
    const status = httpStatusOf(error.code);
    const body = errorBody(error.code, error.message, error.field);
    if (error.refusal !== undefined) body.error.reason = error.refusal;
    return { status, body, clientError: status < 500 };
  }
  const bodyParserError = fromBodyParserError(error);
  if (bodyParserError !== undefined) return bodyParserError;
  // Express's router throws a URIError (status 400, not marked safe to show) for a path parameter that is not valid percent-encoding.
  if (error instanceof URIError)
    return clientError(400, ErrorCode.BadUserInput, 'Malformed percent-encoding in the URL path');
  return { status: 500, body: errorBody(ErrorCode.InternalServerError, INTERNAL_MESSAGE), clientError: false };
}

/** Builds the error body; `field` is left out when unknown. */
export function errorBody(code: string, message: string, field?: string): RestErrorBody {
  return { error: field === undefined ? { code, message } : { code, message, field }, detail: message };
}

/** Sends an error response; the one place error responses are written. */
export function sendRestError(res: Response, restError: RestError): void {
  if (restError.status === 429) res.setHeader('Retry-After', '1');
  res.setHeader('Cache-Control', 'no-store');
  res.status(restError.status).json(restError.body);
}

/**
 * The express error handler for the REST router. Client errors are logged at debug, server errors at error
 * with the full cause (server-side only).
 */
export function restErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    // Once the head is out we cannot change the status; let express close the connection.
    if (res.headersSent) {
      next(error);
      return;
    }
    const restError = toRestError(error);
    const context = {
      method: req.method,
      path: req.originalUrl,
      status: restError.status,
      code: restError.body.error.code,
    };
    if (restError.clientError)
      logger.debug({ ...context, message: restError.body.error.message }, 'REST request refused');
    // A deliberate refusal (SHUTTING_DOWN while draining) is no fault of ours: no error log, no stack.
    else if (isAppError(error))
      logger.info({ ...context, message: restError.body.error.message }, 'REST request refused');
    else logger.error({ ...context, err: error }, 'REST request failed');
    sendRestError(res, restError);
  };
}

/** Answers any request no REST route matched with a JSON 404, so `/api/*` never falls through to HTML. */
export function restNotFoundHandler(): RequestHandler {
  return (req, res) => {
    sendRestError(res, {
      status: 404,
      body: errorBody(ErrorCode.NotFound, `No route ${req.method} ${req.baseUrl}${req.path}`),
      clientError: true,
    });
  };
}

/**
 * The errors body-parser (express.json) raises carry `type`, a 4xx `status` and `expose: true`, which marks
 * their message as safe to show. Their default messages are terse, so the common ones are reworded.
 */
function fromBodyParserError(error: unknown): RestError | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const candidate = error as {
    status?: unknown;
    statusCode?: unknown;
    expose?: unknown;
    type?: unknown;
    message?: unknown;
  };
  const status = typeof candidate.status === 'number' ? candidate.status : candidate.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500 || candidate.expose !== true) return undefined;
  const message = typeof candidate.message === 'string' ? candidate.message : 'Bad request';
  switch (candidate.type) {
    case 'entity.parse.failed':
      return clientError(400, ErrorCode.BadUserInput, `Malformed JSON in request body: ${message}`);
    case 'entity.too.large': {
      const { limit } = error as { limit?: unknown };
      const limitText = typeof limit === 'number' ? ` of ${limit} bytes` : '';
      return clientError(413, ErrorCode.PayloadTooLarge, `Request body is over the size limit${limitText}`);
    }
    default:
      return clientError(status, status === 413 ? ErrorCode.PayloadTooLarge : ErrorCode.BadUserInput, message);
  }
}

function clientError(status: number, code: ErrorCode, message: string): RestError {
  return { status, body: errorBody(code, message), clientError: true };
}
