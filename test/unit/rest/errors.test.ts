import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode, badUserInput } from '../../../src/errors.js';
import { errorBody, toRestError } from '../../../src/rest/errors.js';

// Shaped like the errors body-parser (express.json) raises.
function bodyParserError(status: number, type: string, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { status, statusCode: status, expose: true, type, ...extra });
}

describe('toRestError', () => {
  it('should map every AppError code to its documented status, keeping message and field', () => {
    const cases: [ErrorCode, number][] = [
      [ErrorCode.BadUserInput, 422],
      [ErrorCode.NotFound, 404],
      [ErrorCode.Overloaded, 429],
      [ErrorCode.ShuttingDown, 503],
      [ErrorCode.Unauthenticated, 401],
      [ErrorCode.ModelUnavailable, 503],
      [ErrorCode.InferenceFailed, 500],
      [ErrorCode.PayloadTooLarge, 413],
    ];
    for (const [code, status] of cases) {
      const mapped = toRestError(new AppError(code, `because ${code}`));
      expect(mapped.status).toBe(status);
      expect(mapped.body).toEqual({ error: { code, message: `because ${code}` }, detail: `because ${code}` });
    }
    expect(toRestError(badUserInput('bad class', 'classes[2]')).body.error).toEqual({
      code: 'BAD_USER_INPUT',
      message: 'bad class',
      field: 'classes[2]',
    });
  });

  it('should turn a JSON parse failure into 400 with a clear message', () => {
    const mapped = toRestError(bodyParserError(400, 'entity.parse.failed', 'Unexpected end of JSON input'));
    expect(mapped).toEqual({
      status: 400,
      body: errorBody('BAD_USER_INPUT', 'Malformed JSON in request body: Unexpected end of JSON input'),
      clientError: true,
    });
  });

  it('should turn an oversized body into 413 PAYLOAD_TOO_LARGE naming the limit', () => {
    const mapped = toRestError(
      bodyParserError(413, 'entity.too.large', 'request entity too large', { limit: 1024, length: 5000 }),
    );
    expect(mapped.status).toBe(413);
    expect(mapped.body.error).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      message: 'Request body is over the size limit of 1024 bytes',
    });
  });

  it('should keep other exposed 4xx body errors with their own status', () => {
    const mapped = toRestError(bodyParserError(415, 'encoding.unsupported', 'unsupported content encoding "br"'));
    expect(mapped.status).toBe(415);
    expect(mapped.body.error.message).toBe('unsupported content encoding "br"');
  });

  it('should mask anything else as 500 Internal server error', () => {
    for (const error of [
      new Error('/home/x/secret.ts:10'),
      'a string',
      null,
      { status: 400, message: 'not exposed' },
      bodyParserError(500, 'x', 'boom'),
    ]) {
      const mapped = toRestError(error);
      expect(mapped.status).toBe(500);
      expect(mapped.clientError).toBe(false);
      expect(mapped.body).toEqual({
        error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' },
        detail: 'Internal server error',
      });
    }
  });
});
