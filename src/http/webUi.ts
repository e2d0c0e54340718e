/**
 * Serves the classification page (src/web, bundled by `npm run build` into dist/web) at `GET /`, and its
 * bundle under `/ui/assets/` with content-hashed names. Everything comes from this server: no CDN.
 *
 * Mount it at the app root, before any API-key check: the page is static, its own requests carry the key.
 * It answers `GET|HEAD /` and `GET|HEAD /ui/assets/{name}.{hash}.{ext}`; everything else goes to `next()`.
 *
 * A missing bundle (a checkout where `npm run build` never ran) does not stop the server: the page answers 503
 * saying how to build it, and a warning is logged once at startup.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RequestHandler } from 'express';
import type { Logger } from '../logger.js';
import {
  CSS_CONTENT_TYPE,
  JS_CONTENT_TYPE,
  makeAsset,
  pathnameOf,
  serveAssetUnder,
  setPageHeaders,
  type StaticAsset,
} from './staticAsset.js';
import { WEB_BUNDLE_FILES, webBundleDir } from './webUi/bundle.js';
import { renderWebUiPage, webUiContentSecurityPolicy } from './webUi/page.js';

export const WEB_UI_ASSETS_PATH = '/ui/assets';

export interface WebUiOptions {
  /** Path of the GraphQL endpoint, HTTP and websocket (e.g. `/graphql`). */
  endpoint: string;
  /** Show the API-key field (API_KEYS is set). */
  apiKeyRequired: boolean;
  /** Link to GraphiQL, or null when it is off. */
  graphiqlPath: string | null;
  logger: Logger;
  /** Where the bundle is. @default `<repo>/dist/web` */
  bundleDir?: string;
}

function loadBundle(dir: string): { script: StaticAsset; stylesheet: StaticAsset } | { missing: string } {
  const read = (name: string): Buffer | undefined => {
    try {
      return fs.readFileSync(path.join(dir, name));
    } catch {
      return undefined;
    }
  };
  const script = read(WEB_BUNDLE_FILES.script);
  const stylesheet = read(WEB_BUNDLE_FILES.stylesheet);
  if (script === undefined || stylesheet === undefined)
    return { missing: path.join(dir, script === undefined ? WEB_BUNDLE_FILES.script : WEB_BUNDLE_FILES.stylesheet) };
  return {
    script: makeAsset(WEB_BUNDLE_FILES.script, JS_CONTENT_TYPE, script),
    stylesheet: makeAsset(WEB_BUNDLE_FILES.stylesheet, CSS_CONTENT_TYPE, stylesheet),
  };
}

export function createWebUiHandler(options: WebUiOptions): RequestHandler {
  const bundle = loadBundle(options.bundleDir ?? webBundleDir());
  if ('missing' in bundle) {
    options.logger.warn({ missing: bundle.missing }, 'the web UI is not built (run npm run build); GET / answers 503');
    return (req, res, next) => {
      if ((req.method !== 'GET' && req.method !== 'HEAD') || pathnameOf(req) !== '/') return next();
      res
        .status(503)
        .type('text/plain')
        .send('The web UI has not been built: run `npm run build` (or set WEB_UI=false).\n');
    };
  }
  const assets = new Map([bundle.script, bundle.stylesheet].map((asset) => [asset.fileName, asset]));
  const html = renderWebUiPage({
    endpoint: options.endpoint,
    apiKeyRequired: options.apiKeyRequired,
    graphiqlPath: options.graphiqlPath,
    scriptUrl: `${WEB_UI_ASSETS_PATH}/${bundle.script.fileName}`,
    stylesheetUrl: `${WEB_UI_ASSETS_PATH}/${bundle.stylesheet.fileName}`,
  });
  const assetPrefix = `${WEB_UI_ASSETS_PATH}/`;

  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const pathname = pathnameOf(req);
    if (pathname === '/') {
      setPageHeaders(res, webUiContentSecurityPolicy(req.headers.host));
      res.send(html);
      return;
    }
    if (!serveAssetUnder(assetPrefix, pathname, assets, req, res, next)) next();
  };
}
