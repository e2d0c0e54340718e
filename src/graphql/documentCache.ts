/**
 * Parsed documents kept for reuse, each cache bounded by the memory its documents keep alive.
 *
 * - {@link validatedDocuments}: the websocket transport's. graphql-ws parses and validates every `subscribe` message,
 *   and a client following its jobs sends the same subscription text each time with only the variables changed:
 *   profiled at 16 clients, that parse + validate was a fifth of the event loop's work per job. Only documents that
 *   passed validation are kept, so a cached entry means "valid for this schema and these rules" (both fixed for the
 *   server's life); refusals are worked out again each time. graphql-js documents are never mutated by execution,
 *   so one can serve every connection.
 * - {@link createDocumentStore}: Apollo's over HTTP (its `documentStore`). Apollo's own weighs a document by its
 *   JSON, where a comment is nothing and each location is `{start,end}`; but every node's location keeps the whole
 *   source text and the token list alive: documents with 2 MB comments would be weighed at a few hundred bytes
 *   each, and the heap would grow with every distinct one.
 *
 * Both weigh an entry by {@link retainedBytes}. The cost check is not done here: it needs the variables (`first`,
 * `k`), and `complexityError` (limits.ts) keeps its outcomes per document object, which these caches make the same
 * for the same text.
 */
import type { DocumentStore } from '@apollo/server';
import { GraphQLError, validate, type DocumentNode, type GraphQLSchema, type ValidationRule } from 'graphql';
import { LRUCache } from 'lru-cache';
import { parseDocument, type DocumentLimits } from './documentLimits.js';

export type ValidatedDocument = { ok: true; document: DocumentNode } | { ok: false; errors: readonly GraphQLError[] };

/**
 * Heap bytes per byte of a document's JSON, for its syntax tree, locations and tokens: measured 3.9–4.4 on small
 * operations, the introspection query and dense documents (node --expose-gc, heapUsed per parsed document).
 */
const HEAP_BYTES_PER_JSON_BYTE = 5;

/**
 * An upper estimate of the heap a parsed document keeps alive: its syntax tree (by its JSON) and its source text,
 * which every location references (2 bytes per UTF-16 unit, comments included).
 */
export function retainedBytes(document: DocumentNode): number {
  const sourceLength = document.loc?.source.body.length ?? 0;
  return Math.max(1, HEAP_BYTES_PER_JSON_BYTE * JSON.stringify(document).length + 2 * sourceLength);
}

function documentLru(maxBytes: number): LRUCache<string, DocumentNode> | undefined {
  // A document heavier than the whole cache is not kept (lru-cache refuses it): it is parsed again if sent again.
  return maxBytes > 0
    ? new LRUCache<string, DocumentNode>({ maxSize: maxBytes, sizeCalculation: retainedBytes })
    : undefined;
}

/** Apollo's document store (ApolloServer's `documentStore`), bounded by {@link retainedBytes}; null when `maxBytes` is 0. */
export function createDocumentStore(maxBytes: number): DocumentStore | null {
  const cache = documentLru(maxBytes);
  if (cache === undefined) return null;
  return {
    get: async (key) => cache.get(key),
    set: async (key, document) => {
      cache.set(key, document);
    },
    delete: async (key) => cache.delete(key),
  };
}

export interface DocumentCacheOptions {
  schema: GraphQLSchema;
  rules: readonly ValidationRule[];
  /** Size and token bounds of a document (MAX_DOCUMENT_BYTES, MAX_DOCUMENT_TOKENS). */
  limits: DocumentLimits;
  /** The most the kept documents may weigh, by {@link retainedBytes}; 0: none kept. */
  maxBytes: number;
}

/** `(query) => validated document or errors`, parsing (within the document limits) and validating each distinct query text once. */
export function validatedDocuments(options: DocumentCacheOptions): (query: string) => ValidatedDocument {
  const { schema, rules, limits } = options;
  const cache = documentLru(options.maxBytes);
  return (query) => {
    const cached = cache?.get(query);
    if (cached !== undefined) return { ok: true, document: cached };
    let document: DocumentNode;
    try {
      document = parseDocument(query, limits);
    } catch (error) {
      if (error instanceof GraphQLError && typeof error.extensions.code === 'string')
        return { ok: false, errors: [error] };
      const message = error instanceof GraphQLError ? error.message : 'Syntax error';
      return { ok: false, errors: [new GraphQLError(message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })] };
    }
    const errors = validate(schema, document, rules);
    if (errors.length > 0) return { ok: false, errors };
    cache?.set(query, document);
    return { ok: true, document };
  };
}
