import { buildSchema, specifiedRules } from 'graphql';
import { describe, expect, it } from 'vitest';
import { validatedDocuments } from '../../../src/graphql/documentCache.js';

const schema = buildSchema('type Query { job(id: ID!): Job } type Job { id: ID! status: String }');
const QUERY = 'query($id: ID!) { job(id: $id) { id status } }';

describe('validatedDocuments', () => {
  it('should parse and validate a query text once, then hand out the same document', () => {
    const documents = validatedDocuments({ schema, rules: specifiedRules, maxBytes: 1 << 20 });
    const first = documents(QUERY);
    const second = documents(QUERY);
    expect(first.ok && second.ok).toBe(true);
    if (first.ok && second.ok) expect(second.document).toBe(first.document);
  });

  it('should refuse a syntax error and an invalid document every time, keeping neither', () => {
    const documents = validatedDocuments({ schema, rules: specifiedRules, maxBytes: 1 << 20 });
    for (let i = 0; i < 2; i++) {
      const syntax = documents('query {');
      expect(syntax.ok).toBe(false);
      if (!syntax.ok) expect(syntax.errors[0]?.extensions.code).toBe('GRAPHQL_PARSE_FAILED');
      const invalid = documents('{ job(id: "1") { nope } }');
      expect(invalid.ok).toBe(false);
      if (!invalid.ok) expect(invalid.errors[0]?.message).toMatch(/Cannot query field "nope"/);
    }
  });

  it('should keep nothing with maxBytes 0, and not keep a document larger than the whole cache', () => {
    const off = validatedDocuments({ schema, rules: specifiedRules, maxBytes: 0 });
    const a = off(QUERY);
    const b = off(QUERY);
    if (a.ok && b.ok) expect(b.document).not.toBe(a.document);
    else expect.unreachable('the query is valid');
    const tiny = validatedDocuments({ schema, rules: specifiedRules, maxBytes: 64 });
    const c = tiny(QUERY);
    const d = tiny(QUERY);
    if (c.ok && d.ok) expect(d.document).not.toBe(c.document);
    else expect.unreachable('the query is valid');
  });

  it('should evict the least recently used documents past maxBytes', () => {
    const documents = validatedDocuments({ schema, rules: specifiedRules, maxBytes: 4096 });
    const queries = Array.from({ length: 40 }, (_, i) => `query Q${i}($id: ID!) { job(id: $id) { id } }`);
    const firsts = queries.map((query) => documents(query));
    const again = documents(queries[0]!);
    const last = documents(queries[39]!);
    if (!again.ok || !last.ok || !firsts[0]!.ok || !firsts[39]!.ok) return expect.unreachable('the queries are valid');
    // 40 documents of ~300 bytes do not fit in 4 KiB: the first was evicted, the last is still there.
    expect(again.document).not.toBe(firsts[0]!.document);
    expect(last.document).toBe(firsts[39]!.document);
  });
});
