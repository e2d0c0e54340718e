/**
 * @file Static files served under content-hashed names (cached for a year, `immutable`), with a strong ETag and
 * gzip on request: GraphiQL's npm assets and the page's own bundle.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { NextFunction, Request, Response } from 'express';

const gzipAsync = promisify(gzip);

/** Hashed names never change content, so a year and `immutable` are safe. */
const ASSET_CACHE_CONTROL = 'public, max-age=31536000, immutable';

/** One servable file. */
export interface StaticAsset {
  /** The URL file name, with a content hash: `graphiql.min.1a2b3c4d.js`. */
  fileName: string;
  contentType: string;
  body: Buffer;
  /** Strong ETag, quoted. */
  etag: string;
  /** The gzip-compressed body, computed on first use and shared by concurrent requests. */
  gzipped(): Promise<Buffer>;
}

export const JS_CONTENT_TYPE = 'text/javascript; charset=utf-8';
export const CSS_CONTENT_TYPE = 'text/css; charset=utf-8';

export function makeAsset(baseName: string, contentType: string, body: Buffer): StaticAsset {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
  const extension = path.extname(baseName);
  const fileName = `${baseName.slice(0, baseName.length - extension.length)}.${hash}${extension}`;
  let compressed: Promise<Buffer> | undefined;
  return {
    fileName,
    contentType,
    body,
    etag: `"${hash}"`,
    gzipped() {
      compressed ??= gzipAsync(body).catch((error: unknown) => {
        compressed = undefined;
        throw error;
      });
      return compressed;
    },
  };
}

export async function sendAsset(req: Request, res: Response, asset: StaticAsset): Promise<void> {
  res.setHeader('Content-Type', asset.contentType);
  res.setHeader('Cache-Control', ASSET_CACHE_CONTROL);
  res.setHeader('ETag', asset.etag);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Vary', 'Accept-Encoding');
  if (req.headers['if-none-match'] === asset.etag) {
    res.status(304).end();
    return;
  }
  if (req.acceptsEncodings('gzip', 'identity') === 'gzip') {
    res.setHeader('Content-Encoding', 'gzip');
    res.end(await asset.gzipped());
    return;
  }
  res.end(asset.body);
}

/**
 * Serves the asset a path names under `prefix` (404 for an unknown name). Returns false, sending nothing, when the
 * path is not under `prefix`, so the caller's handler goes on.
 */
export function serveAssetUnder(
  prefix: string,
  pathname: string,
  assetByFileName: ReadonlyMap<string, StaticAsset>,
  req: Request,
  res: Response,
  next: NextFunction,
): boolean {
  if (!pathname.startsWith(prefix)) return false;
  const asset = assetByFileName.get(pathname.slice(prefix.length));
  if (asset === undefined) res.status(404).type('text/plain').send('Not found');
  else sendAsset(req, res, asset).catch(next);
  return true;
}

/** originalUrl keeps the mount path that req.path drops; the query string is not part of the match. */
export function pathnameOf(req: Request): string {
  const url = req.originalUrl;
  const queryStart = url.indexOf('?');
  return queryStart === -1 ? url : url.slice(0, queryStart);
}

/** Headers every HTML page of ours carries, with its Content-Security-Policy. */
export function setPageHeaders(res: Response, contentSecurityPolicy: string): void {
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Security-Policy', contentSecurityPolicy);
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
}

/** `ws://host wss://host` for a Host header that looks like host[:port] (a forged one cannot widen a policy), else ''. */
export function sameHostSockets(host: string | undefined): string {
  return host !== undefined && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)
    ? ` ws://${host} wss://${host}`
    : '';
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
