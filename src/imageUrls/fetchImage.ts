/**
 * @file Fetches an image a caller named by http(s) URL, behind the guard a server needs when it fetches URLs for
 * strangers (server-side request forgery: cloud metadata at link-local addresses, admin ports on loopback, the
 * intranet). For every hop, the first request and each redirect:
 * - only `http:` and `https:`, no credentials in the URL;
 * - the host name is resolved once, and every address it resolves to must pass {@link judgeAddress};
 * - the connection goes to those checked addresses (a pinned `lookup`), never to a second resolution of the
 *   name (DNS rebinding); the name stays the Host header and the TLS server name;
 * at most `maxRedirects` redirects; the body read up to `maxBytes` and cut there (a Content-Length over it is
 * refused unread); the whole fetch bounded by `timeoutMs`, slot wait, DNS, redirects and a trickling body
 * included; at most `concurrency` fetches in flight. Requests carry `Accept: image/*` and a User-Agent naming
 * the server, never a cookie or a caller's header. The Content-Type is not trusted: the decoder judges the bytes.
 *
 * Every refusal is an AppError BAD_USER_INPUT naming the field, with an {@link ImageUrlRefusal} reason.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import pLimit from 'p-limit';
import { AppError, ErrorCode, ImageUrlRefusal } from '../errors.js';
import { isIpLiteral, judgeAddress, parseNetworks, type Network } from './addresses.js';

/** One address a host name resolves to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses (the default is the system resolver, `dns.lookup` with `all`). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export interface ImageUrlFetcherOptions {
  /** `off` refuses every URL (IMAGE_URLS). */
  mode: 'public' | 'off';
  /** CIDR networks reachable although not public (IMAGE_URL_ALLOWED_NETWORKS). */
  allowedNetworks: readonly string[];
  /** Most redirects followed (IMAGE_URL_MAX_REDIRECTS). */
  maxRedirects: number;
  /** Deadline of one whole fetch, in ms (IMAGE_URL_TIMEOUT_MS). */
  timeoutMs: number;
  /** Largest body, in bytes (MAX_IMAGE_BYTES). */
  maxBytes: number;
  /** Fetches in flight at once (IMAGE_URL_CONCURRENCY). */
  concurrency: number;
  /** The User-Agent sent, naming this server. */
  userAgent: string;
  /** Host name resolution; tests inject one. Default: the system resolver. */
  resolve?: Resolver;
}

/** Fetches image bytes by URL; what JobService calls for an image given as a URL. */
export interface ImageUrlFetcher {
  /**
   * The body of `url`, at most `maxBytes`. Throws AppError BAD_USER_INPUT naming `field`, with a reason, for
   * every refusal; rejects with the signal's reason when `signal` aborts first.
   */
  fetch: (url: string, field: string, signal?: AbortSignal) => Promise<Uint8Array>;
}

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** True for a string that names a URL scheme (`http://…`, `ftp://…`): base64 and data URLs never do. */
export function isImageUrl(input: string): boolean {
  return /^\s*[a-z][a-z0-9+.-]*:\/\//i.test(input);
}

/** The system resolver (`dns.lookup`, all addresses, in the order the system gives them): what production uses. */
export async function systemResolver(hostname: string): Promise<ResolvedAddress[]> {
  const addresses = await dns.promises.lookup(hostname, { all: true, verbatim: true });
  return addresses.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
}

/** The fetcher for one process: its concurrency bound is shared by every job the process submits. */
export function createImageUrlFetcher(options: ImageUrlFetcherOptions): ImageUrlFetcher {
  for (const name of ['maxRedirects', 'timeoutMs', 'maxBytes', 'concurrency'] as const) {
    const value = options[name];
    const min = name === 'maxRedirects' ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < min)
      throw new TypeError(`createImageUrlFetcher: expected ${name} to be an integer >= ${min}, got ${value}`);
  }
  const networks = parseNetworks(options.allowedNetworks);
  const limit = pLimit(options.concurrency);
  const resolve = options.resolve ?? systemResolver;

  return {
    async fetch(input, field, signal) {
      if (options.mode === 'off') {
        throw refusal(
          field,
          ImageUrlRefusal.Off,
          'image URLs are turned off on this server (IMAGE_URLS=off); send the image itself (data URL, base64 or a file upload)',
        );
      }
      const first = parseUrl(input, field);
      const deadline = AbortSignal.timeout(options.timeoutMs);
      const combined = signal === undefined ? deadline : AbortSignal.any([deadline, signal]);
      const context: HopContext = {
        field,
        networks,
        resolve,
        signal: combined,
        maxBytes: options.maxBytes,
        userAgent: options.userAgent,
      };
      try {
        return await limit(async () => {
          combined.throwIfAborted();
          return followRedirects(first, context, options.maxRedirects);
        });
      } catch (error) {
        if (signal?.aborted === true) throw signal.reason;
        if (deadline.aborted) {
          throw refusal(
            field,
            ImageUrlRefusal.Timeout,
            `fetching ${display(first)} took longer than ${options.timeoutMs} ms (IMAGE_URL_TIMEOUT_MS)`,
          );
        }
        throw error;
      }
    },
  };
}

interface HopContext {
  field: string;
  networks: readonly Network[];
  resolve: Resolver;
  signal: AbortSignal;
  maxBytes: number;
  userAgent: string;
}

async function followRedirects(first: URL, context: HopContext, maxRedirects: number): Promise<Uint8Array> {
  let url = first;
  for (let redirects = 0; ; redirects += 1) {
    const outcome = await fetchHop(url, context);
    if (outcome.kind === 'body') return outcome.bytes;
    if (redirects >= maxRedirects) {
      throw refusal(
        context.field,
        ImageUrlRefusal.Redirects,
        `${display(first)} redirects more than ${maxRedirects} times (IMAGE_URL_MAX_REDIRECTS)`,
      );
    }
    url = outcome.location;
  }
}

type HopOutcome = { kind: 'body'; bytes: Uint8Array } | { kind: 'redirect'; location: URL };

/** One request: checks the URL and every address of its host, then GETs it from those addresses only. */
async function fetchHop(url: URL, context: HopContext): Promise<HopOutcome> {
  checkUrlShape(url, context.field);
  const host = hostOf(url);
  const addresses = await addressesOf(host, context);
  for (const { address } of addresses) {
    const verdict = judgeAddress(address, context.networks);
    if (!verdict.allowed) {
      const where = address === host ? host : `${host} (${address})`;
      throw refusal(
        context.field,
        ImageUrlRefusal.Forbidden,
        `${display(url)} leads to ${where}, a ${verdict.range} address; image URLs may only reach public addresses (or IMAGE_URL_ALLOWED_NETWORKS)`,
      );
    }
  }
  return request(url, host, addresses, context);
}

function parseUrl(input: string, field: string): URL {
  try {
    return new URL(input.trim());
  } catch {
    throw refusal(field, ImageUrlRefusal.Malformed, `not a valid URL: ${JSON.stringify(truncate(input.trim()))}`);
  }
}

function checkUrlShape(url: URL, field: string): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw refusal(
      field,
      ImageUrlRefusal.Scheme,
      `the URL scheme ${url.protocol.slice(0, -1).slice(0, 20)} is not allowed; image URLs must be http or https`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw refusal(
      field,
      ImageUrlRefusal.Credentials,
      `${display(url)} carries a user name or password; image URLs may not hold credentials`,
    );
  }
}

/** The URL's host without IPv6 brackets; WHATWG parsing has already turned decimal, hex and short IPv4 forms into dotted quads. */
function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

async function addressesOf(host: string, context: HopContext): Promise<ResolvedAddress[]> {
  if (isIpLiteral(host)) return [{ address: host, family: host.includes(':') ? 6 : 4 }];
  let addresses: ResolvedAddress[];
  try {
    addresses = await abortable(context.resolve(host), context.signal);
  } catch (error) {
    if (context.signal.aborted) throw error;
    throw refusal(context.field, ImageUrlRefusal.Unreachable, `the host ${truncate(host)} does not resolve`);
  }
  if (addresses.length === 0)
    throw refusal(context.field, ImageUrlRefusal.Unreachable, `the host ${truncate(host)} does not resolve`);
  return addresses;
}

/** A `lookup` that answers with the addresses already checked, so the socket cannot go anywhere else. */
function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all === true) {
      callback(
        null,
        addresses.map(({ address, family }) => ({ address, family })),
      );
      return;
    }
    const wanted =
      addresses.find(
        ({ family }) => options.family === undefined || options.family === 0 || options.family === family,
      ) ?? addresses[0];
    if (wanted === undefined) callback(new Error('no address'), '', 4);
    else callback(null, wanted.address, wanted.family);
  };
}

/** One GET to the checked addresses; its answer is a redirect to follow or the body, read under the size cap. */
function request(
  url: URL,
  host: string,
  addresses: readonly ResolvedAddress[],
  context: HopContext,
): Promise<HopOutcome> {
  const { field, signal } = context;
  // The signal destroys the request (and its response) on abort; racing it also settles a response cut mid-body.
  return abortable(
    new Promise<HopOutcome>((resolve, reject) => {
      const transport = url.protocol === 'https:' ? https : http;
      const req = transport.request({
        protocol: url.protocol,
        hostname: host,
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        // Only these: never a cookie, an Authorization or anything else of the caller's request.
        headers: { host: url.host, accept: 'image/*', 'user-agent': context.userAgent },
        setHost: false,
        agent: false,
        lookup: pinnedLookup(addresses),
        signal,
      });
      req.on('error', (error) => {
        if (signal.aborted) reject(signal.reason);
        else
          reject(
            refusal(
              field,
              ImageUrlRefusal.Unreachable,
              `${display(url)} could not be fetched (${describeNetworkError(error)})`,
            ),
          );
      });
      req.on('response', (res) => {
        try {
          const location = redirectOf(res, url, field);
          if (location !== undefined) {
            res.resume();
            req.destroy();
            resolve({ kind: 'redirect', location });
            return;
          }
          checkAnswer(res, url, context);
        } catch (error) {
          req.destroy();
          reject(error);
          return;
        }
        readBody(res, url, context).then(
          (bytes) => resolve({ kind: 'body', bytes }),
          (error: unknown) => {
            req.destroy();
            reject(error);
          },
        );
      });
      req.end();
    }),
    signal,
  );
}

/** Where a redirect leads, or undefined for an answer that is not one; a redirect without a usable Location is refused. */
function redirectOf(res: http.IncomingMessage, url: URL, field: string): URL | undefined {
  const status = res.statusCode ?? 0;
  if (!REDIRECT_STATUSES.has(status)) return undefined;
  const location = res.headers.location;
  try {
    if (location !== undefined) return new URL(location, url);
  } catch {
    // Refused below, like a missing Location.
  }
  throw refusal(field, ImageUrlRefusal.Redirects, `${display(url)} answered ${status} without a valid Location`);
}

/** A 2xx answer whose declared length (if any) is within the cap; the body is not read when it is not. */
function checkAnswer(res: http.IncomingMessage, url: URL, { field, maxBytes }: HopContext): void {
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 299)
    throw refusal(
      field,
      ImageUrlRefusal.HttpStatus,
      `${display(url)} answered HTTP ${status}; expected 2xx with the image`,
    );
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes)
    throw tooLarge(field, url, maxBytes, `declares ${declared} bytes`);
}

/** The body, refused (and the caller cuts the connection) as soon as it passes the cap. */
function readBody(res: http.IncomingMessage, url: URL, { field, maxBytes, signal }: HopContext): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      outcome();
    };
    const brokeOff = (error?: unknown): void =>
      settle(() =>
        reject(
          signal.aborted
            ? signal.reason
            : refusal(
                field,
                ImageUrlRefusal.Unreachable,
                `${display(url)} broke off while sending (${describeNetworkError(error)})`,
              ),
        ),
      );
    res.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes) settle(() => reject(tooLarge(field, url, maxBytes, `sent more than ${maxBytes} bytes`)));
      else chunks.push(chunk);
    });
    res.on('end', () => settle(() => resolve(Buffer.concat(chunks, received))));
    res.on('error', brokeOff);
    res.on('close', () => {
      if (!res.complete) brokeOff();
    });
  });
}

function tooLarge(field: string, url: URL, maxBytes: number, what: string): AppError {
  return refusal(
    field,
    ImageUrlRefusal.TooLarge,
    `${display(url)} ${what}, over the image limit of ${maxBytes} bytes (MAX_IMAGE_BYTES)`,
  );
}

function refusal(field: string, reason: ImageUrlRefusal, message: string): AppError {
  return new AppError(ErrorCode.BadUserInput, `${field}: ${message}`, { field, refusal: reason });
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function describeNetworkError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'connection failed';
}

/** A URL as messages show it: no query string (it may hold tokens), at most 100 characters. */
function display(url: URL): string {
  return truncate(`${url.protocol}//${url.host}${url.pathname}`);
}

function truncate(text: string, max = 100): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
