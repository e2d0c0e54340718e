/** The web UI handler (src/http/webUi.ts): the page, its CSP, its hashed assets, a missing bundle. */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebUiHandler } from '../../../src/http/webUi.js';
import { webUiContentSecurityPolicy } from '../../../src/http/webUi/page.js';
import { silentLogger } from '../../../src/logger.js';

const servers: http.Server[] = [];

async function serve(options: {
  bundleDir?: string;
  apiKeyRequired?: boolean;
  graphiqlPath?: string | null;
}): Promise<string> {
  const app = express();
  app.use(
    createWebUiHandler({
      endpoint: '/graphql',
      apiKeyRequired: options.apiKeyRequired ?? false,
      graphiqlPath: options.graphiqlPath === undefined ? '/graphql' : options.graphiqlPath,
      logger: silentLogger(),
      ...(options.bundleDir === undefined ? {} : { bundleDir: options.bundleDir }),
    }),
  );
  app.use((_req, res) => void res.status(404).json({ fellThrough: true }));
  const server = http.createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

function assetUrls(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((match) => match[1] ?? '');
}

describe('the page', () => {
  let base: string;
  let html: string;
  let response: Response;

  beforeAll(async () => {
    // globalSetup built the bundle in dist/web.
    base = await serve({ apiKeyRequired: true });
    response = await fetch(`${base}/`);
    html = await response.text();
  });

  it('should serve HTML at / with a strict CSP: no inline script or style, network only to this host', () => {
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("style-src 'self';");
    expect(csp).not.toContain('unsafe');
    expect(csp).toContain(`connect-src 'self' ws://${new URL(base).host} wss://${new URL(base).host}`);
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    // No inline script: only the JSON config and the module script.
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    for (const [, attributes, body] of scripts) {
      if ((body ?? '').trim() !== '') expect(attributes).toContain('type="application/json"');
    }
    expect(html).not.toMatch(/style="/);
  });

  it('should embed its config: the endpoint and whether a key is needed', () => {
    const config = /<script type="application\/json" id="clip-ui-config">([^<]*)<\/script>/.exec(html)?.[1];
    expect(JSON.parse(config ?? 'null')).toEqual({ endpoint: '/graphql', apiKeyRequired: true });
    expect(html).toContain('href="/graphql"');
  });

  it('should serve its script and stylesheet under hashed names, cacheable forever, gzipped on request', async () => {
    const urls = assetUrls(html);
    expect(urls).toHaveLength(2);
    for (const url of urls) {
      expect(url).toMatch(/^\/ui\/assets\/app\.[0-9a-f]{16}\.(js|css)$/);
      const plain = await fetch(`${base}${url}`, { headers: { 'accept-encoding': 'identity' } });
      expect(plain.status).toBe(200);
      expect(plain.headers.get('cache-control')).toContain('immutable');
      const body = Buffer.from(await plain.arrayBuffer());
      const zipped = await new Promise<Buffer>((resolve, reject) => {
        http
          .get(`${base}${url}`, { headers: { 'accept-encoding': 'gzip' } }, (answer) => {
            expect(answer.headers['content-encoding']).toBe('gzip');
            const chunks: Buffer[] = [];
            answer.on('data', (chunk: Buffer) => chunks.push(chunk));
            answer.on('end', () => resolve(Buffer.concat(chunks)));
          })
          .on('error', reject);
      });
      expect(gunzipSync(zipped).equals(body)).toBe(true);
      const again = await fetch(`${base}${url}`, { headers: { 'if-none-match': plain.headers.get('etag') ?? '' } });
      expect(again.status).toBe(304);
    }
    expect((await fetch(`${base}/ui/assets/app.0000000000000000.js`)).status).toBe(404);
  });

  it('should bundle its dependencies: the script imports nothing from elsewhere', async () => {
    const script = assetUrls(html).find((url) => url.endsWith('.js')) ?? '';
    const code = await (await fetch(`${base}${script}`)).text();
    // An import statement starts a statement; `import(` would load code at run time; no absolute URLs at all.
    const imports = [...code.matchAll(/(?:^|[;}\n])\s*import[\s{*"']|\bimport\(|https?:\/\//g)].map((match) =>
      code.slice(match.index, match.index + 60),
    );
    expect(imports).toEqual([]);
  });

  it('should leave every other path to the next handler', async () => {
    expect(await (await fetch(`${base}/graphql`)).json()).toEqual({ fellThrough: true });
    expect(await (await fetch(`${base}/`, { method: 'POST' })).json()).toEqual({ fellThrough: true });
  });

  it('should not link GraphiQL when it is off', async () => {
    const other = await serve({ graphiqlPath: null });
    expect(await (await fetch(`${other}/`)).text()).not.toContain('GraphiQL');
  });
});

describe('without a built bundle', () => {
  it('should answer 503 at / saying how to build it, and keep the rest working', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'no-bundle-'));
    const base = await serve({ bundleDir: empty });
    const response = await fetch(`${base}/`);
    expect(response.status).toBe(503);
    expect(await response.text()).toMatch(/npm run build/);
    expect((await fetch(`${base}/health`)).status).toBe(404);
    fs.rmSync(empty, { recursive: true, force: true });
  });
});

describe('webUiContentSecurityPolicy', () => {
  it('should not widen connect-src for a forged Host header', () => {
    expect(webUiContentSecurityPolicy('evil.example; script-src *')).toContain("connect-src 'self';");
  });
});
