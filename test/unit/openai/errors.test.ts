import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode, ImageUrlRefusal, badUserInput } from '../../../src/errors.js';
import { toOpenAiError } from '../../../src/openai/errors.js';
import { fromBase64Float32, toBase64Float32 } from '../../../src/openai/response.js';

describe('toOpenAiError', () => {
  it.each([
    [badUserInput('input[3]: not valid base64', 'input[3]'), 400, 'invalid_request_error', 'input[3]', null],
    [
      new AppError(ErrorCode.BadUserInput, 'input[0]: forbidden', {
        field: 'input[0]',
        refusal: ImageUrlRefusal.Forbidden,
      }),
      400,
      'invalid_request_error',
      'input[0]',
      'URL_FORBIDDEN',
    ],
    [
      new AppError(ErrorCode.NotFound, 'no such model', { field: 'model' }),
      404,
      'invalid_request_error',
      'model',
      'model_not_found',
    ],
    [new AppError(ErrorCode.Unauthenticated, 'key'), 401, 'invalid_request_error', null, 'invalid_api_key'],
    [new AppError(ErrorCode.Overloaded, 'busy'), 429, 'rate_limit_error', null, 'rate_limit_exceeded'],
    [new AppError(ErrorCode.ShuttingDown, 'bye'), 503, 'server_error', null, 'SHUTTING_DOWN'],
    [new AppError(ErrorCode.ModelUnavailable, 'gone'), 503, 'server_error', null, 'MODEL_UNAVAILABLE'],
    [{ type: 'entity.too.large', status: 413, expose: true }, 413, 'invalid_request_error', null, 'PAYLOAD_TOO_LARGE'],
    [{ type: 'entity.parse.failed', status: 400, expose: true }, 400, 'invalid_request_error', null, null],
  ])('should answer %o as %i %s (param %s, code %s)', (error, status, type, param, code) => {
    const answer = toOpenAiError(error);
    expect(answer.status).toBe(status);
    expect(answer.body.error).toMatchObject({ type, param, code });
    expect(typeof answer.body.error.message).toBe('string');
  });

  it('should mask anything else as a 500 without its detail', () => {
    const answer = toOpenAiError(new Error('/secret/path exploded'));
    expect(answer).toEqual({
      status: 500,
      body: {
        error: { message: 'Internal server error', type: 'server_error', param: null, code: 'INTERNAL_SERVER_ERROR' },
      },
    });
  });
});

describe('base64 float32', () => {
  it('should round-trip float32 values exactly, little-endian', () => {
    const vector = Array.from(new Float32Array([0.1, -0.25, 3.5e-8, 1]));
    const encoded = toBase64Float32(vector);
    expect(Buffer.from(encoded, 'base64').readFloatLE(4)).toBe(-0.25);
    expect(fromBase64Float32(encoded)).toEqual(vector);
  });
});
