import { GraphQLError } from 'graphql';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode, badUserInput } from '../../../src/errors.js';
import { formatGraphqlError } from '../../../src/graphql/formatError.js';

function capture(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
  return { logger, lines };
}

function resolverError(original: Error): GraphQLError {
  return new GraphQLError(original.message, { path: ['classify'], originalError: original });
}

describe('formatGraphqlError', () => {
  it('should pass an AppError through with its code and field', () => {
    const { logger } = capture();
    const error = resolverError(badUserInput('classes: expected at least one class, got none', 'classes'));
    expect(formatGraphqlError(error.toJSON(), error, logger)).toEqual({
      message: 'classes: expected at least one class, got none',
      path: ['classify'],
      extensions: { code: 'BAD_USER_INPUT', field: 'classes' },
    });
    const overloaded = resolverError(new AppError(ErrorCode.Overloaded, 'busy'));
    expect(formatGraphqlError(overloaded.toJSON(), overloaded, logger).extensions).toEqual({ code: 'OVERLOADED' });
  });

  it('should mask unknown errors and log the detail server-side only', () => {
    const { logger, lines } = capture();
    const error = resolverError(new Error('ENOENT: /secret/path/model.onnx'));
    const formatted = formatGraphqlError(
      { ...error.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR', stacktrace: ['at x (/secret/path.ts:1)'] } },
      error,
      logger,
    );
    expect(formatted).toEqual({
      message: 'Internal server error',
      path: ['classify'],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(JSON.stringify(formatted)).not.toContain('/secret');
    expect(lines.join('')).toContain('/secret/path/model.onnx');
  });

  it('should keep request errors with their code and drop other extensions', () => {
    const { logger } = capture();
    const validation = new GraphQLError('Cannot query field "nope" on type "Query".', {
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED', stacktrace: ['x'] },
    });
    expect(formatGraphqlError(validation.toJSON(), validation, logger)).toEqual({
      message: 'Cannot query field "nope" on type "Query".',
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    });
    // graphql-ws execution errors carry no code: they are request errors.
    const coercion = new GraphQLError('Variable "$id" of required type "ID!" was not provided.');
    expect(formatGraphqlError(coercion.toJSON(), coercion, logger).extensions).toEqual({ code: 'BAD_USER_INPUT' });
  });

  it('should mask a GraphQLError that claims an internal code', () => {
    const { logger } = capture();
    const error = new GraphQLError('detail', { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(formatGraphqlError(error.toJSON(), error, logger).message).toBe('Internal server error');
  });
});
