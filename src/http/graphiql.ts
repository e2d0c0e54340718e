/**
 * Serves GraphiQL from installed npm assets (graphiql@3, react@18, react-dom@18 UMD builds): no CDN, so it
 * works offline. Subscriptions run over graphql-ws through the client bundled inside graphiql.min.js.
 *
 * The handler matches on the request's full path (`req.originalUrl`), so it works wherever it is mounted, but
 * it must see both of its paths. Mount it at the app root, before the GraphQL middleware and before any
 * API-key check (the page and assets are static; the page's own requests carry the key):
 *
 *     app.use(createGraphiqlHandler({ endpoint: '/graphql', apiKeyHeader: apiKeysConfigured }));
 *
 * It answers `GET|HEAD {endpoint}` only for requests that prefer HTML (a browser) and carry no `query`
 * parameter, and `GET|HEAD {assetsPath}/{name}.{hash}.{ext}`; everything else goes to `next()`.
 */
import type { Request, RequestHandler, Response } from 'express';
import { loadGraphiqlAssets } from './graphiql/assets.js';
import { pathnameOf, serveAssetUnder } from './staticAsset.js';
import { graphiqlContentSecurityPolicy, renderGraphiqlPage, type GraphiqlPageOptions } from './graphiql/page.js';

/**
 * The header the page pre-fills when `apiKeyHeader` is `true`. `Authorization: Bearer …` because the server
 * accepts it on HTTP and, sent by GraphiQL as `connectionParams`, in the websocket's `connection_init`.
 */
export const DEFAULT_API_KEY_HEADER = 'Authorization';

/** The path the assets are served under when `assetsPath` is not given. */
export const DEFAULT_GRAPHIQL_ASSETS_PATH = '/graphiql/assets';

export interface GraphiqlOptions {
  /** Path of the GraphQL HTTP endpoint (e.g. `/graphql`); the page is served on it too. */
  endpoint: string;
  /**
   * Path of the graphql-ws endpoint; the page derives `ws(s)://` from its own location.
   * @default endpoint (graphql-ws usually shares the HTTP endpoint's path)
   */
  subscriptionEndpoint?: string;
  /**
   * Open the headers editor pre-filled with an API-key header: `true` for `Authorization: Bearer …`, or a
   * header name.
   * Its JSON goes on every HTTP request and as the websocket's `connectionParams`.
   * @default false
   */
  apiKeyHeader?: boolean | string;
  /** Where the static assets are served. @default '/graphiql/assets' */
  assetsPath?: string;
  /** The page title. @default 'GraphiQL · CLIP classification server' */
  title?: string;
}

/** Builds the GraphiQL handler; throws at once if an asset package is not installed. */
export function createGraphiqlHandler(options: GraphiqlOptions): RequestHandler {
  const pageOptions = normaliseOptions(options);
  const assets = loadGraphiqlAssets();
  const html = renderGraphiqlPage(pageOptions, assets);
  const assetPrefix = `${pageOptions.assetsPath}/`;

  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const pathname = pathnameOf(req);
    if ((pathname === pageOptions.endpoint || pathname === `${pageOptions.endpoint}/`) && wantsPage(req)) {
      sendPage(req, res, html);
      return;
    }
    if (!serveAssetUnder(assetPrefix, pathname, assets.byFileName, req, res, next)) next();
  };
}

function sendPage(req: Request, res: Response, html: string): void {
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Security-Policy', graphiqlContentSecurityPolicy(req.headers.host));
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Vary', 'Accept');
  res.send(html);
}

/**
 * A browser navigating to the endpoint prefers text/html; GraphQL clients ask for JSON (or send `*\/*`,
 * which picks the first type offered, JSON). A GET carrying `query` is an operation, never the page.
 */
function wantsPage(req: Request): boolean {
  if (typeof req.query.query === 'string') return false;
  return req.accepts(['application/json', 'application/graphql-response+json', 'text/html']) === 'text/html';
}

function normaliseOptions(options: GraphiqlOptions): GraphiqlPageOptions {
  const assetsPath = (options.assetsPath ?? DEFAULT_GRAPHIQL_ASSETS_PATH).replace(/\/+$/, '');
  const subscriptionEndpoint = options.subscriptionEndpoint ?? options.endpoint;
  for (const [name, value] of Object.entries({ endpoint: options.endpoint, subscriptionEndpoint, assetsPath })) {
    if (!/^\/[A-Za-z0-9._~\-/]*$/.test(value)) {
      throw new TypeError(
        `createGraphiqlHandler expects ${name} to be an absolute URL path like /graphql, but got ${JSON.stringify(value)}`,
      );
    }
  }
  const apiKeyHeader = options.apiKeyHeader === true ? DEFAULT_API_KEY_HEADER : options.apiKeyHeader || undefined;
  if (apiKeyHeader !== undefined && !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(apiKeyHeader)) {
    throw new TypeError(
      `createGraphiqlHandler expects apiKeyHeader to be a header name, but got ${JSON.stringify(apiKeyHeader)}`,
    );
  }
  return {
    endpoint: options.endpoint,
    subscriptionEndpoint,
    assetsPath,
    apiKeyHeader,
    title: options.title ?? 'GraphiQL · CLIP classification server',
  };
}
