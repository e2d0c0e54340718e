import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAuth, ownerOf } from '../../../src/http/auth.js';
import { OPEN_CALLER } from '../../../src/jobs/caller.js';

describe('createAuth', () => {
  it('should let everyone in as the open caller when no key is configured', () => {
    const auth = createAuth([], []);
    expect(auth.enabled).toBe(false);
    expect(auth.authenticate(undefined)).toEqual({ outcome: 'ok', caller: OPEN_CALLER });
    expect(auth.authenticate('anything')).toEqual({ outcome: 'ok', caller: OPEN_CALLER });
  });

  it('should tell a missing key from a wrong one', () => {
    const auth = createAuth(['key-a'], []);
    expect(auth.authenticate(undefined)).toEqual({ outcome: 'missing' });
    expect(auth.authenticate('')).toEqual({ outcome: 'missing' });
    expect(auth.authenticate('key-b')).toEqual({ outcome: 'invalid' });
  });

  it('should make a key its own caller and an admin key an admin, both valid keys', () => {
    const auth = createAuth(['key-a', 'key-b'], ['key-admin']);
    expect(auth.authenticate('key-a')).toEqual({
      outcome: 'ok',
      caller: { owner: ownerOf('key-a'), seesAll: false, operator: false },
    });
    expect(auth.authenticate('key-admin')).toEqual({
      outcome: 'ok',
      caller: { owner: ownerOf('key-admin'), seesAll: true, operator: true },
    });
    // A key in both lists is an admin.
    expect(createAuth(['key-a'], ['key-a']).authenticate('key-a')).toMatchObject({ caller: { seesAll: true } });
    // Admin keys alone turn authentication on.
    expect(createAuth([], ['key-admin']).authenticate(undefined)).toEqual({ outcome: 'missing' });
  });
});

describe('ownerOf', () => {
  it('should be a stable 64-digit keyed hash that differs per key and does not contain it', () => {
    expect(ownerOf('key-a')).toMatch(/^[0-9a-f]{64}$/);
    expect(ownerOf('key-a')).toBe(ownerOf('key-a'));
    expect(ownerOf('key-a')).not.toBe(ownerOf('key-b'));
    // Keyed: not the plain SHA-256 of the key.
    expect(ownerOf('key-a')).not.toBe(createHash('sha256').update('key-a').digest('hex'));
  });
});
