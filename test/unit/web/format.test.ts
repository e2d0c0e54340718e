/** The page's pure helpers (src/web/classes.ts, src/web/format.ts). */
import { describe, expect, it } from 'vitest';
import { parseClasses } from '../../../src/web/classes.js';
import { formatBytes, formatPercent, rankClasses } from '../../../src/web/format.js';

describe('parseClasses', () => {
  it('should split on commas and newlines, trim, and drop blanks and repeats', () => {
    expect(parseClasses(' a cat, a dog\n\na car\r\n, a dog ,')).toEqual(['a cat', 'a dog', 'a car']);
  });

  it('should give nothing for blank input', () => {
    expect(parseClasses(' ,\n , ')).toEqual([]);
  });
});

describe('rankClasses', () => {
  it('should order classes most probable first, ties in the order given', () => {
    expect(rankClasses(['a', 'b', 'c', 'd'], [0.2, 0.5, 0.2, 0.1])).toEqual([
      { label: 'b', probability: 0.5 },
      { label: 'a', probability: 0.2 },
      { label: 'c', probability: 0.2 },
      { label: 'd', probability: 0.1 },
    ]);
  });
});

describe('formatPercent', () => {
  it('should show one decimal, clamped to 0..100', () => {
    expect(formatPercent(0.87349)).toBe('87.3%');
    expect(formatPercent(0.00049)).toBe('0.0%');
    expect(formatPercent(1)).toBe('100.0%');
    expect(formatPercent(1.0000001)).toBe('100.0%');
  });
});

describe('formatBytes', () => {
  it('should use B, KB and MB', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(14_200)).toBe('14.2 KB');
    expect(formatBytes(3_100_000)).toBe('3.1 MB');
  });
});
