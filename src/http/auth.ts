/**
 * API keys: who a request is. With no keys configured (API_KEYS and ADMIN_API_KEYS empty) authentication is off and
 * every request is the one open caller. Otherwise a request carries a key (`Authorization: Bearer <key>` or
 * `x-api-key` on HTTP; `connection_init { apiKey }` on a websocket), compared in constant time against the
 * configured ones, and becomes a Caller: the keyed hash of its key (the owner recorded on its jobs; the key itself is
 * never kept past this check) and whether it is an admin.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { OPEN_CALLER, type Caller } from '../jobs/index.js';
import type { AuthOutcome } from '../graphql/index.js';

export interface Auth {
  /** Whether keys are required (some are configured). */
  readonly enabled: boolean;
  /** The caller a key belongs to, or why there is none. Never throws. */
  authenticate(key: string | undefined): AuthOutcome;
}

/**
 * The owner hash's key: a fixed, product-specific HMAC key, so an owner hash is not a plain SHA-256 of the API key
 * (not found in tables of hashed strings) and hashes the same in every process of a deployment. A random API key
 * cannot be recovered from it; see docs/privacy.md for what a guessable one means.
 */
const OWNER_HASH_KEY = 'clip-server/job-owner/v1';

/** The keyed hash a key's jobs are recorded under (hex SHA-256 HMAC). */
export function ownerOf(apiKey: string): string {
  return createHmac('sha256', OWNER_HASH_KEY).update(apiKey).digest('hex');
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** Admin keys are valid keys too; a key in both lists is an admin. */
export function createAuth(apiKeys: readonly string[], adminApiKeys: readonly string[]): Auth {
  const admins = new Set(adminApiKeys);
  const known = [...new Set([...apiKeys, ...adminApiKeys])].map((key) => {
    const admin = admins.has(key);
    const caller: Caller = Object.freeze({ owner: ownerOf(key), seesAll: admin, operator: admin });
    return { digest: digest(key), caller };
  });
  if (known.length === 0) return { enabled: false, authenticate: () => ({ outcome: 'ok', caller: OPEN_CALLER }) };
  return {
    enabled: true,
    authenticate: (key) => {
      if (key === undefined || key === '') return { outcome: 'missing' };
      const candidate = digest(key);
      // Every known key is compared, so response timing says nothing about which (or whether one) matched.
      let match: Caller | undefined;
      for (const entry of known) if (timingSafeEqual(entry.digest, candidate)) match = entry.caller;
      return match === undefined ? { outcome: 'invalid' } : { outcome: 'ok', caller: match };
    },
  };
}

function bearer(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

export function keyFromRequest(req: Request): string | undefined {
  const header = req.get('x-api-key');
  return header !== undefined && header.trim() !== '' ? header.trim() : bearer(req.get('authorization'));
}

/** `{ apiKey }`, `{ Authorization: 'Bearer …' }`, or GraphiQL's headers object `{ 'x-api-key': … }`. */
export function keyFromConnectionParams(params: Readonly<Record<string, unknown>>): string | undefined {
  for (const name of ['apiKey', 'x-api-key', 'X-API-Key']) {
    const value = params[name];
    if (typeof value === 'string') return value;
  }
  return bearer(params.Authorization ?? params.authorization);
}

export const AUTH_MESSAGES: Record<'missing' | 'invalid', string> = {
  missing: 'An API key is required: send `Authorization: Bearer <key>` or `x-api-key: <key>`',
  invalid: 'The API key is not valid',
};

/** Where the key check leaves the request's caller for the routes behind it. */
export function setCaller(res: Response, caller: Caller): void {
  res.locals.caller = caller;
}

/** The request's caller; throws (a 500, never an open door) on a route the key check did not run for. */
export function callerOf(res: Response): Caller {
  const caller: unknown = res.locals.caller;
  if (caller === undefined) throw new Error('no caller on this request: the route is not behind the API key check');
  return caller as Caller;
}
