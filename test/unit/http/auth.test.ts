import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../src/errors.js';
import { createModelControlAuthorizer } from '../../../src/http/auth.js';

describe('who may start and stop models', () => {
  it('should let anyone when no key is configured (auth off, as FES)', () => {
    const authorize = createModelControlAuthorizer([], []);
    expect(() => authorize(undefined)).not.toThrow();
    expect(() => authorize('anything')).not.toThrow();
  });

  it('should refuse everyone, naming ADMIN_API_KEYS, when API_KEYS is set and ADMIN_API_KEYS is not', () => {
    const authorize = createModelControlAuthorizer(['user'], []);
    for (const key of ['user', undefined]) {
      expect(() => authorize(key)).toThrow(expect.objectContaining({ code: ErrorCode.Forbidden, message: expect.stringContaining('ADMIN_API_KEYS') }));
    }
  });

  it('should accept only an admin key when admin keys are set, with or without API_KEYS', () => {
    for (const apiKeys of [['user'], []]) {
      const authorize = createModelControlAuthorizer(apiKeys, ['admin', 'root']);
      expect(() => authorize('admin')).not.toThrow();
      expect(() => authorize('root')).not.toThrow();
      expect(() => authorize('user')).toThrow(expect.objectContaining({ code: ErrorCode.Forbidden }));
      expect(() => authorize(undefined)).toThrow(expect.objectContaining({ code: ErrorCode.Unauthenticated }));
    }
  });
});
