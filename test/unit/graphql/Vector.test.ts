import { Kind, parseValue } from 'graphql';
import { describe, expect, it } from 'vitest';
import { VectorScalar } from '../../../src/graphql/scalars/Vector.js';

describe('the Vector scalar', () => {
  it('should serialise a list of finite numbers as itself', () => {
    const vector = [0.6, -0.8, 0];
    expect(VectorScalar.serialize(vector)).toBe(vector);
  });

  it.each([
    ['a non-list', 0.5],
    ['null', null],
    ['a NaN element', [0.1, Number.NaN]],
    ['an infinite element', [Number.POSITIVE_INFINITY]],
    ['a string element', [0.1, '0.2']],
  ])('should refuse %s', (_name, value) => {
    expect(() => VectorScalar.serialize(value)).toThrow(/Vector expects/);
  });

  it('should read literals and variables as lists of numbers', () => {
    expect(VectorScalar.parseLiteral(parseValue('[1, 0.5, -2]'))).toEqual([1, 0.5, -2]);
    expect(() => VectorScalar.parseLiteral({ kind: Kind.STRING, value: 'x' })).toThrow(/Vector expects/);
    expect(VectorScalar.parseValue([1, 2])).toEqual([1, 2]);
  });
});
