/**
 * The `Host` check against DNS rebinding (ALLOWED_HOSTS). A page on `evil.example` whose name its owner points
 * at 127.0.0.1 is same-origin with itself, so the browser lets it read our answers and open our websocket: the
 * one thing it cannot hide is its own name in `Host`. Requests and websocket upgrades naming another host are
 * refused before any route runs: 403 with code FORBIDDEN_HOST.
 *
 * A request without a `Host` (HTTP/1.0 tools) is let through: browsers always send one.
 */
import type { RequestHandler } from 'express';
import { ErrorCode } from '../errors.js';
import { graphqlErrorBody } from '../graphql/index.js';

/** The host names allowed (lower case, no port), or `any`. */
export type HostPolicy = 'any' | readonly string[];

/** `Host` header → its name: lower case, without the port or a trailing dot (`[::1]:4000` → `[::1]`). */
export function hostNameOf(hostHeader: string): string {
  const value = hostHeader.trim().toLowerCase();
  const name = value.startsWith('[') ? value.slice(0, value.indexOf(']') + 1) : (value.split(':')[0] ?? '');
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** `(Host header) => allowed?` for a policy; never throws. */
export function createHostCheck(policy: HostPolicy): (hostHeader: string | undefined) => boolean {
  if (policy === 'any') return () => true;
  const allowed = new Set(policy.map((name) => name.toLowerCase()));
  return (hostHeader) => hostHeader === undefined || allowed.has(hostNameOf(hostHeader));
}

/** The refusal's message: names the host and the setting, never the list (it would tell an attacker what to forge). */
export function foreignHostMessage(hostHeader: string): string {
  return `This server does not answer to the host ${JSON.stringify(hostNameOf(hostHeader).slice(0, 255))} (ALLOWED_HOSTS)`;
}

/**
 * Refuses requests whose `Host` the check does not allow, with 403 and a JSON body in the shape of the route:
 * GraphQL's `errors` under /graphql, `{ error, detail }` (REST's) elsewhere.
 */
export function refuseForeignHosts(isAllowedHost: (hostHeader: string | undefined) => boolean): RequestHandler {
  return (req, res, next) => {
    const host = req.headers.host;
    if (isAllowedHost(host)) return next();
    const message = foreignHostMessage(host ?? '');
    const code = ErrorCode.ForbiddenHost;
    res.setHeader('Connection', 'close');
    if (req.path === '/graphql' || req.path.startsWith('/graphql/')) {
      res.status(403).json(graphqlErrorBody(message, code));
      return;
    }
    res.status(403).json({ error: { code, message }, detail: message });
  };
}
