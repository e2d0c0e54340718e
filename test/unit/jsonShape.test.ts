import { describe, expect, it } from 'vitest';
import { JsonShapeError, jsonShapeVerifier, scanJsonShape, type JsonShapeLimits } from '../../src/jsonShape.js';

const LIMITS: JsonShapeLimits = { maxDepth: 4, maxValues: 10 };

function scan(text: string, limits = LIMITS): ReturnType<typeof scanJsonShape> {
  return scanJsonShape(Buffer.from(text), limits);
}

/** Depth and value count by walking the parsed value: what the scan must agree with. */
function parsedShape(value: unknown, depth = 0): { depth: number; values: number } {
  if (Array.isArray(value) || (typeof value === 'object' && value !== null)) {
    const entries = Array.isArray(value) ? value.map((item) => [null, item] as const) : Object.entries(value);
    let deepest = depth + 1;
    let values = 1;
    for (const [key, item] of entries) {
      if (key !== null) values += 1;
      const inner = parsedShape(item, depth + 1);
      deepest = Math.max(deepest, inner.depth);
      values += inner.values;
    }
    return { depth: deepest, values };
  }
  return { depth, values: 1 };
}

describe('scanJsonShape', () => {
  it('should count every value, object keys included, and the nesting depth, as the parsed body has them', () => {
    const bodies = [
      '{"image":"AAAA","classes":["a","b"],"config":{"promptTemplates":["a photo of {}"]}}',
      '[1, -2.5e+3, true, false, null, {"k": [ [], {} ]}]',
      '  "just a string"  ',
      '{"escaped \\" quote":"tail \\\\","x":"\\\\\\"still inside\\\\"}',
      '["ünïcödé ✓ 🙂", "\\u0022", 0]',
    ];
    for (const body of bodies) {
      const { depth, values } = parsedShape(JSON.parse(body));
      expect(scanJsonShape(Buffer.from(body), { maxDepth: depth, maxValues: values }), body).toBeNull();
      expect(scanJsonShape(Buffer.from(body), { maxDepth: depth, maxValues: values - 1 }), body).toEqual({
        limit: 'values',
        values,
      });
      if (depth > 0)
        expect(scanJsonShape(Buffer.from(body), { maxDepth: depth - 1, maxValues: values }), body).toEqual({
          limit: 'depth',
          depth,
        });
    }
  });

  it('should refuse a body of many tiny values at the first value over the limit, without reading the rest', () => {
    expect(scan(`{"image":"x","classes":[${'{},'.repeat(1000)}{}]}`)).toEqual({ limit: 'values', values: 11 });
    expect(scan(`${'['.repeat(1000)}${']'.repeat(1000)}`)).toEqual({ limit: 'depth', depth: 5 });
    // Whatever follows the refusal is never looked at, even when it is not JSON.
    expect(scan(`[${'0,'.repeat(20)}\u0000 not json`)).toEqual({ limit: 'values', values: 11 });
  });

  it('should count a large string as one value, brackets and quotes inside it included', () => {
    const image = `data:image/png;base64,${'A'.repeat(1_000_000)}[[[{{{\\"]]]`;
    expect(scan(JSON.stringify({ image, classes: ['a', 'b'] }))).toBeNull();
  });

  it('should leave malformed bodies to JSON.parse rather than fail on them', () => {
    expect(scan('{"unterminated')).toBeNull();
    expect(scan(']]]]')).toBeNull();
    expect(scan('')).toBeNull();
  });
});

describe('jsonShapeVerifier', () => {
  const verify = jsonShapeVerifier(LIMITS);

  it('should throw a 413 JsonShapeError naming the setting, shaped like body-parser errors', () => {
    const error = (() => {
      try {
        verify(null, null, Buffer.from(`[${'1,'.repeat(20)}1]`), 'utf-8');
      } catch (thrown) {
        return thrown;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(JsonShapeError);
    expect(error).toMatchObject({
      status: 413,
      expose: true,
      type: 'entity.too.complex',
      message: expect.stringContaining('MAX_JSON_VALUES'),
    });
    expect(() => verify(null, null, Buffer.from('[[[[[[]]]]]]'), 'utf-8')).toThrow(
      /deeper than 4 levels \(MAX_JSON_DEPTH\)/,
    );
  });

  it('should pass a body within the limits, and refuse charsets the scan cannot read with 415', () => {
    expect(() => verify(null, null, Buffer.from('{"a":[1,2]}'), 'utf-8')).not.toThrow();
    expect(() => verify(null, null, Buffer.from('{"a":[1,2]}'), null)).not.toThrow();
    expect(() => verify(null, null, Buffer.from('{"a":1}', 'utf16le'), 'utf-16le')).toThrow(
      expect.objectContaining({ status: 415 }),
    );
  });
});
