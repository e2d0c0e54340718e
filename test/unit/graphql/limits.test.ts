import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { getIntrospectionQuery, parse, specifiedRules, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { aliasLimitRule, complexityError, depthLimitRule, limitRules } from '../../../src/graphql/limits.js';
import { buildGraphqlSchema } from '../../../src/graphql/schema.js';

const schema = await buildGraphqlSchema();

function errorsOf(query: string, rules = [depthLimitRule(4), aliasLimitRule(2)]): string[] {
  return validate(schema, parse(query), [...specifiedRules, ...rules]).map((error) => error.message);
}

describe('operation limits', () => {
  it('should accept an operation within every limit', () => {
    expect(errorsOf('{ jobs { nodes { id status } } }')).toEqual([]);
  });

  it('should refuse an operation deeper than the maximum, counting through fragments', () => {
    const deep = '{ jobs { nodes { result { images { probabilities } } } } }';
    expect(errorsOf(deep)).toEqual(['Operation exceeds the maximum query depth of 4 (MAX_QUERY_DEPTH)']);
    const viaFragment =
      'query Q { jobs { ...F } } fragment F on JobConnection { nodes { result { images { probabilities } } } }';
    expect(errorsOf(viaFragment)).toEqual(['Operation "Q" exceeds the maximum query depth of 4 (MAX_QUERY_DEPTH)']);
  });

  it('should not count introspection fields towards the depth', () => {
    expect(
      validate(schema, parse(getIntrospectionQuery()), [
        ...specifiedRules,
        ...limitRules({ maxDepth: 10, maxAliases: 30, maxComplexity: 5000 }, true),
      ]),
    ).toEqual([]);
  });

  it('should survive a fragment cycle (reported by graphql-js, not looped on)', () => {
    const messages = errorsOf(
      '{ jobs { ...A } } fragment A on JobConnection { ...B } fragment B on JobConnection { ...A }',
    );
    expect(messages.some((message) => message.includes('Cannot spread fragment "A" within itself'))).toBe(true);
  });

  it('should refuse more aliases than the maximum', () => {
    expect(errorsOf('{ a: models { name } b: models { name } }')).toEqual([]);
    expect(errorsOf('{ a: models { name } b: models { name } c: models { name } }')).toEqual([
      'Document has 3 aliases, more than the maximum of 2 (MAX_ALIASES)',
    ]);
  });

  it('should refuse introspection when it is off', () => {
    const rules = limitRules({ maxDepth: 10, maxAliases: 30, maxComplexity: 5000 }, false);
    const errors = validate(schema, parse('{ __schema { types { name } } }'), [...specifiedRules, ...rules]);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]?.message).toMatch(/introspection/);
  });

  it('should cost list fields by their size argument and refuse over the maximum', () => {
    const query = parse(
      'query($first: Int) { jobs(first: $first) { nodes { result { images { top(k: 50) { label } } } } } }',
    );
    expect(complexityError(schema, query, { first: 1 }, undefined, 5000)).toBeNull();
    const refused = complexityError(schema, query, { first: 100 }, undefined, 5000);
    expect(refused?.message).toMatch(/^Operation complexity \d+ exceeds the maximum of 5000 \(MAX_QUERY_COMPLEXITY\)$/);
    expect(refused?.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('should make a page of 100 full results too costly while a page of 20 passes', () => {
    const query = parse(
      'query($first: Int) { jobs(first: $first) { nodes { id result { images { probabilities top { label probability } } } } } }',
    );
    expect(complexityError(schema, query, { first: 20 }, undefined, 5000)).toBeNull();
    expect(complexityError(schema, query, { first: 100 }, undefined, 5000)).not.toBeNull();
    expect(
      complexityError(schema, parse('{ jobs(first: 100) { nodes { id status } } }'), {}, undefined, 5000),
    ).toBeNull();
  });

  it('should accept the standard introspection query within the default cost limit', () => {
    expect(complexityError(schema, parse(getIntrospectionQuery()), {}, undefined, 5000)).toBeNull();
  });

  it('should leave bad variables to execution', () => {
    expect(complexityError(schema, parse('query($id: ID!) { job(id: $id) { id } }'), {}, undefined, 10)).toBeNull();
  });

  it('should price one document object again for each value of its cost variables, whatever order they come in', () => {
    // One document object, as Apollo's and the websocket's caches hand it out: its outcomes are kept per `first`.
    const query = parse(
      'query($first: Int, $id: ID!) { job(id: $id) { id } jobs(first: $first) { nodes { result { images { top(k: 50) { label } } } } } }',
    );
    for (const id of ['a', 'b']) {
      expect(complexityError(schema, query, { first: 100, id }, undefined, 5000)).not.toBeNull();
      expect(complexityError(schema, query, { first: 1, id }, undefined, 5000)).toBeNull();
      expect(complexityError(schema, query, { first: 100, id }, undefined, 5000)).not.toBeNull();
    }
    // @include(if: $var) changes what is priced.
    const included = parse(
      'query($big: Boolean!) { models { name } jobs(first: 100) @include(if: $big) { nodes { result { images { top(k: 50) { label } } } } } }',
    );
    expect(complexityError(schema, included, { big: false }, undefined, 5000)).toBeNull();
    expect(complexityError(schema, included, { big: true }, undefined, 5000)).not.toBeNull();
    expect(complexityError(schema, included, { big: false }, undefined, 5000)).toBeNull();
  });

  it('should not take a cost left unknown by bad variables for a pass when the variables are good', () => {
    const costly = parse(
      'query($id: ID!) { job(id: $id) { id } jobs(first: 100) { nodes { result { images { top(k: 50) { label } } } } } }',
    );
    // `id` missing: the cost cannot be worked out, execution refuses the variables.
    expect(complexityError(schema, costly, {}, undefined, 5000)).toBeNull();
    expect(complexityError(schema, costly, { id: 'a' }, undefined, 5000)).not.toBeNull();
  });
});

describe('kept cost outcomes', () => {
  it('should not keep outcomes under operation names of megabytes for as long as the document lives', () => {
    const heapAfterGc = (): number => {
      v8.setFlagsFromString('--expose-gc');
      (runInNewContext('gc') as () => void)();
      return process.memoryUsage().heapUsed;
    };
    const document = parse('query Q($first: Int) { jobs(first: $first) { nodes { id } } }');
    const before = heapAfterGc();
    // What a websocket client may send: any operation name, checked by execution only after the cost.
    for (let i = 0; i < 32; i++) {
      const name = `${i}${Buffer.alloc(1_000_000, 'n').toString('latin1')}`;
      expect(complexityError(schema, document, { first: 1 }, name, 5000)).toBeNull();
    }
    expect(heapAfterGc() - before).toBeLessThan(4 * 1024 * 1024);
    expect(complexityError(schema, document, { first: 1 }, 'Q', 5000)).toBeNull();
  });
});
