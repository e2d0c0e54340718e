/**
 * The single error exit of the OpenAI-compatible routes: everything thrown under `/v1` leaves as OpenAI's error
 * body, `{"error": {"message", "type", "param", "code"}}`, which its SDKs read (and retry 429 and 5xx on).
 *
 * | cause                                   | status | type                    | code                                  |
 * | --------------------------------------- | -----: | ----------------------- | ------------------------------------- |
 * | bad input (BAD_USER_INPUT), bad JSON     |    400 | invalid_request_error   | the reason (`URL_FORBIDDEN`, …) or null |
 * | no or wrong API key                      |    401 | invalid_request_error   | invalid_api_key                        |
 * | unknown model                            |    404 | invalid_request_error   | model_not_found                        |
 * | body over MAX_BODY_BYTES                 |    413 | invalid_request_error   | PAYLOAD_TOO_LARGE                      |
 * | OVERLOADED                               |    429 | rate_limit_error        | rate_limit_exceeded (and Retry-After)  |
 * | shutting down, Redis or model unavailable |    503 | server_error            | the ErrorCode                          |
 * | anything else                            |    500 | server_error            | INTERNAL_SERVER_ERROR (detail logged)  |
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { ErrorCode, httpStatusOf, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface OpenAiError {
  status: number;
  body: OpenAiErrorBody;
}

/** The error a model name that is not configured gets: 404 `model_not_found`, as OpenAI answers it. */
export const MODEL_NOT_FOUND = 'model_not_found';

function typeOf(status: number): string {
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

export function openAiError(status: number, message: string, param: string | null, code: string | null): OpenAiError {
  return { status, body: { error: { message, type: typeOf(status), param, code } } };
}

/** Maps anything thrown to OpenAI's shape. Never throws; unknown errors become a masked 500. */
export function toOpenAiError(error: unknown): OpenAiError {
  if (isAppError(error)) {
    const param = error.field ?? null;
    switch (error.code) {
      case ErrorCode.BadUserInput:
        return openAiError(400, error.message, param, error.refusal ?? null);
      case ErrorCode.NotFound:
        return openAiError(404, error.message, param, param === 'model' ? MODEL_NOT_FOUND : ErrorCode.NotFound);
      case ErrorCode.Unauthenticated:
        return openAiError(401, error.message, null, 'invalid_api_key');
      case ErrorCode.Overloaded:
        return openAiError(429, error.message, null, 'rate_limit_exceeded');
      default:
        return openAiError(httpStatusOf(error.code), error.message, param, error.code);
    }
  }
  const bodyError = error as { type?: unknown; status?: unknown; expose?: unknown; message?: unknown } | null;
  if (bodyError?.type === 'entity.too.large')
    return openAiError(
      413,
      'The request body is over the size limit (MAX_BODY_BYTES)',
      null,
      ErrorCode.PayloadTooLarge,
    );
  if (bodyError?.type === 'entity.too.complex')
    return openAiError(413, String(bodyError.message), null, ErrorCode.PayloadTooLarge);
  if (bodyError?.type === 'entity.parse.failed')
    return openAiError(400, 'The request body is not valid JSON', null, null);
  if (
    bodyError?.expose === true &&
    typeof bodyError.status === 'number' &&
    bodyError.status >= 400 &&
    bodyError.status < 500
  ) {
    return openAiError(
      bodyError.status,
      typeof bodyError.message === 'string' ? bodyError.message : 'Bad request',
      null,
      null,
    );
  }
  return openAiError(500, 'Internal server error', null, ErrorCode.InternalServerError);
}

/** Writes an error answer; the one place they are written. */
export function sendOpenAiError(res: Response, error: OpenAiError): void {
  if (error.status === 429) res.setHeader('Retry-After', '1');
  res.setHeader('Cache-Control', 'no-store');
  res.status(error.status).json(error.body);
}

/** The express error handler of the `/v1` router: client errors logged at debug, ours at error (detail server-side only). */
export function openAiErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const answer = toOpenAiError(error);
    const context = { method: req.method, path: req.originalUrl, status: answer.status, code: answer.body.error.code };
    if (answer.status < 500) logger.debug({ ...context, message: answer.body.error.message }, 'OpenAI request refused');
    else if (isAppError(error))
      logger.info({ ...context, message: answer.body.error.message }, 'OpenAI request refused');
    else logger.error({ ...context, err: error }, 'OpenAI request failed');
    sendOpenAiError(res, answer);
  };
}

/** Any `/v1` path without a route: a 404 in OpenAI's shape. */
export function openAiNotFoundHandler(): RequestHandler {
  return (req, res) => {
    sendOpenAiError(
      res,
      openAiError(
        404,
        `No route ${req.method} ${req.baseUrl}${req.path}; this server offers POST /v1/embeddings and GET /v1/models`,
        null,
        'unknown_url',
      ),
    );
  };
}
