import { buildSchema, parse, specifiedRules } from 'graphql';
import { describe, expect, it } from 'vitest';
import { createDocumentStore, retainedBytes, validatedDocuments } from '../../../src/graphql/documentCache.js';

const schema = buildSchema('type Query { job(id: ID!): Job } type Job { id: ID! status: String }');
const QUERY = 'query($id: ID!) { job(id: $id) { id status } }';
const limits = { maxBytes: 1 << 20, maxTokens: 1000 };

describe('validatedDocuments', () => {
  it('should parse and validate a query text once, then hand out the same document', () => {
    const documents = validatedDocuments({ schema, rules: specifiedRules, limits, maxBytes: 1 << 20 });
    const first = documents(QUERY);
    const second = documents(QUERY);
    expect(first.ok && second.ok).toBe(true);
    if (first.ok && second.ok) expect(second.document).toBe(first.document);
  });

  it('should refuse a syntax error and an invalid document every time, keeping neither', () => {
    const documents = validatedDocuments({ schema, rules: specifiedRules, limits, maxBytes: 1 << 20 });
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
    const off = validatedDocuments({ schema, rules: specifiedRules, limits, maxBytes: 0 });
    const a = off(QUERY);
    const b = off(QUERY);
    if (a.ok && b.ok) expect(b.document).not.toBe(a.document);
    else expect.unreachable('the query is valid');
    const tiny = validatedDocuments({ schema, rules: specifiedRules, limits, maxBytes: 64 });
    const c = tiny(QUERY);
    const d = tiny(QUERY);
    if (c.ok && d.ok) expect(d.document).not.toBe(c.document);
    else expect.unreachable('the query is valid');
  });

  it('should evict the least recently used documents past maxBytes', () => {
    const queries = Array.from({ length: 40 }, (_, i) => `query Q${i}($id: ID!) { job(id: $id) { id } }`);
    const documents = validatedDocuments({
      schema,
      rules: specifiedRules,
      limits,
      maxBytes: 10 * retainedBytes(parse(queries[0]!)),
    });
    const firsts = queries.map((query) => documents(query));
    const again = documents(queries[0]!);
    const last = documents(queries[39]!);
    if (!again.ok || !last.ok || !firsts[0]!.ok || !firsts[39]!.ok) return expect.unreachable('the queries are valid');
    // 40 documents do not fit in the room of 10: the first was evicted, the last is still there.
    expect(again.document).not.toBe(firsts[0]!.document);
    expect(last.document).toBe(firsts[39]!.document);
  });

  it('should refuse a document over the size limit before parsing it, and one over the token limit, naming the settings', () => {
    const documents = validatedDocuments({
      schema,
      rules: specifiedRules,
      limits: { maxBytes: 1024, maxTokens: 20 },
      maxBytes: 1 << 20,
    });
    const large = documents(`{ job(id: "1") { id } }\n#${'x'.repeat(2000)}`);
    expect(large.ok).toBe(false);
    if (!large.ok) {
      expect(large.errors[0]?.extensions.code).toBe('BAD_REQUEST');
      expect(large.errors[0]?.message).toMatch(/1024 bytes \(MAX_DOCUMENT_BYTES\)/);
    }
    const dense = documents(`{ ${'job(id: "1") { id } '.repeat(10)} }`);
    expect(dense.ok).toBe(false);
    if (!dense.ok) {
      expect(dense.errors[0]?.extensions.code).toBe('GRAPHQL_PARSE_FAILED');
      expect(dense.errors[0]?.message).toMatch(/more than 20 tokens \(MAX_DOCUMENT_TOKENS\)/);
    }
  });
});

describe('retainedBytes', () => {
  it('should count the source text a document keeps alive, comments included, where its JSON has none of it', () => {
    const plain = parse(QUERY);
    const commented = parse(`${QUERY}\n#${'x'.repeat(100_000)}`);
    expect(JSON.stringify(commented).length - JSON.stringify(plain).length).toBeLessThan(100);
    expect(retainedBytes(commented) - retainedBytes(plain)).toBeGreaterThanOrEqual(200_000);
  });
});

describe('createDocumentStore', () => {
  it('should keep, hand back and delete documents, and drop the oldest past its size by what they keep', async () => {
    expect(createDocumentStore(0)).toBeNull();
    const store = createDocumentStore(1 << 20);
    if (store === null) return expect.unreachable('a store of 1 MiB');
    const document = parse(QUERY);
    await store.set('a', document);
    expect(await store.get('a')).toBe(document);
    await store.delete('a');
    expect(await store.get('a')).toBeUndefined();
    // 50 documents with 100 KB of comment each: ~200 KB each by what they keep, so about 5 fit in 1 MiB.
    for (let i = 0; i < 50; i++)
      await store.set(`d${i}`, parse(`query Q${i} { job(id: "1") { id } }\n#${'x'.repeat(100_000)}`));
    const kept = (await Promise.all(Array.from({ length: 50 }, (_, i) => store.get(`d${i}`)))).filter(
      (d) => d !== undefined,
    );
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThanOrEqual(5);
    expect(await store.get('d49')).toBeDefined();
  });
});
