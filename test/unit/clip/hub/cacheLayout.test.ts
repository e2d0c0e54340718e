import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cachedFile,
  lockFile,
  noExistMarker,
  partialFile,
  repoRelativeFiles,
  snapshotDir,
} from '../../../../src/clip/hub/cacheLayout.js';

const SOURCE = { repo: 'Xenova/clip-vit-base-patch32', revision: 'refs/pr/1' };

describe('the cache layout', () => {
  it('should keep a repo revision in {owner}--{name}/{revision, URI-encoded}', () => {
    expect(snapshotDir('/c', SOURCE)).toBe(path.resolve('/c/Xenova--clip-vit-base-patch32/refs%2Fpr%2F1'));
  });

  it('should put a file, its partial download, its lock and its absence marker under their hub paths', () => {
    const dir = snapshotDir('/c', SOURCE);
    const file = cachedFile(dir, 'onnx/text_model.onnx');
    expect(file).toBe(path.join(dir, 'onnx', 'text_model.onnx'));
    expect(partialFile(file)).toBe(`${file}.incomplete`);
    expect(lockFile(file)).toBe(`${file}.lock`);
    expect(noExistMarker(dir, 'onnx/x.json')).toBe(path.join(dir, '.no_exist', 'onnx', 'x.json'));
  });

  it('should refuse paths that would leave the snapshot, and drop repeats', () => {
    expect(repoRelativeFiles(['a.json', 'onnx/b.onnx', 'a.json'])).toEqual(['a.json', 'onnx/b.onnx']);
    for (const bad of ['', '../x', 'onnx//x', './x', 'a\\b'])
      expect(() => repoRelativeFiles([bad]), bad).toThrow(/repo-relative file path/);
  });
});
