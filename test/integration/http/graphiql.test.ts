import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGraphiqlHandler } from '../../../src/http/graphiql.js';
import { parse, validate } from 'graphql';
import { buildGraphqlSchema } from '../../../src/graphql/schema.js';
import { graphiqlContentSecurityPolicy, graphiqlPageConfig } from '../../../src/http/graphiql/page.js';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

let server: http.Server;
let base: string;

beforeAll(async () => {
  const app = express();
  // Mounted the way the docs say: at the root, in front of the GraphQL endpoint it shares a path with.
  app.use(createGraphiqlHandler({ endpoint: '/graphql', subscriptionEndpoint: '/graphql-ws', apiKeyHeader: true }));
  app.all('/graphql', (_req, res) => void res.json({ data: { fellThrough: true } }));
  // And mounted inside a router at its endpoint, the other way a server might do it.
  const nested = express.Router();
  nested.get(
    '/',
    createGraphiqlHandler({
      endpoint: '/nested/graphql',
      subscriptionEndpoint: '/nested/graphql',
      assetsPath: '/nested/graphql/assets',
    }),
  );
  app.use('/nested/graphql', nested);
  server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function page(path = '/graphql'): Promise<{ response: Response; html: string }> {
  const response = await fetch(`${base}${path}`, { headers: { accept: BROWSER_ACCEPT } });
  return { response, html: await response.text() };
}

function assetUrls(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((match) => match[1] ?? '');
}

describe('createGraphiqlHandler', () => {
  it('should serve the page to a browser with a strict CSP and no inline script', async () => {
    const { response, html } = await page();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).toContain(`ws://${new URL(base).host}`);
    // Every <script> either has src or is the non-executable JSON config.
    const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((match) => match[1] ?? '');
    expect(scripts.length).toBe(5);
    for (const attributes of scripts) expect(attributes).toMatch(/src="|type="application\/json"/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('should embed the endpoints and the API-key header in the page config', async () => {
    const { html } = await page();
    const json = /<script type="application\/json" id="graphiql-config">(.*?)<\/script>/s.exec(html)?.[1] ?? '';
    expect(json).not.toContain('<');
    const config = JSON.parse(json) as {
      endpoint: string;
      subscriptionEndpoint: string;
      defaultHeaders: string;
      defaultTabs: { query: string }[];
    };
    expect(config.endpoint).toBe('/graphql');
    expect(config.subscriptionEndpoint).toBe('/graphql-ws');
    expect(JSON.parse(config.defaultHeaders)).toEqual({ Authorization: 'Bearer <your API key>' });
    expect(config.defaultTabs.map((tab) => /^(mutation|subscription|query) (\w+)/m.exec(tab.query)?.[2])).toEqual([
      'Classify',
      'JobUpdated',
      'Models',
      'EmbedTexts',
    ]);
  });

  it('should pre-fill only tabs that are valid against the schema', async () => {
    const schema = await buildGraphqlSchema();
    const config = graphiqlPageConfig({
      endpoint: '/graphql',
      subscriptionEndpoint: '/graphql-ws',
      assetsPath: '/a',
      apiKeyHeader: undefined,
      title: 't',
    });
    for (const tab of config.defaultTabs)
      expect(validate(schema, parse(tab.query)).map((error) => error.message)).toEqual([]);
  });

  it('should let GraphQL requests through: JSON accept, no accept, a GET query, and POST', async () => {
    const json = await fetch(`${base}/graphql`, { headers: { accept: 'application/json' } });
    expect(await json.json()).toEqual({ data: { fellThrough: true } });
    const any = await fetch(`${base}/graphql`, { headers: { accept: '*/*' } });
    expect(await any.json()).toEqual({ data: { fellThrough: true } });
    const query = await fetch(`${base}/graphql?query=%7B__typename%7D`, { headers: { accept: BROWSER_ACCEPT } });
    expect(await query.json()).toEqual({ data: { fellThrough: true } });
    const post = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { accept: BROWSER_ACCEPT, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(await post.json()).toEqual({ data: { fellThrough: true } });
  });

  it('should serve every asset the page names, hashed, cacheable for a year, gzipped on request', async () => {
    const { html } = await page();
    const urls = assetUrls(html);
    expect(urls.length).toBe(6);
    for (const url of urls) {
      expect(url).toMatch(/^\/graphiql\/assets\/[\w.-]+\.[0-9a-f]{16}\.(js|css)$/);
      const plain = await fetch(`${base}${url}`, { headers: { 'accept-encoding': 'identity' } });
      expect(plain.status).toBe(200);
      expect(plain.headers.get('content-type')).toMatch(url.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
      expect(plain.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      const body = Buffer.from(await plain.arrayBuffer());
      expect(body.length).toBeGreaterThan(100);
      // Node's fetch would decode gzip itself; a raw request shows what went over the wire.
      const gzipped = await rawGet(url, { 'accept-encoding': 'gzip' });
      expect(gzipped.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(gzipped.body).equals(body)).toBe(true);
      const etag = plain.headers.get('etag') ?? '';
      const revalidated = await fetch(`${base}${url}`, { headers: { 'if-none-match': etag } });
      expect(revalidated.status).toBe(304);
    }
  });

  it('should answer 404 for an unknown asset', async () => {
    const response = await fetch(`${base}/graphiql/assets/graphiql.min.0000000000000000.js`);
    expect(response.status).toBe(404);
  });

  it('should work when mounted inside a router at its endpoint', async () => {
    const { response, html } = await page('/nested/graphql');
    expect(response.status).toBe(200);
    expect(assetUrls(html).every((url) => url.startsWith('/nested/graphql/assets/'))).toBe(true);
  });

  it('should refuse options that are not absolute paths or header names', () => {
    expect(() => createGraphiqlHandler({ endpoint: 'graphql', subscriptionEndpoint: '/graphql' })).toThrow(
      /expects endpoint to be an absolute URL path/,
    );
    expect(() =>
      createGraphiqlHandler({ endpoint: '/graphql', subscriptionEndpoint: '/graphql', apiKeyHeader: 'bad header' }),
    ).toThrow(/header name/);
  });
});

describe('graphiqlContentSecurityPolicy', () => {
  it('should allow websockets to the request host only when it looks like a host', () => {
    expect(graphiqlContentSecurityPolicy('localhost:4000')).toContain(
      "connect-src 'self' ws://localhost:4000 wss://localhost:4000",
    );
    expect(graphiqlContentSecurityPolicy('[::1]:4000')).toContain('ws://[::1]:4000');
    expect(graphiqlContentSecurityPolicy("evil.com; script-src 'unsafe-inline'")).toContain("connect-src 'self'; ");
    expect(graphiqlContentSecurityPolicy(undefined)).toContain("connect-src 'self'; ");
  });
});

function rawGet(
  path: string,
  headers: Record<string, string>,
): Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}${path}`, { headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      })
      .on('error', reject);
  });
}
