/**
 * The single error exit of the GraphQL API (HTTP through Apollo's `formatError`, websocket through
 * graphql-ws `onNext`/`onError`, and `graphqlErrorBody` for the refusals answered before or instead of an
 * execution: a missing API key, an unreadable body, a foreign host, MAX_RESPONSE_BYTES). Clients see:
 * - an AppError: its message, `extensions.code` and, when set, `extensions.field` and `extensions.reason`;
 * - a GraphQL request error (parse, validation, variable coercion, limits): its message and code;
 * - anything else: "Internal server error" / INTERNAL_SERVER_ERROR; the detail is logged, never sent.
 * Never stack traces, file paths or other extensions. This function does not throw.
 */
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ErrorCode, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { withTokenLimitSetting } from './documentLimits.js';

/** Codes a GraphQLError may carry to the client as they are; anything else is masked. */
const REQUEST_ERROR_CODES: ReadonlySet<string> = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  ...Object.values(ErrorCode).filter((code) => code !== ErrorCode.InternalServerError),
]);

const MASKED_MESSAGE = 'Internal server error';

function pick(
  formatted: GraphQLFormattedError,
  message: string,
  extensions: Record<string, unknown>,
): GraphQLFormattedError {
  return {
    message,
    ...(formatted.locations === undefined ? {} : { locations: formatted.locations }),
    ...(formatted.path === undefined ? {} : { path: formatted.path }),
    extensions,
  };
}

/**
 * Formats one error for a client.
 * @param formatted what graphql-js/Apollo would send
 * @param error the error behind it (a GraphQLError, possibly wrapping what a resolver threw)
 * @param defaultCode the code of a request error that has none (graphql-ws execution errors): BAD_USER_INPUT
 */
export function formatGraphqlError(
  formatted: GraphQLFormattedError,
  error: unknown,
  logger: Logger,
  defaultCode: string = 'BAD_USER_INPUT',
): GraphQLFormattedError {
  try {
    const original = unwrapResolverError(error);
    if (isAppError(original)) {
      return pick(formatted, original.message, {
        code: original.code,
        ...(original.field === undefined ? {} : { field: original.field }),
        ...(original.refusal === undefined ? {} : { reason: original.refusal }),
      });
    }
    if (error instanceof GraphQLError) {
      const code = typeof error.extensions.code === 'string' ? error.extensions.code : undefined;
      // A GraphQLError that wraps something else is a resolver or scalar failure: not a request error
      // unless it says so with a code (Apollo marks variable-coercion failures BAD_USER_INPUT).
      const wrapsUnknown = error.originalError !== undefined && !(error.originalError instanceof GraphQLError);
      // Apollo parses with graphql-js's token limit, whose message does not name the setting.
      if (code === 'GRAPHQL_PARSE_FAILED') return pick(formatted, withTokenLimitSetting(formatted.message), { code });
      if (code !== undefined && REQUEST_ERROR_CODES.has(code)) return pick(formatted, formatted.message, { code });
      if (code === undefined && !wrapsUnknown) return pick(formatted, formatted.message, { code: defaultCode });
    }
    logger.error({ err: original, path: formatted.path }, 'GraphQL operation failed with an unexpected error');
  } catch (formatFailure) {
    logger.error({ err: formatFailure }, 'formatting a GraphQL error failed');
  }
  return pick(formatted, MASKED_MESSAGE, { code: ErrorCode.InternalServerError });
}

/** A GraphQL answer that is one refusal and no data. */
export interface GraphqlErrorBody {
  errors: [{ message: string; extensions: { code: string } }];
}

/** The body of a refusal answered before or instead of an execution: its message and its code, nothing else. */
export function graphqlErrorBody(message: string, code: string): GraphqlErrorBody {
  return { errors: [{ message, extensions: { code } }] };
}
