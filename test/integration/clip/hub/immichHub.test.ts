import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LISTING_FILE } from '../../../../src/clip/hub/cacheLayout.js';
import { fetchModelFiles } from '../../../../src/clip/hub/index.js';
import { loadModelSpec } from '../../../../src/clip/layouts/index.js';
import { startFakeHub, type FakeHub } from '../../../utils/fakeHub.js';
import { IMMICH_TEST_MODELS } from '../../../utils/testModel.js';

const REPO = 'immich-app/XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k';
const SOURCE = { repo: REPO, revision: 'main' };

let tmp: string;
let repoDir: string;
let cacheDir: string;
let hub: FakeHub | undefined;

async function listFiles(root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .filter((f) => !f.startsWith('.'))
    .sort();
}

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'immich-hub-'));
  repoDir = path.join(tmp, 'repo');
  cacheDir = path.join(tmp, 'cache');
  // The generated XLM-R model with external data, plus what immich's repos also hold for other runtimes.
  await fs.cp(IMMICH_TEST_MODELS.xlmr.dir, repoDir, { recursive: true });
  await fs.rm(path.join(repoDir, '.stamp.json'), { force: true });
  await fs.mkdir(path.join(repoDir, 'visual', 'fp16'), { recursive: true });
  await fs.mkdir(path.join(repoDir, 'textual', 'rknpu', 'rk3588'), { recursive: true });
  await fs.writeFile(path.join(repoDir, 'visual', 'fp16', 'model.armnn'), 'armnn');
  await fs.writeFile(path.join(repoDir, 'textual', 'rknpu', 'rk3588', 'model.rknn'), 'rknn');
  await fs.writeFile(path.join(repoDir, 'README.md'), '# immich export\n');
});

afterEach(async () => {
  await hub?.close();
  hub = undefined;
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('fetchModelFiles on an immich-layout repo', () => {
  it('should download the files its listing names, external data included, skipping other runtimes, and load them offline afterwards', async () => {
    hub = await startFakeHub({ repos: { [REPO]: repoDir } });
    const dir = await fetchModelFiles(SOURCE, 'fp32', { cacheDir, endpoint: hub.url, offline: false, progress: false });
    const expected = (await listFiles(repoDir)).filter((f) => !/\.(armnn|rknn)$/.test(f) && f !== 'README.md');
    expect(expected.some((f) => f.startsWith('visual/') && !f.endsWith('model.onnx') && !f.endsWith('.json'))).toBe(
      true,
    );
    expect((await listFiles(dir)).filter((f) => !f.endsWith('.lock'))).toEqual(expected);
    expect(hub.requests.filter((r) => r.kind === 'listing')).toHaveLength(1);
    for (const file of expected) expect(hub.contentRequests(file), file).toHaveLength(1);
    expect(await fs.readFile(path.join(dir, LISTING_FILE), 'utf8')).toContain('visual/model.onnx');
    expect((await loadModelSpec(dir, 'fp32')).layout).toBe('immich');

    // Offline (HF_HUB_OFFLINE): the cached listing and files are enough; the hub is not asked anything.
    const seen = hub.requests.length;
    await hub.close();
    hub = undefined;
    expect(
      await fetchModelFiles(SOURCE, 'fp32', {
        cacheDir,
        endpoint: 'http://127.0.0.1:9',
        offline: true,
        progress: false,
      }),
    ).toBe(dir);
    expect(seen).toBeGreaterThan(0);
    // Even without the cached listing (files put into the cache by hand), an immich snapshot is used offline.
    await fs.rm(path.join(dir, LISTING_FILE));
    expect(
      await fetchModelFiles(SOURCE, 'fp32', {
        cacheDir,
        endpoint: 'http://127.0.0.1:9',
        offline: true,
        progress: false,
      }),
    ).toBe(dir);
  });

  it('should refuse CLIP_PRECISION=fp16 for a repo with only fp32 graphs, naming what exists, before any download', async () => {
    hub = await startFakeHub({ repos: { [REPO]: repoDir } });
    await expect(
      fetchModelFiles(SOURCE, 'fp16', { cacheDir, endpoint: hub.url, offline: false, progress: false }),
    ).rejects.toThrow(
      /immich's layout and has only fp32 ONNX graphs \(visual\/model\.onnx, textual\/model\.onnx\); CLIP_PRECISION=fp16 .* set CLIP_PRECISION=fp32/,
    );
    expect(hub.requests.filter((r) => r.kind !== 'listing')).toEqual([]);
  });

  it('should send HF_TOKEN for the listing of a gated repo, and say to set it when missing', async () => {
    hub = await startFakeHub({ repos: { [REPO]: repoDir }, token: 'secret' });
    await expect(
      fetchModelFiles(SOURCE, 'fp32', { cacheDir, endpoint: hub.url, offline: false, progress: false }),
    ).rejects.toThrow(/gated or private \(HTTP 401 for its file listing.*set HF_TOKEN/);
    const dir = await fetchModelFiles(SOURCE, 'fp32', {
      cacheDir,
      endpoint: hub.url,
      token: 'secret',
      offline: false,
      progress: false,
    });
    expect((await loadModelSpec(dir, 'fp32')).layout).toBe('immich');
    expect(hub.requests.filter((r) => r.kind === 'listing').map((r) => r.authorization)).toEqual([
      undefined,
      'Bearer secret',
    ]);
  });

  it('should name the missing file when a listed repo lacks part of the layout', async () => {
    await fs.rm(path.join(repoDir, 'textual', 'tokenizer.json'));
    hub = await startFakeHub({ repos: { [REPO]: repoDir } });
    await expect(
      fetchModelFiles(SOURCE, 'fp32', { cacheDir, endpoint: hub.url, offline: false, progress: false }),
    ).rejects.toThrow(/lacks textual\/tokenizer\.json/);
  });
});
