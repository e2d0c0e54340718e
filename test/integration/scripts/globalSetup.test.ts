import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTinyModel } from '../../setup/models.js';

describe('globalSetup ensureTinyModel', () => {
  let parent: string;
  let dir: string;
  beforeAll(async () => {
    parent = await mkdtemp(path.join(os.tmpdir(), 'global-setup-'));
    dir = path.join(parent, 'tiny');
  });
  afterAll(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('should generate once when several setups race, and leave nothing else behind', async () => {
    const results = await Promise.all([ensureTinyModel(dir), ensureTinyModel(dir), ensureTinyModel(dir)]);
    expect(results.filter((r) => r === 'generated')).toHaveLength(1);
    expect(await readdir(parent)).toEqual(['tiny']);
    expect(await readdir(path.join(dir, 'onnx'))).toContain('model.onnx');
  });

  it('should reuse a current model and regenerate one whose stamp is stale', async () => {
    expect(await ensureTinyModel(dir)).toBe('current');
    const stampFile = path.join(dir, '.stamp.json');
    const stamp = JSON.parse(await readFile(stampFile, 'utf8')) as { key: string };
    await writeFile(stampFile, JSON.stringify({ ...stamp, key: 'older generator' }));
    expect(await ensureTinyModel(dir)).toBe('generated');
    expect(await ensureTinyModel(dir)).toBe('current');
  });

  it('should regenerate when a listed file is missing', async () => {
    await rm(path.join(dir, 'onnx', 'text_model.onnx'));
    expect(await ensureTinyModel(dir)).toBe('generated');
  });
});
