import { describe, expect, it } from 'vitest';
import { createRng, fillNormal } from '../../../scripts/model/rng.js';

describe('rng', () => {
  it('should repeat a stream for the same seed and name', () => {
    const a = fillNormal(new Float32Array(1000), createRng(3, 'w'), 1);
    const b = fillNormal(new Float32Array(1000), createRng(3, 'w'), 1);
    expect(a).toEqual(b);
  });

  it('should give different streams for another seed or another name', () => {
    const base = fillNormal(new Float32Array(100), createRng(0, 'w'), 1);
    expect(fillNormal(new Float32Array(100), createRng(1, 'w'), 1)).not.toEqual(base);
    expect(fillNormal(new Float32Array(100), createRng(0, 'v'), 1)).not.toEqual(base);
    expect(fillNormal(new Float32Array(100), createRng(2 ** 32, 'w'), 1)).not.toEqual(base);
  });

  it('should draw normal(mean, std) values', () => {
    const values = fillNormal(new Float32Array(200_000), createRng(0, 'stats'), 0.02, 1);
    const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
    const std = Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length);
    expect(mean).toBeCloseTo(1, 3);
    expect(std).toBeCloseTo(0.02, 3);
    // About 4.55% of a normal lies beyond 2 std.
    const tails = values.filter((v) => Math.abs(v - 1) > 0.04).length / values.length;
    expect(tails).toBeGreaterThan(0.04);
    expect(tails).toBeLessThan(0.051);
  });

  it('should keep uniform draws strictly inside (0, 1)', () => {
    const rng = createRng(0, 'u');
    const draws = Array.from({ length: 10_000 }, () => rng.uniform());
    expect(Math.min(...draws)).toBeGreaterThan(0);
    expect(Math.max(...draws)).toBeLessThan(1);
  });

  it('should refuse a negative or fractional seed', () => {
    expect(() => createRng(-1, 'w')).toThrow(/non-negative integer/);
    expect(() => createRng(0.5, 'w')).toThrow(/non-negative integer/);
  });
});
