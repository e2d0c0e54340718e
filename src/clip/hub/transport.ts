/**
 * HTTP to the hub: its URLs, and the GET of a file with redirects followed by hand, so that the hub's own headers
 * (size, sha256, commit) are read from the first response and the token goes only to the hub's origin, never to the
 * CDN it redirects to.
 */
import fs from 'node:fs/promises';
import type { HubRepoRef } from './cacheLayout.js';
import { repoRevision, type HubContext } from './hubContext.js';
import { causeText, HubError, statusError } from './hubError.js';

/** How the server introduces itself to the hub. */
export const USER_AGENT = 'clip-server';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** More hops than any hub or mirror uses: a loop, not a download. */
const MAX_REDIRECTS = 10;

/** `{endpoint}/{owner}/{name}/resolve/{revision}/{path}`, each path segment and the revision URI-encoded. */
export function hubFileUrl(endpoint: string, source: HubRepoRef, file: string): string {
  const base = endpoint.replace(/\/+$/, '');
  const filePath = file.split('/').map(encodeURIComponent).join('/');
  return `${base}/${source.repo}/resolve/${encodeURIComponent(source.revision)}/${filePath}`;
}

/** `{endpoint}/api/models/{owner}/{name}/revision/{revision}`: the hub's model-info API, whose `siblings` list the files. */
export function hubListingUrl(endpoint: string, source: HubRepoRef): string {
  return `${endpoint.replace(/\/+$/, '')}/api/models/${source.repo}/revision/${encodeURIComponent(source.revision)}`;
}

/** What the first response of `resolve` says about the file (before any redirect). */
export interface FileMeta {
  size: number | undefined;
  sha256: string | undefined;
  commit: string | undefined;
}

/** The outcome of {@link requestFile}: a body to read from `offset`, or a partial that is already whole. */
export type RequestResult =
  { kind: 'body'; response: Response; meta: FileMeta; offset: number } | { kind: 'complete'; meta: FileMeta };

/**
 * GETs a file's `url`, with `Range` when resuming from `offset`. A partial the hub's size shows to be whole needs no
 * body; one that is longer than the file, or that the server will not range (416), is deleted and fetched from the start.
 */
export async function requestFile(
  ctx: HubContext,
  file: string,
  url: string,
  partialPath: string,
  offset: number,
  signal: AbortSignal,
): Promise<RequestResult> {
  const hubOrigin = new URL(ctx.endpoint).origin;
  let current = url;
  let meta: FileMeta | undefined;
  let rangeStart = offset;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
    const headers: Record<string, string> = {
      // Sizes are compared with Content-Length; a compressed body would not match it.
      'accept-encoding': 'identity',
      'user-agent': USER_AGENT,
    };
    if (ctx.token !== undefined && new URL(current).origin === hubOrigin)
      headers['authorization'] = `Bearer ${ctx.token}`;
    if (rangeStart > 0) headers['range'] = `bytes=${rangeStart}-`;

    let response: Response;
    try {
      response = await ctx.fetch(current, { headers, redirect: 'manual', signal });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw new HubError(
        'network',
        file,
        current,
        `cannot download ${file} from ${current}: ${causeText(error)}`,
        true,
        error,
      );
    }
    const first = meta === undefined;
    meta ??= readMeta(response.headers);
    if (
      first &&
      rangeStart > 0 &&
      meta.size !== undefined &&
      rangeStart >= meta.size &&
      (response.ok || REDIRECTS.has(response.status))
    ) {
      await response.body?.cancel();
      // The partial has every byte already (a crash between download and rename): no body needed.
      if (rangeStart === meta.size) return { kind: 'complete', meta };
      await restartFromZero();
      continue;
    }
    if (REDIRECTS.has(response.status)) {
      const location = response.headers.get('location');
      await response.body?.cancel();
      if (location === null)
        throw new HubError(
          'http',
          file,
          current,
          `${file}: ${current} redirected (HTTP ${response.status}) without a Location`,
        );
      current = new URL(location, current).toString();
      continue;
    }
    if (response.status === 416 && rangeStart > 0) {
      // The partial is no prefix of this file (the revision moved?): drop it and start again.
      await response.body?.cancel();
      await restartFromZero();
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw statusError(repoRevision(ctx.source), ctx.token !== undefined, file, current, response);
    }
    return { kind: 'body', response, meta, offset: rangeStart };
  }
  throw new HubError('http', file, url, `${file}: more than ${MAX_REDIRECTS} redirects from ${url}`);

  async function restartFromZero(): Promise<void> {
    await fs.rm(partialPath, { force: true });
    rangeStart = 0;
    current = url;
    meta = undefined;
  }
}

export function parseLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

export function parseContentRange(value: string | null): { start: number; total: number | undefined } | undefined {
  const match = value === null ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (match === null) return undefined;
  return { start: Number(match[1]), total: match[3] === '*' ? undefined : Number(match[3]) };
}

function readMeta(headers: Headers): FileMeta {
  const linkedEtag = normaliseEtag(headers.get('x-linked-etag'));
  const sha256 = linkedEtag !== undefined && /^[0-9a-f]{64}$/.test(linkedEtag) ? linkedEtag : undefined;
  return {
    // X-Linked-Size belongs to the LFS file; Content-Length of a redirect is the redirect's own body.
    size: parseLength(headers.get('x-linked-size')),
    sha256,
    commit: headers.get('x-repo-commit') ?? undefined,
  };
}

function normaliseEtag(value: string | null): string | undefined {
  if (value === null) return undefined;
  return value
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1')
    .toLowerCase();
}
