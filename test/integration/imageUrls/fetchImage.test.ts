/**
 * The image-URL guard on its own, against real loopback servers: `allowed` on 127.0.0.1 (listed in the allowed
 * networks, as an intranet image store would be) and `forbidden` on 127.0.0.2 (loopback, not listed), which must
 * never receive a connection. Names resolve through an injected resolver; no traffic leaves loopback.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError, ImageUrlRefusal } from '../../../src/errors.js';
import {
  createImageUrlFetcher,
  isImageUrl,
  type ImageUrlFetcherOptions,
  type ResolvedAddress,
  type Resolver,
} from '../../../src/imageUrls/index.js';

const MAX_BYTES = 4096;

interface Served {
  server: http.Server;
  port: number;
  connections: number;
  requests: http.IncomingMessage[];
  sockets: Set<Socket>;
}

async function serve(host: string, handler: http.RequestListener): Promise<Served> {
  const served: Served = { server: http.createServer(), port: 0, connections: 0, requests: [], sockets: new Set() };
  served.server.on('connection', (socket: Socket) => {
    served.connections += 1;
    served.sockets.add(socket);
    socket.once('close', () => served.sockets.delete(socket));
  });
  served.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    served.requests.push(req);
    handler(req, res);
  });
  await new Promise<void>((resolve) => served.server.listen(0, host, resolve));
  served.port = (served.server.address() as AddressInfo).port;
  return served;
}

async function close(served: Served | undefined): Promise<void> {
  if (served === undefined) return;
  for (const socket of served.sockets) socket.destroy();
  await new Promise((resolve) => served.server.close(resolve));
}

let png: Buffer;
let allowed: Served;
let forbidden: Served;
let active = 0;
let mostActive = 0;

beforeAll(async () => {
  png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#3366cc' } })
    .png()
    .toBuffer();
  forbidden = await serve('127.0.0.2', (_req, res) => res.end(png));
  allowed = await serve('127.0.0.1', (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const go = (location: string): void => {
      res.writeHead(302, { location });
      res.end();
    };
    switch (url.pathname) {
      case '/image.png':
        res.writeHead(200, { 'content-type': 'text/plain' }).end(png);
        return;
      case '/to-image':
        go('/image.png');
        return;
      case '/to-forbidden':
        go(`http://127.0.0.2:${forbidden.port}/image.png`);
        return;
      case '/to-forbidden-name':
        go(`http://forbidden.test:${forbidden.port}/image.png`);
        return;
      case '/to-credentials':
        go(`http://user:secret@127.0.0.1:${allowed.port}/image.png`);
        return;
      case '/to-file':
        go('file:///etc/passwd');
        return;
      case '/loop':
        go(`/loop?n=${Number(url.searchParams.get('n') ?? 0) + 1}`);
        return;
      case '/declared-too-large':
        res.writeHead(200, { 'content-length': String(MAX_BYTES + 1) });
        res.write(png.subarray(0, 10));
        return;
      case '/streams-too-much': {
        res.writeHead(200);
        const chunk = Buffer.alloc(1024, 1);
        for (let i = 0; i < 8; i += 1) res.write(chunk);
        res.end();
        return;
      }
      case '/trickle': {
        res.writeHead(200);
        const timer = setInterval(() => res.write('x'), 20);
        res.once('close', () => clearInterval(timer));
        return;
      }
      case '/missing':
        res.writeHead(404).end('not here');
        return;
      case '/slow': {
        active += 1;
        mostActive = Math.max(mostActive, active);
        setTimeout(() => {
          active -= 1;
          res.end(png);
        }, 30);
        return;
      }
      default:
        res.writeHead(500).end();
    }
  });
});

afterAll(async () => {
  await close(allowed);
  await close(forbidden);
});

beforeEach(() => {
  forbidden.connections = 0;
});

const NAMES: Record<string, string[]> = {
  'images.test': ['127.0.0.1'],
  'forbidden.test': ['127.0.0.2'],
  'private.test': ['10.0.0.1'],
  'metadata.test': ['169.254.169.254'],
  'mixed.test': ['127.0.0.1', '10.0.0.1'],
  'mixed6.test': ['127.0.0.1', 'fd00::1'],
};

const resolveTestNames: Resolver = async (hostname) => {
  const addresses = NAMES[hostname];
  if (addresses === undefined)
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return addresses.map((address): ResolvedAddress => ({ address, family: address.includes(':') ? 6 : 4 }));
};

function fetcher(overrides: Partial<ImageUrlFetcherOptions> = {}) {
  return createImageUrlFetcher({
    mode: 'public',
    allowedNetworks: ['127.0.0.1/32'],
    maxRedirects: 3,
    timeoutMs: 5_000,
    maxBytes: MAX_BYTES,
    concurrency: 4,
    userAgent: 'clip-classify-server (test)',
    resolve: resolveTestNames,
    ...overrides,
  });
}

async function refusalOf(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof AppError)) throw new Error(`expected an AppError, got ${String(error)}`);
  return error;
}

const allowedUrl = (path: string): string => `http://127.0.0.1:${allowed.port}${path}`;

describe('isImageUrl', () => {
  it('should tell URLs from base64 and data URLs', () => {
    expect(isImageUrl('https://example.com/a.png')).toBe(true);
    expect(isImageUrl('  HTTP://example.com/a.png')).toBe(true);
    expect(isImageUrl('ftp://example.com/a.png')).toBe(true);
    expect(isImageUrl('data:image/png;base64,iVBORw0KGgo=')).toBe(false);
    expect(isImageUrl('iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB')).toBe(false);
  });
});

describe('createImageUrlFetcher', () => {
  it('should fetch an image from an allowed address, by address and by name, with only its own headers', async () => {
    const bytes = await fetcher().fetch(allowedUrl('/image.png'), 'image');
    expect(Buffer.from(bytes).equals(png)).toBe(true);
    const byName = await fetcher().fetch(`http://images.test:${allowed.port}/to-image`, 'image');
    expect(Buffer.from(byName).equals(png)).toBe(true);
    const request = allowed.requests.at(-1);
    expect(request?.headers.accept).toBe('image/*');
    expect(request?.headers['user-agent']).toBe('clip-classify-server (test)');
    expect(request?.headers.host).toBe(`images.test:${allowed.port}`);
    expect(request?.headers.cookie).toBeUndefined();
    expect(request?.headers.authorization).toBeUndefined();
  });

  it.each([
    ['127.0.0.2', (port: number) => `http://127.0.0.2:${port}/image.png`],
    ['a decimal IPv4 form', (port: number) => `http://2130706434:${port}/image.png`],
    ['a hex IPv4 form', (port: number) => `http://0x7f000002:${port}/image.png`],
    ['a short IPv4 form', (port: number) => `http://127.2:${port}/image.png`],
    ['an octal IPv4 form', (port: number) => `http://0177.0.0.2:${port}/image.png`],
    ['an IPv4-mapped IPv6 form', (port: number) => `http://[::ffff:127.0.0.2]:${port}/image.png`],
    ['a name resolving to it', (port: number) => `http://forbidden.test:${port}/image.png`],
  ])('should refuse the forbidden loopback server as %s, without connecting', async (_, url) => {
    const error = await refusalOf(fetcher().fetch(url(forbidden.port), 'images[2]'));
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.refusal).toBe(ImageUrlRefusal.Forbidden);
    expect(error.field).toBe('images[2]');
    expect(error.message).toMatch(/^images\[2\]: .*loopback address/);
    expect(forbidden.connections).toBe(0);
  });

  it.each([
    ['private.test', /10\.0\.0\.1\), a private address/],
    ['metadata.test', /169\.254\.169\.254\), a linkLocal address/],
    ['mixed.test', /10\.0\.0\.1\), a private address/],
    ['mixed6.test', /fd00::1\), a uniqueLocal address/],
  ])('should refuse %s when any address it resolves to is not public', async (name, message) => {
    const error = await refusalOf(fetcher().fetch(`http://${name}:${allowed.port}/image.png`, 'image'));
    expect(error.refusal).toBe(ImageUrlRefusal.Forbidden);
    expect(error.message).toMatch(message);
  });

  it('should connect to the address it checked, never to a second resolution of the name (DNS rebinding)', async () => {
    let lookups = 0;
    const rebinding: Resolver = async () => {
      lookups += 1;
      return [{ address: lookups === 1 ? '127.0.0.1' : '127.0.0.2', family: 4 }];
    };
    const bytes = await fetcher({ resolve: rebinding }).fetch(`http://rebind.test:${allowed.port}/image.png`, 'image');
    expect(Buffer.from(bytes).equals(png)).toBe(true);
    expect(lookups).toBe(1);
    expect(forbidden.connections).toBe(0);
  });

  it('should check every redirect like the first URL', async () => {
    expect(Buffer.from(await fetcher().fetch(allowedUrl('/to-image'), 'image')).equals(png)).toBe(true);
    for (const path of ['/to-forbidden', '/to-forbidden-name']) {
      const error = await refusalOf(fetcher().fetch(allowedUrl(path), 'image'));
      expect(error.refusal).toBe(ImageUrlRefusal.Forbidden);
    }
    expect((await refusalOf(fetcher().fetch(allowedUrl('/to-credentials'), 'image'))).refusal).toBe(
      ImageUrlRefusal.Credentials,
    );
    expect((await refusalOf(fetcher().fetch(allowedUrl('/to-file'), 'image'))).refusal).toBe(ImageUrlRefusal.Scheme);
    expect(forbidden.connections).toBe(0);
  });

  it('should stop after IMAGE_URL_MAX_REDIRECTS redirects', async () => {
    const before = allowed.requests.length;
    const error = await refusalOf(fetcher({ maxRedirects: 3 }).fetch(allowedUrl('/loop'), 'image'));
    expect(error.refusal).toBe(ImageUrlRefusal.Redirects);
    expect(error.message).toContain('more than 3 times (IMAGE_URL_MAX_REDIRECTS)');
    expect(allowed.requests.length - before).toBe(4);
  });

  it('should refuse other schemes and credentials before any request', async () => {
    const before = allowed.requests.length;
    expect((await refusalOf(fetcher().fetch('ftp://127.0.0.1/image.png', 'image'))).refusal).toBe(
      ImageUrlRefusal.Scheme,
    );
    expect((await refusalOf(fetcher().fetch('file:///etc/passwd', 'image'))).refusal).toBe(ImageUrlRefusal.Scheme);
    expect(
      (await refusalOf(fetcher().fetch(`http://user:pw@127.0.0.1:${allowed.port}/image.png`, 'image'))).refusal,
    ).toBe(ImageUrlRefusal.Credentials);
    expect((await refusalOf(fetcher().fetch('http://exa mple.com/', 'image'))).refusal).toBe(ImageUrlRefusal.Malformed);
    expect(allowed.requests.length).toBe(before);
  });

  it('should refuse a body over the limit: a declared Content-Length unread, a streamed one cut', async () => {
    const declared = await refusalOf(fetcher().fetch(allowedUrl('/declared-too-large'), 'image'));
    expect(declared.refusal).toBe(ImageUrlRefusal.TooLarge);
    expect(declared.message).toContain(`declares ${MAX_BYTES + 1} bytes`);
    const streamed = await refusalOf(fetcher().fetch(allowedUrl('/streams-too-much'), 'image'));
    expect(streamed.refusal).toBe(ImageUrlRefusal.TooLarge);
    expect(streamed.message).toContain(`sent more than ${MAX_BYTES} bytes`);
  });

  it('should end a fetch from a server that trickles bytes at the deadline', async () => {
    const error = await refusalOf(fetcher({ timeoutMs: 300 }).fetch(allowedUrl('/trickle'), 'image'));
    expect(error.refusal).toBe(ImageUrlRefusal.Timeout);
    expect(error.message).toContain('longer than 300 ms (IMAGE_URL_TIMEOUT_MS)');
  });

  it('should refuse a non-2xx answer and a name that does not resolve', async () => {
    const missing = await refusalOf(fetcher().fetch(allowedUrl('/missing'), 'image'));
    expect(missing.refusal).toBe(ImageUrlRefusal.HttpStatus);
    expect(missing.message).toContain('answered HTTP 404');
    const nowhere = await refusalOf(fetcher().fetch('http://nowhere.test/image.png', 'image'));
    expect(nowhere.refusal).toBe(ImageUrlRefusal.Unreachable);
  });

  it('should refuse every URL when IMAGE_URLS=off, naming the setting', async () => {
    const before = allowed.requests.length;
    const error = await refusalOf(fetcher({ mode: 'off' }).fetch(allowedUrl('/image.png'), 'image'));
    expect(error.refusal).toBe(ImageUrlRefusal.Off);
    expect(error.message).toContain('IMAGE_URLS=off');
    expect(allowed.requests.length).toBe(before);
  });

  it('should keep at most `concurrency` fetches in flight', async () => {
    mostActive = 0;
    const one = fetcher({ concurrency: 1 });
    const bodies = await Promise.all([1, 2, 3].map(() => one.fetch(allowedUrl('/slow'), 'image')));
    expect(bodies).toHaveLength(3);
    expect(mostActive).toBe(1);
  });

  it('should stop when the caller aborts, with the caller’s reason', async () => {
    const controller = new AbortController();
    const pending = fetcher().fetch(allowedUrl('/trickle'), 'image', controller.signal);
    controller.abort(new Error('caller left'));
    await expect(pending).rejects.toThrow('caller left');
  });
});
