import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../../src/errors.js';
import { snapshotDir } from '../../../../src/clip/hub/cacheLayout.js';
import { fetchModel, type HubOptions } from '../../../../src/clip/hub/fetchModel.js';
import { fetchModelFiles, HubError } from '../../../../src/clip/hub/index.js';
import { hubFileUrl } from '../../../../src/clip/hub/transport.js';
import { requiredFiles } from '../../../../src/clip/layouts/hfClip.js';
import { startFakeHub, writeFakeModelRepo, sha256, type FakeHub } from '../../../utils/fakeHub.js';
import { refusedPort } from '../../../utils/refusedPort.js';

const REPO = 'test-owner/tiny-clip';
const SOURCE = { repo: REPO, revision: 'main' };
const FILES = requiredFiles('fp32', 'towers');
const TEXT = 'onnx/text_model.onnx';

let tmp: string;
let repoDir: string;
let cacheDir: string;
let hub: FakeHub | undefined;

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hub-test-'));
  repoDir = path.join(tmp, 'repo');
  cacheDir = path.join(tmp, 'cache');
  await writeFakeModelRepo(repoDir);
});

afterEach(async () => {
  await hub?.close();
  hub = undefined;
  await fs.rm(tmp, { recursive: true, force: true });
});

async function startHub(options: { token?: string; lfsRedirect?: boolean; listing?: boolean } = {}): Promise<FakeHub> {
  hub = await startFakeHub({ repos: { [REPO]: repoDir }, ...options });
  return hub;
}

function opts(extra: Partial<HubOptions> = {}): HubOptions {
  return {
    cacheDir,
    endpoint: hub?.url ?? 'http://127.0.0.1:9',
    files: FILES,
    offline: false,
    progress: false,
    retryDelayMs: 0,
    ...extra,
  };
}

async function expectSameFiles(dir: string, files: readonly string[]): Promise<void> {
  for (const file of files) {
    const [got, want] = await Promise.all([fs.readFile(path.join(dir, file)), fs.readFile(path.join(repoDir, file))]);
    expect(sha256(got), file).toBe(sha256(want));
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

function captureLogger(): { logger: pino.Logger; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), text: () => lines.join('') };
}

describe('hubFileUrl and snapshotDir', () => {
  it('should build resolve URLs with encoded revision and path segments', () => {
    expect(hubFileUrl('https://hub.example/', { repo: 'a/b', revision: 'refs/pr/1' }, 'onnx/my model.onnx')).toBe(
      'https://hub.example/a/b/resolve/refs%2Fpr%2F1/onnx/my%20model.onnx',
    );
  });

  it('should place a revision under {owner}--{name}/{revision}', () => {
    expect(snapshotDir('/c', { repo: 'Xenova/clip-vit-base-patch32', revision: 'main' })).toBe(
      path.join('/c', 'Xenova--clip-vit-base-patch32', 'main'),
    );
  });

  it('should refuse ids and revisions that could escape the cache', () => {
    expect(() => snapshotDir('/c', { repo: '../etc', revision: 'main' })).toThrow(/invalid hub id/);
    expect(() => snapshotDir('/c', { repo: 'a/b', revision: '../../x' })).toThrow(/invalid revision/);
  });

  it('should refuse file paths with .. segments', async () => {
    await expect(fetchModel(SOURCE, opts({ files: ['../secret'] }))).rejects.toThrow(/repo-relative file path/);
  });
});

describe('fetchModel', () => {
  it('should download every file into an empty cache, following the LFS redirect', async () => {
    const fake = await startHub();
    const dir = await fetchModel(SOURCE, opts());
    expect(dir).toBe(snapshotDir(cacheDir, SOURCE));
    await expectSameFiles(dir, FILES);
    // Nothing but the final files is left behind (no .incomplete, no .lock).
    expect((await listFiles(dir)).sort()).toEqual([...FILES].map((f) => path.join(...f.split('/'))).sort());
    const textRequests = fake.requests.filter((r) => r.file === TEXT).map((r) => r.kind);
    expect(textRequests).toEqual(['resolve', 'cdn']);
  });

  it('should serve a second call from the cache with the hub stopped', async () => {
    const fake = await startHub();
    const endpoint = fake.url;
    await fetchModel(SOURCE, opts());
    await fake.close();
    hub = undefined;
    const dir = await fetchModel(SOURCE, opts({ endpoint, maxRetries: 0 }));
    await expectSameFiles(dir, FILES);
  });

  it('should resume an interrupted download with a Range request', async () => {
    const fake = await startHub();
    fake.setFault(REPO, TEXT, { kind: 'cut', afterBytes: 100_000 });
    const dir = await fetchModel(SOURCE, opts());
    const ranges = fake.contentRequests(TEXT).map((r) => r.range);
    expect(ranges).toEqual([undefined, 'bytes=100000-']);
    await expectSameFiles(dir, [TEXT]);
  });

  it('should keep the partial file after an interruption and resume it on the next call', async () => {
    const fake = await startHub();
    fake.setFault(REPO, TEXT, { kind: 'cut', afterBytes: 70_000 });
    const error = await fetchModel(SOURCE, opts({ maxRetries: 0 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubError);
    expect((error as HubError).message).toMatch(
      /download of onnx\/text_model\.onnx from http:\/\/127\.0\.0\.1:\d+\/test-owner\/tiny-clip\/resolve\/main\/onnx\/text_model\.onnx was interrupted after 70000 bytes/,
    );
    const finalPath = path.join(snapshotDir(cacheDir, SOURCE), TEXT);
    expect(existsSync(finalPath)).toBe(false);
    const kept = (await fs.stat(`${finalPath}.incomplete`)).size;
    expect(kept).toBe(70_000);

    const dir = await fetchModel(SOURCE, opts({ maxRetries: 0 }));
    expect(fake.contentRequests(TEXT).map((r) => r.range)).toEqual([undefined, `bytes=${kept}-`]);
    await expectSameFiles(dir, [TEXT]);
  });

  it('should restart from byte 0 when the server ignores Range', async () => {
    const fake = await startHub();
    fake.setFault(REPO, TEXT, { kind: 'cut', afterBytes: 50_000 });
    await fetchModel(SOURCE, opts({ maxRetries: 0 })).catch(() => undefined);
    fake.setFault(REPO, TEXT, { kind: 'ignoreRange' });
    const dir = await fetchModel(SOURCE, opts({ maxRetries: 0 }));
    expect(fake.contentRequests(TEXT).map((r) => r.range)).toEqual([undefined, 'bytes=50000-']);
    await expectSameFiles(dir, [TEXT]);
  });

  it('should finish a partial that already holds every byte without downloading it again', async () => {
    const fake = await startHub();
    const partial = path.join(snapshotDir(cacheDir, SOURCE), `${TEXT}.incomplete`);
    await fs.mkdir(path.dirname(partial), { recursive: true });
    await fs.copyFile(path.join(repoDir, TEXT), partial);
    const dir = await fetchModel(SOURCE, opts());
    expect(fake.contentRequests(TEXT)).toEqual([]);
    await expectSameFiles(dir, [TEXT]);
  });

  it('should delete a download whose sha256 differs from the hub and name both values', async () => {
    const fake = await startHub();
    fake.setFault(REPO, TEXT, { kind: 'corrupt' });
    const want = sha256(await fs.readFile(path.join(repoDir, TEXT)));
    const error = (await fetchModel(SOURCE, opts()).catch((e: unknown) => e)) as HubError;
    expect(error).toBeInstanceOf(HubError);
    expect(error.reason).toBe('integrity');
    expect(error.code).toBe(ErrorCode.ModelUnavailable);
    expect(error.message).toContain('onnx/text_model.onnx');
    expect(error.message).toContain(`the hub reports ${want}, got `);
    const finalPath = path.join(snapshotDir(cacheDir, SOURCE), TEXT);
    expect(existsSync(finalPath)).toBe(false);
    expect(existsSync(`${finalPath}.incomplete`)).toBe(false);
    // An integrity failure is not retried: one content request.
    expect(fake.contentRequests(TEXT)).toHaveLength(1);
  });

  it('should say which file was not found, where, and what to check on a 404', async () => {
    await startHub();
    const error = (await fetchModel(SOURCE, opts({ files: [...FILES.slice(0, 3), 'onnx/text_model_fp16.onnx'] })).catch(
      (e: unknown) => e,
    )) as HubError;
    expect(error).toBeInstanceOf(HubError);
    expect(error.reason).toBe('not-found');
    expect(error.file).toBe('onnx/text_model_fp16.onnx');
    expect(error.message).toMatch(
      /onnx\/text_model_fp16\.onnx of test-owner\/tiny-clip@main not found at http:\/\/127\.0\.0\.1:\d+\/test-owner\/tiny-clip\/resolve\/main\/onnx\/text_model_fp16\.onnx \(check the repo id, revision and precision\)/,
    );
  });

  it('should report a gated repo (401) and ask for HF_TOKEN', async () => {
    await startHub({ token: 'hf_secret' });
    const error = (await fetchModel(SOURCE, opts()).catch((e: unknown) => e)) as HubError;
    expect(error.reason).toBe('unauthorized');
    expect(error.message).toMatch(
      /test-owner\/tiny-clip@main is gated or private \(HTTP 401 for \S+\.json at http:.*\): set HF_TOKEN/,
    );
    // The small files go first, so nothing large was started for a repo we cannot read.
    expect(hub?.requests.some((r) => r.file?.endsWith('.onnx'))).toBe(false);
  });

  it('should send HF_TOKEN as a Bearer token and never log it', async () => {
    const fake = await startHub({ token: 'hf_secret' });
    const { logger, text } = captureLogger();
    const dir = await fetchModel(SOURCE, opts({ token: 'hf_secret', logger }));
    await expectSameFiles(dir, FILES);
    const resolves = fake.requests.filter((r) => r.kind === 'resolve');
    expect(resolves.length).toBe(FILES.length);
    expect(resolves.every((r) => r.authorization === 'Bearer hf_secret')).toBe(true);
    expect(text()).toContain('model file downloaded');
    expect(text()).not.toContain('hf_secret');
  });

  it('should say 403 means the token has no access', async () => {
    await startHub({ token: 'hf_secret' });
    await expect(fetchModel(SOURCE, opts({ token: 'hf_other' }))).rejects.toThrow(
      /gated or private \(HTTP 403 .*\): the HF_TOKEN given has no access to it/,
    );
  });

  it('should use only the cache when offline, and say what is missing where', async () => {
    const fake = await startHub();
    const missing = (await fetchModel(SOURCE, opts({ offline: true })).catch((e: unknown) => e)) as HubError;
    expect(missing.reason).toBe('offline-miss');
    expect(missing.message).toBe(
      `HF_HUB_OFFLINE=1 and ${REPO}@main/config.json is not in the cache at ${path.join(snapshotDir(cacheDir, SOURCE), 'config.json')}`,
    );
    expect(fake.requests).toEqual([]);

    await fetchModel(SOURCE, opts());
    const before = fake.requests.length;
    const dir = await fetchModel(SOURCE, opts({ offline: true, optionalFiles: ['special_tokens_map.json'] }));
    await expectSameFiles(dir, FILES);
    expect(fake.requests.length).toBe(before);
  });

  it('should share one download between concurrent calls', async () => {
    const fake = await startHub();
    fake.setFault(REPO, TEXT, { kind: 'delay', ms: 150 });
    const [a, b, c] = await Promise.all([
      fetchModel(SOURCE, opts()),
      fetchModel(SOURCE, opts()),
      fetchModel(SOURCE, opts()),
    ]);
    expect(new Set([a, b, c]).size).toBe(1);
    for (const file of FILES) expect(fake.contentRequests(file), file).toHaveLength(1);
    await expectSameFiles(a, FILES);
  });

  it('should skip optional files the hub does not have and not ask again', async () => {
    const fake = await startHub();
    const optionalFiles = ['tokenizer_config.json', 'special_tokens_map.json'];
    const dir = await fetchModel(SOURCE, opts({ optionalFiles }));
    await expectSameFiles(dir, ['tokenizer_config.json']);
    expect(existsSync(path.join(dir, 'special_tokens_map.json'))).toBe(false);

    const endpoint = fake.url;
    await fake.close();
    hub = undefined;
    // With the hub gone, a second call succeeds only if it remembers the 404 instead of asking again.
    await expect(fetchModel(SOURCE, opts({ endpoint, optionalFiles, maxRetries: 0 }))).resolves.toBe(dir);
  });

  it('should name the URL and the cause when the hub cannot be reached', async () => {
    const port = await refusedPort();
    const error = (await fetchModel(SOURCE, opts({ endpoint: `http://127.0.0.1:${port}`, maxRetries: 1 })).catch(
      (e: unknown) => e,
    )) as HubError;
    expect(error.reason).toBe('network');
    // Small files are fetched in parallel: whichever failed first is named.
    expect(error.message).toMatch(
      new RegExp(
        `cannot download (\\S+) from http://127\\.0\\.0\\.1:${port}/test-owner/tiny-clip/resolve/main/\\1: fetch failed`,
      ),
    );
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('should retry a 503 and then succeed', async () => {
    const fake = await startHub();
    fake.setFault(REPO, 'config.json', { kind: 'status', status: 503, times: 2 });
    const dir = await fetchModel(SOURCE, opts());
    await expectSameFiles(dir, FILES);
    expect(fake.requests.filter((r) => r.file === 'config.json')).toHaveLength(3);
  });

  it('should download LFS files served without a redirect, checking their sha256', async () => {
    const fake = await startHub({ lfsRedirect: false });
    fake.setFault(REPO, TEXT, { kind: 'corrupt' });
    await expect(fetchModel(SOURCE, opts())).rejects.toThrow(/sha256 mismatch/);
    fake.setFault(REPO, TEXT, undefined);
    const dir = await fetchModel(SOURCE, opts());
    await expectSameFiles(dir, FILES);
    expect(fake.requests.some((r) => r.kind === 'cdn')).toBe(false);
  });

  it('should wait for a download another process holds the lock of', async () => {
    const fake = await startHub();
    const finalPath = path.join(snapshotDir(cacheDir, SOURCE), TEXT);
    await fs.mkdir(path.dirname(finalPath), { recursive: true });
    // A live pid: ours, as another process's would be.
    await fs.writeFile(`${finalPath}.lock`, String(process.pid));
    const pending = fetchModel(SOURCE, opts());
    await new Promise((r) => setTimeout(r, 400));
    expect(fake.contentRequests(TEXT)).toEqual([]);
    await fs.rm(`${finalPath}.lock`);
    const dir = await pending;
    await expectSameFiles(dir, FILES);
  });

  it('should take over a lock whose process is gone', async () => {
    await startHub();
    const finalPath = path.join(snapshotDir(cacheDir, SOURCE), TEXT);
    await fs.mkdir(path.dirname(finalPath), { recursive: true });
    await fs.writeFile(`${finalPath}.lock`, '4194303'); // above Linux's pid_max: never a live process
    const dir = await fetchModel(SOURCE, opts());
    await expectSameFiles(dir, FILES);
    expect(existsSync(`${finalPath}.lock`)).toBe(false);
  });

  it('should abandon a running download when another file fails, and release its lock', async () => {
    const fake = await startHub();
    fake.setFault(REPO, 'onnx/vision_model.onnx', { kind: 'trickle', chunkBytes: 16_384, intervalMs: 20 });
    // The cut comes ~200 ms into the text download, while the vision one is trickling.
    fake.setFault(REPO, TEXT, { kind: 'cut', afterBytes: 1_000 });
    await expect(fetchModel(SOURCE, opts({ maxRetries: 0 }))).rejects.toThrow(/text_model\.onnx .* was interrupted/);
    expect(fake.contentRequests('onnx/vision_model.onnx')).toHaveLength(1);
    fake.setFault(REPO, 'onnx/vision_model.onnx', undefined);
    const started = Date.now();
    const dir = await fetchModel(SOURCE, opts());
    await expectSameFiles(dir, FILES);
    // The abandoned download let go of its lock at once (no waiting out the trickle, ~600 ms).
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('should stop when the signal aborts', async () => {
    const fake = await startHub();
    fake.setFault(REPO, TEXT, { kind: 'delay', ms: 2_000 });
    const controller = new AbortController();
    const pending = fetchModel(SOURCE, opts({ signal: controller.signal }));
    setTimeout(() => controller.abort(new Error('shutting down')), 100);
    await expect(pending).rejects.toThrow('shutting down');
  });
});

describe('fetchModelFiles', () => {
  it('should fetch the configs, the tokenizer and both towers of a precision', async () => {
    const fake = await startHub();
    const dir = await fetchModelFiles(SOURCE, 'fp32', {
      cacheDir,
      endpoint: fake.url,
      offline: false,
      progress: false,
    });
    await expectSameFiles(dir, [...FILES, 'tokenizer_config.json']);
    expect(existsSync(path.join(dir, 'onnx', 'model.onnx'))).toBe(false);
  });

  it('should fetch the combined graph when the repo has no towers', async () => {
    await fs.rm(path.join(repoDir, 'onnx'), { recursive: true });
    await writeFakeModelRepo(repoDir, { text: 0, vision: 0, combined: 200_000 });
    const fake = await startHub();
    const dir = await fetchModelFiles(SOURCE, 'fp32', {
      cacheDir,
      endpoint: fake.url,
      offline: false,
      progress: false,
      retryDelayMs: 0,
    });
    await expectSameFiles(dir, requiredFiles('fp32', 'combined'));
    expect(existsSync(path.join(dir, TEXT))).toBe(false);
  });

  it('should fetch the combined graph too when asked and present', async () => {
    await writeFakeModelRepo(repoDir, { combined: 200_000 });
    const fake = await startHub();
    const dir = await fetchModelFiles(SOURCE, 'fp32', {
      withScaleFiles: 'always',
      cacheDir,
      endpoint: fake.url,
      offline: false,
      progress: false,
      retryDelayMs: 0,
    });
    await expectSameFiles(dir, [...FILES, 'onnx/model.onnx', 'tokenizer_config.json']);
  });

  it('should name both the towers and the combined graph when a precision is missing (hub without a listing API)', async () => {
    const fake = await startHub({ listing: false });
    await expect(
      fetchModelFiles(SOURCE, 'int8', { cacheDir, endpoint: fake.url, offline: false, progress: false }),
    ).rejects.toThrow(
      /has no int8 graphs: .*(text|vision)_model_quantized\.onnx.* not found.*onnx\/model_quantized\.onnx.* not found/,
    );
  });

  it('should name what the repo has when its listing lacks the precision asked for, before downloading anything', async () => {
    const fake = await startHub();
    await expect(
      fetchModelFiles(SOURCE, 'int8', { cacheDir, endpoint: fake.url, offline: false, progress: false }),
    ).rejects.toThrow(
      /has no int8 graphs \(CLIP_PRECISION=int8 needs onnx\/text_model_quantized\.onnx \+ onnx\/vision_model_quantized\.onnx, or onnx\/model_quantized\.onnx\); it has onnx\/text_model\.onnx, onnx\/vision_model\.onnx/,
    );
    expect(fake.requests.filter((r) => r.kind !== 'listing')).toEqual([]);
  });
});
