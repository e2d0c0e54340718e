import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../../src/errors.js';
import { numberListBytes, ResponseBudget, stringListBytes } from '../../../src/graphql/responseBudget.js';

describe('ResponseBudget', () => {
  it('should let charges through up to the budget and refuse the one that passes it, naming the setting and the field', () => {
    const budget = new ResponseBudget(100);
    budget.charge(60, 'texts');
    budget.charge(40, 'texts');
    expect(budget.refusal).toBeNull();
    expect(() => budget.charge(1, 'classes')).toThrow(AppError);
    expect(budget.refusal).toMatchObject({
      code: ErrorCode.ResponseTooLarge,
      message: expect.stringMatching(/100 bytes \(MAX_RESPONSE_BYTES; reached at classes\)/),
    });
  });

  it('should refuse every later charge once refused, and start over on reset (one subscription event at a time)', () => {
    const budget = new ResponseBudget(10);
    expect(() => budget.charge(11, 'vectors')).toThrow();
    expect(() => budget.charge(0, 'id')).toThrow();
    budget.reset();
    expect(budget.refusal).toBeNull();
    budget.charge(10, 'vectors');
  });

  it('should estimate JSON sizes from lengths: a string list at its characters plus framing, numbers as printed float32s', () => {
    const texts = ['a'.repeat(1000), 'b'.repeat(10)];
    expect(stringListBytes(texts)).toBeGreaterThanOrEqual(JSON.stringify(texts).length);
    const floats = Array.from({ length: 512 }, (_, i) => Math.fround(Math.sin(i) / 7));
    expect(numberListBytes(floats.length)).toBeGreaterThanOrEqual(JSON.stringify(floats).length);
    expect(() => new ResponseBudget(0)).toThrow(/positive/);
  });
});
