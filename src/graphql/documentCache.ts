/**
 * Parsed and validated documents of the websocket transport, kept for reuse. graphql-ws parses and validates every
 * `subscribe` message, and a client following its jobs sends the same subscription text each time with only the
 * variables changed: profiled at 16 clients, that parse + validate was a fifth of the event loop's work per job
 * (issue 12). Apollo keeps such a cache for HTTP (its document store); this is the same for the websocket.
 *
 * Only documents that passed validation are kept, so a cached entry means "valid for this schema and these rules"
 * (both fixed for the server's life); refusals are worked out again each time. graphql-js documents are never
 * mutated by execution, so one can serve every connection. The cost check is not done here: it needs the variables
 * (`first`, `k`), and `complexityError` (limits.ts) keeps its outcomes per document object, which this cache makes
 * the same for the same text.
 */
import { GraphQLError, parse, validate, type DocumentNode, type GraphQLSchema, type ValidationRule } from 'graphql';
import { LRUCache } from 'lru-cache';

export type ValidatedDocument = { ok: true; document: DocumentNode } | { ok: false; errors: readonly GraphQLError[] };

export interface DocumentCacheOptions {
  schema: GraphQLSchema;
  rules: readonly ValidationRule[];
  /** The most the kept documents may weigh, by the size of their JSON (as Apollo weighs its document store); 0: none kept. */
  maxBytes: number;
}

/** `(query) => validated document or errors`, parsing and validating each distinct query text once. */
export function validatedDocuments(options: DocumentCacheOptions): (query: string) => ValidatedDocument {
  const { schema, rules, maxBytes } = options;
  const cache =
    maxBytes > 0
      ? new LRUCache<string, DocumentNode>({ maxSize: maxBytes, sizeCalculation: (document, query) => Math.max(1, query.length + JSON.stringify(document).length) })
      : undefined;
  return (query) => {
    const cached = cache?.get(query);
    if (cached !== undefined) return { ok: true, document: cached };
    let document: DocumentNode;
    try {
      document = parse(query);
    } catch (error) {
      const message = error instanceof GraphQLError ? error.message : 'Syntax error';
      return { ok: false, errors: [new GraphQLError(message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })] };
    }
    const errors = validate(schema, document, rules);
    if (errors.length > 0) return { ok: false, errors };
    // A document larger than the whole cache is not kept (lru-cache refuses it): it is parsed again if sent again.
    cache?.set(query, document);
    return { ok: true, document };
  };
}
