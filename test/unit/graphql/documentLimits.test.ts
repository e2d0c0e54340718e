import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { documentSizeError, parseDocument, withTokenLimitSetting } from '../../../src/graphql/documentLimits.js';

const limits = { maxBytes: 1000, maxTokens: 50 };

describe('documentSizeError', () => {
  it('should measure UTF-8 bytes, not characters, and leave anything but a string to the transport', () => {
    expect(documentSizeError('a'.repeat(1000), limits)).toBeNull();
    expect(documentSizeError('a'.repeat(1001), limits)?.extensions.code).toBe('BAD_REQUEST');
    // 400 characters, 1,200 bytes.
    expect(documentSizeError('€'.repeat(400), limits)?.message).toMatch(/limit of 1000 bytes \(MAX_DOCUMENT_BYTES\)/);
    expect(documentSizeError('é'.repeat(500), limits)).toBeNull();
    expect(documentSizeError(undefined, limits)).toBeNull();
    expect(documentSizeError({ query: 'x'.repeat(5000) }, limits)).toBeNull();
  });
});

describe('parseDocument', () => {
  it('should parse within both limits, and refuse past either, naming the setting', () => {
    expect(parseDocument('{ a b c }', limits).definitions).toHaveLength(1);
    // Comments are not tokens: only the size bounds them.
    expect(parseDocument(`{ a }\n#${'x'.repeat(900)}`, limits).definitions).toHaveLength(1);
    expect(() => parseDocument(`{ ${'a '.repeat(100)}}`, limits)).toThrow(
      /more than 50 tokens \(MAX_DOCUMENT_TOKENS\)/,
    );
    expect(() => parseDocument(`{ a }\n#${'x'.repeat(1000)}`, limits)).toThrow(/MAX_DOCUMENT_BYTES/);
    try {
      parseDocument('{ a', limits);
      expect.unreachable('a syntax error');
    } catch (error) {
      expect(error).toBeInstanceOf(GraphQLError);
      expect((error as GraphQLError).message).toMatch(/^Syntax Error: Expected Name, found <EOF>\./);
      expect((error as GraphQLError).locations).toEqual([{ line: 1, column: 4 }]);
    }
  });

  it('should name the setting in graphql-js token-limit messages only', () => {
    expect(withTokenLimitSetting('Syntax Error: Document contains more that 5 tokens. Parsing aborted.')).toBe(
      'Syntax Error: Document contains more than 5 tokens (MAX_DOCUMENT_TOKENS). Parsing aborted.',
    );
    expect(withTokenLimitSetting('Syntax Error: Unexpected "}".')).toBe('Syntax Error: Unexpected "}".');
  });
});
