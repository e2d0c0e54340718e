/**
 * A local stand-in for the Hugging Face hub's file URLs, for tests that must never touch the network.
 *
 * Serves `GET|HEAD /{owner}/{name}/resolve/{revision}/{path}` from a directory per repo (any revision) the way the
 * hub does: LFS files (`*.onnx`, `*.onnx_data`) answer 302 to `/cdn/…` on the same server with `X-Linked-Size` and
 * `X-Linked-Etag` (their sha256) on that first response; other files answer 200 with a git-blob `ETag`. Both honour
 * `Range: bytes=N-` (206). `GET /api/models/{owner}/{name}/revision/{revision}` answers the model-info JSON whose
 * `siblings` list every file of the repo's directory (the listing immich-layout downloads follow). Optional bearer-token auth, and per-file fault injection: a connection cut after N bytes,
 * corrupted bytes, a status code, a server that ignores Range, a slow response.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { OPENAI_CLIP_PREPROCESSOR_JSON } from '../fixtures/clipConfigs.js';

/** Something to go wrong when a file is served. */
export type FakeHubFault =
  /** Send the headers for the whole body, then only `afterBytes` bytes, then cut the connection (`times` default 1). */
  | { kind: 'cut'; afterBytes: number; times?: number }
  /** Serve the file with its first byte flipped (same length), under the real file's size and sha256 headers. */
  | { kind: 'corrupt' }
  /** Answer the resolve URL with this status (`times` default: always). */
  | { kind: 'status'; status: number; times?: number }
  /** Answer every request with 200 and the whole file, as a server without Range support does. */
  | { kind: 'ignoreRange' }
  /** Wait this long before sending the content (to overlap concurrent requests). */
  | { kind: 'delay'; ms: number }
  /** Send the content slowly: `chunkBytes` every `intervalMs` (a download still running when something aborts it). */
  | { kind: 'trickle'; chunkBytes: number; intervalMs: number };

/** What the fake hub saw: one entry per HTTP request, in order. */
export interface FakeHubRequest {
  method: string;
  url: string;
  /** `resolve` (the hub URL), `cdn` (the redirect target) or `listing` (the model-info API). */
  kind: 'resolve' | 'cdn' | 'listing' | 'other';
  repo: string | undefined;
  file: string | undefined;
  range: string | undefined;
  authorization: string | undefined;
}

export interface FakeHubOptions {
  /** Repo id (`owner/name`) → the directory served for it, at every revision. */
  repos: Record<string, string>;
  /** When set, resolve URLs need `Authorization: Bearer {token}`: 401 without, 403 with another token. */
  token?: string;
  /** Redirect LFS files to `/cdn/…` as the real hub does; false serves them directly. Default true. */
  lfsRedirect?: boolean;
  /** `X-Repo-Commit` on every resolve answer. Default 40 × `c`. */
  commit?: string;
  /** Serve the model-info API (the file listing). Default true; false answers it 404, as a mirror without the API would. */
  listing?: boolean;
}

export interface FakeHub {
  /** `http://127.0.0.1:{port}`: use as the hub endpoint. */
  url: string;
  requests: FakeHubRequest[];
  /** Sets (or, with undefined, clears) the fault for one file of one repo. */
  setFault(repo: string, file: string, fault: FakeHubFault | undefined): void;
  /** Requests that fetched `file`'s content (resolve answers with a body, and cdn requests). */
  contentRequests(file: string): FakeHubRequest[];
  close(): Promise<void>;
}

/** Graphs and their external data (any name) are LFS files on the hub; configs and tokenizers are not. */
const isLfs = (file: string): boolean => !/\.(?:json|txt|md)$/i.test(file);

async function listFiles(root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .filter((f) => !f.split('/').some((segment) => segment.startsWith('.')))
    .sort();
}

/** Starts the fake hub on 127.0.0.1, port 0. Close it with `close()` (e.g. in afterEach). */
export async function startFakeHub(options: FakeHubOptions): Promise<FakeHub> {
  const lfsRedirect = options.lfsRedirect ?? true;
  const commit = options.commit ?? 'c'.repeat(40);
  const faults = new Map<string, { fault: FakeHubFault; used: number }>();
  const requests: FakeHubRequest[] = [];

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
      else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const parsed = parsePath(url.pathname);
    const record: FakeHubRequest = {
      method: req.method ?? 'GET',
      url: url.pathname,
      kind: parsed?.kind ?? 'other',
      repo: parsed?.repo,
      file: parsed?.file,
      range: header(req, 'range'),
      authorization: header(req, 'authorization'),
    };
    requests.push(record);
    const listing = /^\/api\/models\/([^/]+)\/([^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (listing !== null) {
      record.kind = 'listing';
      const repo = `${decodeURIComponent(listing[1]!)}/${decodeURIComponent(listing[2]!)}`;
      record.repo = repo;
      if (options.listing === false) return void res.writeHead(404).end('Not found');
      if (options.token !== undefined && record.authorization !== `Bearer ${options.token}`) {
        return void res.writeHead(record.authorization === undefined ? 401 : 403).end('Unauthorized');
      }
      const dir = options.repos[repo];
      if (dir === undefined)
        return void res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end('Repository not found');
      const siblings = (await listFiles(dir)).map((rfilename) => ({ rfilename }));
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ id: repo, sha: commit, siblings }));
    }
    if (parsed === undefined) return void res.writeHead(404).end('Not found');

    const root = options.repos[parsed.repo];
    if (root === undefined)
      return void res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end('Repository not found');
    const key = `${parsed.repo}/${parsed.file}`;
    const entry = faults.get(key);

    if (parsed.kind === 'resolve') {
      if (options.token !== undefined) {
        const auth = record.authorization;
        if (auth === undefined) return void res.writeHead(401).end('Unauthorized');
        if (auth !== `Bearer ${options.token}`) return void res.writeHead(403).end('Forbidden');
      }
      if (entry?.fault.kind === 'status' && (entry.fault.times === undefined || entry.used < entry.fault.times)) {
        entry.used += 1;
        return void res.writeHead(entry.fault.status).end(`status ${entry.fault.status}`);
      }
    }

    const filePath = path.resolve(root, ...parsed.file.split('/'));
    if (!filePath.startsWith(path.resolve(root) + path.sep)) return void res.writeHead(400).end('Bad path');
    const content = await fs.readFile(filePath).catch(() => undefined);
    if (content === undefined) {
      return void res
        .writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': commit })
        .end('Entry not found');
    }

    const lfs = isLfs(parsed.file);
    const meta: http.OutgoingHttpHeaders =
      parsed.kind === 'resolve'
        ? lfs
          ? {
              'x-repo-commit': commit,
              'x-linked-size': String(content.length),
              'x-linked-etag': `"${sha256(content)}"`,
              etag: `"${sha256(content)}"`,
            }
          : { 'x-repo-commit': commit, etag: `"${gitBlobSha1(content)}"` }
        : {};
    if (parsed.kind === 'resolve' && lfs && lfsRedirect) {
      const location = `/cdn/${parsed.repo}/${encodeURIComponent(parsed.revision)}/${parsed.file.split('/').map(encodeURIComponent).join('/')}`;
      return void res.writeHead(302, { ...meta, location, 'content-length': '0' }).end();
    }

    // Content: from the resolve answer itself, or from the cdn.
    if (entry?.fault.kind === 'delay') await new Promise((r) => setTimeout(r, (entry.fault as { ms: number }).ms));
    let body: Buffer = content;
    if (entry?.fault.kind === 'corrupt') {
      body = Buffer.from(content);
      body[0] = (body[0] ?? 0) ^ 0xff;
    }
    const range = entry?.fault.kind === 'ignoreRange' ? undefined : parseRange(record.range);
    let status = 200;
    const headers: http.OutgoingHttpHeaders = {
      ...meta,
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
    };
    if (range !== undefined) {
      if (range >= body.length) {
        return void res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      }
      status = 206;
      headers['content-range'] = `bytes ${range}-${body.length - 1}/${body.length}`;
      body = body.subarray(range);
    }
    headers['content-length'] = String(body.length);
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return void res.end();

    if (entry?.fault.kind === 'cut' && entry.used < (entry.fault.times ?? 1)) {
      entry.used += 1;
      const cutAt = Math.min(entry.fault.afterBytes, body.length);
      // Flush the first bytes, give the client time to take them (a web stream that errors drops the chunks it
      // still queues), then close: the client sees a body shorter than Content-Length.
      res.write(body.subarray(0, cutAt), () => setTimeout(() => res.socket?.destroy(), 200));
      return;
    }
    if (entry?.fault.kind === 'trickle') {
      const { chunkBytes, intervalMs } = entry.fault;
      for (let at = 0; at < body.length && !res.destroyed; at += chunkBytes) {
        res.write(body.subarray(at, at + chunkBytes));
        await new Promise((r) => setTimeout(r, intervalMs));
      }
      res.end();
      return;
    }
    res.end(body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setFault(repo, file, fault) {
      if (fault === undefined) faults.delete(`${repo}/${file}`);
      else faults.set(`${repo}/${file}`, { fault, used: 0 });
    },
    contentRequests(file) {
      return requests.filter(
        (r) =>
          r.file === file &&
          r.method === 'GET' &&
          (r.kind === 'cdn' || (r.kind === 'resolve' && !(isLfs(file) && lfsRedirect))),
      );
    },
    close() {
      return new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

interface ParsedPath {
  kind: 'resolve' | 'cdn';
  repo: string;
  revision: string;
  file: string;
}

function parsePath(pathname: string): ParsedPath | undefined {
  const parts = pathname
    .split('/')
    .slice(1)
    .map((p) => decodeURIComponent(p));
  if (parts[0] === 'cdn' && parts.length >= 5) {
    return { kind: 'cdn', repo: `${parts[1]}/${parts[2]}`, revision: parts[3] ?? '', file: parts.slice(4).join('/') };
  }
  if (parts[2] === 'resolve' && parts.length >= 5) {
    return {
      kind: 'resolve',
      repo: `${parts[0]}/${parts[1]}`,
      revision: parts[3] ?? '',
      file: parts.slice(4).join('/'),
    };
  }
  return undefined;
}

function parseRange(value: string | undefined): number | undefined {
  const match = value === undefined ? null : /^bytes=(\d+)-$/.exec(value);
  return match === null ? undefined : Number(match[1]);
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The sha256 (hex) the hub reports for LFS files. */
export function sha256(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

/** The git blob sha1 the hub reports as the ETag of regular files. */
function gitBlobSha1(content: Uint8Array): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

/** Sizes (bytes) of the stand-in .onnx files {@link writeFakeModelRepo} writes. */
export interface FakeModelRepoSizes {
  text?: number;
  vision?: number;
  /** The combined graph; 0 leaves it out. */
  combined?: number;
}

/**
 * Writes a model directory in the hub layout with valid JSON configs and deterministic pseudo-random bytes in place of
 * the ONNX graphs: enough for download and file-parsing tests, not for ONNX Runtime (use TINY_MODEL_DIR for that).
 * Sizes default to 300 KB / 500 KB / 0 (no combined graph).
 */
export async function writeFakeModelRepo(dir: string, sizes: FakeModelRepoSizes = {}): Promise<void> {
  await fs.mkdir(path.join(dir, 'onnx'), { recursive: true });
  const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
  await fs.writeFile(
    path.join(dir, 'config.json'),
    json({
      model_type: 'clip',
      projection_dim: 512,
      logit_scale_init_value: 2.6592,
      text_config: { max_position_embeddings: 77, hidden_size: 512 },
      vision_config: { image_size: 224, patch_size: 32, hidden_size: 768 },
    }),
  );
  await fs.writeFile(path.join(dir, 'preprocessor_config.json'), json(OPENAI_CLIP_PREPROCESSOR_JSON));
  await fs.writeFile(
    path.join(dir, 'tokenizer.json'),
    json({ version: '1.0', model: { type: 'BPE', vocab: {}, merges: [] } }),
  );
  await fs.writeFile(path.join(dir, 'tokenizer_config.json'), json({ model_max_length: 77 }));
  const graphs: [string, number][] = [
    ['onnx/text_model.onnx', sizes.text ?? 300_000],
    ['onnx/vision_model.onnx', sizes.vision ?? 500_000],
    ['onnx/model.onnx', sizes.combined ?? 0],
  ];
  for (const [file, size] of graphs) {
    if (size > 0) await fs.writeFile(path.join(dir, file), pseudoRandomBytes(size, file));
  }
}

/** Deterministic bytes (a seeded xorshift), so test files are the same on every run. */
export function pseudoRandomBytes(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  let x = [...seed].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) | 0, 0x9e3779b9) | 1;
  for (let i = 0; i < size; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
