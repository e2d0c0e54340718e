import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode, httpStatusOf } from '../../../src/errors.js';
import {
  assertOperator,
  canAccess,
  OPEN_CALLER,
  ownerLabel,
  visibleTo,
  type Caller,
} from '../../../src/jobs/caller.js';
import type { Job } from '../../../src/jobs/types.js';

const created = new Date();
const job = (owner: string | null): Job => ({
  id: 'j',
  owner,
  status: 'queued',
  task: 'classification',
  model: 'm',
  classes: ['a'],
  texts: [],
  imageCount: 1,
  batched: false,
  createdAt: created,
  expiresAt: new Date(created.getTime() + 60_000),
  version: 0,
});
const keyA: Caller = { owner: 'aaaa', seesAll: false, operator: false };
const admin: Caller = { owner: 'ffff', seesAll: true, operator: true };

describe('canAccess and visibleTo', () => {
  it('should show a job to its owner and to admins only; a job without owner to admins (and everyone with auth off)', () => {
    expect(canAccess(keyA, job('aaaa'))).toBe(true);
    expect(canAccess(keyA, job('bbbb'))).toBe(false);
    expect(canAccess(keyA, job(null))).toBe(false);
    expect(canAccess(admin, job('bbbb'))).toBe(true);
    expect(canAccess(OPEN_CALLER, job(null))).toBe(true);
    expect(visibleTo(keyA, job('bbbb'))).toBeUndefined();
    expect(visibleTo(keyA, undefined)).toBeUndefined();
  });
});

describe('assertOperator', () => {
  it('should refuse a key that is not an admin with FORBIDDEN (403) naming ADMIN_API_KEYS', () => {
    expect(() => assertOperator(admin, 'stopping a model')).not.toThrow();
    expect(() => assertOperator(OPEN_CALLER, 'stopping a model')).not.toThrow();
    let refusal: unknown;
    try {
      assertOperator(keyA, 'stopping a model');
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(AppError);
    expect(refusal).toMatchObject({
      code: ErrorCode.Forbidden,
      message: expect.stringMatching(/^stopping a model needs .*ADMIN_API_KEYS/),
    });
    expect(httpStatusOf(ErrorCode.Forbidden)).toBe(403);
  });
});

describe('ownerLabel', () => {
  it('should keep a 12-digit prefix of the hash', () => {
    expect(ownerLabel('0123456789abcdef0123')).toBe('0123456789ab');
  });
});
