/**
 * API keys: the constant-time check of a key against the configured ones, where a request or a websocket's
 * `connection_init` carries its key, and who may start and stop models.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { AppError, ErrorCode } from '../errors.js';
import type { AuthOutcome } from '../graphql/index.js';

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** Compares digests in constant time so response timing does not leak a key's prefix. */
export function createKeyCheck(apiKeys: readonly string[]): (key: string | undefined) => AuthOutcome {
  const digests = apiKeys.map(digest);
  return (key) => {
    if (key === undefined || key === '') return 'missing';
    const candidate = digest(key);
    let match = false;
    for (const known of digests) match = timingSafeEqual(known, candidate) || match;
    return match ? 'ok' : 'invalid';
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

export const AUTH_MESSAGES: Record<Exclude<AuthOutcome, 'ok'>, string> = {
  missing: 'An API key is required: send `Authorization: Bearer <key>` or `x-api-key: <key>`',
  invalid: 'The API key is not valid',
};

/**
 * Who may start and stop models, which changes the service for every client: anyone when no key is configured (as
 * FES); else only a key from ADMIN_API_KEYS, and nobody while that setting is empty. Throws FORBIDDEN, or
 * UNAUTHENTICATED without a valid key.
 */
export function createModelControlAuthorizer(apiKeys: readonly string[], adminApiKeys: readonly string[]): (key: string | undefined) => void {
  if (apiKeys.length === 0 && adminApiKeys.length === 0) return () => undefined;
  const isAdmin = createKeyCheck(adminApiKeys);
  return (key) => {
    if (adminApiKeys.length === 0) {
      throw new AppError(ErrorCode.Forbidden, 'Starting and stopping models needs an admin key, and none is configured: set ADMIN_API_KEYS');
    }
    const outcome = isAdmin(key);
    if (outcome === 'missing') throw new AppError(ErrorCode.Unauthenticated, AUTH_MESSAGES.missing);
    if (outcome === 'invalid') throw new AppError(ErrorCode.Forbidden, 'This API key may not start or stop models: that needs a key from ADMIN_API_KEYS');
  };
}
