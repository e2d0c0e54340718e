/**
 * Bounds on a GraphQL document before and while it is parsed (MAX_DOCUMENT_BYTES, MAX_DOCUMENT_TOKENS), on every
 * transport: Apollo over HTTP (POST, GET, multipart) and graphql-ws. Depth, alias and cost limits (limits.ts) only
 * run on a parsed document, and graphql-js builds a token object and syntax-tree nodes for every token it reads:
 * unbounded, a 16 MB document of `a a a …` takes gigabytes, more than the heap has. The size is checked before
 * parsing, in constant time for most documents; the token count stops the parser itself (graphql-js's
 * `maxTokens`), so a dense document within the size costs at most that many tokens. Comments are not tokens: the
 * size bounds them.
 */
import type { RequestHandler } from 'express';
import { GraphQLError, parse, type DocumentNode } from 'graphql';

export interface DocumentLimits {
  /** Largest document, in UTF-8 bytes (MAX_DOCUMENT_BYTES). */
  maxBytes: number;
  /** Most tokens the parser reads (MAX_DOCUMENT_TOKENS). */
  maxTokens: number;
}

/** The code of the size refusal; the token limit is a parse failure (GRAPHQL_PARSE_FAILED) as graphql-js reports it. */
const DOCUMENT_TOO_LARGE_CODE = 'BAD_REQUEST';

/**
 * True when `query` is over `maxBytes` in UTF-8. A UTF-16 code unit is 1 to 3 UTF-8 bytes, so only documents
 * between a third of the limit and the limit are measured.
 */
function overByteLimit(query: string, maxBytes: number): boolean {
  if (query.length > maxBytes) return true;
  if (query.length * 3 <= maxBytes) return false;
  return Buffer.byteLength(query, 'utf8') > maxBytes;
}

function tooLargeMessage(limits: DocumentLimits): string {
  return `The GraphQL document is larger than the limit of ${limits.maxBytes} bytes (MAX_DOCUMENT_BYTES); send images and long texts as variables`;
}

/** The refusal of a document over MAX_DOCUMENT_BYTES, or null; anything but a string is left to the transport. */
export function documentSizeError(query: unknown, limits: DocumentLimits): GraphQLError | null {
  if (typeof query !== 'string' || !overByteLimit(query, limits.maxBytes)) return null;
  return new GraphQLError(tooLargeMessage(limits), { extensions: { code: DOCUMENT_TOO_LARGE_CODE } });
}

/** graphql-js 16 words it "more that N tokens"; either spelling is recognised. */
const TOKEN_LIMIT_MESSAGE = /^Syntax Error: Document contains more tha[nt] (\d+) tokens\. Parsing aborted\.$/;

/** graphql-js's message for the token limit, with the setting's name added; other messages unchanged. */
export function withTokenLimitSetting(message: string): string {
  const match = TOKEN_LIMIT_MESSAGE.exec(message);
  return match === null
    ? message
    : `Syntax Error: Document contains more than ${match[1]} tokens (MAX_DOCUMENT_TOKENS). Parsing aborted.`;
}

/** Parses within both limits; throws the size refusal or graphql-js's GraphQLError (syntax, token limit named). */
export function parseDocument(query: string, limits: DocumentLimits): DocumentNode {
  const tooLarge = documentSizeError(query, limits);
  if (tooLarge !== null) throw tooLarge;
  try {
    return parse(query, { maxTokens: limits.maxTokens });
  } catch (error) {
    if (error instanceof GraphQLError) {
      throw new GraphQLError(withTokenLimitSetting(error.message), {
        source: error.source ?? null,
        positions: error.positions ?? null,
      });
    }
    throw error;
  }
}

/**
 * A request refused for its document's size, in the shape of body-parser's errors (`type`, `status`, `expose`),
 * which the server's GraphQL body-error handler answers: 400 BAD_REQUEST with this message.
 */
export class DocumentTooLargeError extends Error {
  override name = 'DocumentTooLargeError';
  readonly type = 'graphql.document.too.large';
  readonly status = 400;
  readonly expose = true;
}

/**
 * The HTTP side of the size limit, mounted after the body parsers and before Apollo: the `query` of a POST (JSON
 * or multipart `operations`) or of a GET. Apollo hashes and parses a document before any plugin hook may refuse it
 * (a throw from its hooks is an internal error), so the check is made here. The token limit is Apollo's
 * `parseOptions.maxTokens`.
 */
export function documentSizeMiddleware(limits: DocumentLimits): RequestHandler {
  return (req, _res, next) => {
    const body: unknown = req.body;
    const query =
      req.method === 'GET'
        ? req.query.query
        : typeof body === 'object' && body !== null
          ? (body as { query?: unknown }).query
          : undefined;
    if (documentSizeError(query, limits) !== null) return next(new DocumentTooLargeError(tooLargeMessage(limits)));
    next();
  };
}
