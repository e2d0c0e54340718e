import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../../src/errors.js';
import {
  CATALOGUE,
  DEFAULT_MODEL_NAME,
  findCatalogueEntry,
  formatModelSource,
  isValidRepoId,
  isValidRevision,
  resolveModelSource,
} from '../../../src/clip/catalogue.js';

let tmp: string;
let home: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'catalogue-test-'));
  home = path.join(tmp, 'home');
  await fs.mkdir(path.join(tmp, 'models', 'clip'), { recursive: true });
  await fs.mkdir(path.join(home, 'my-clip'), { recursive: true });
  await fs.writeFile(path.join(tmp, 'a-file'), 'not a directory');
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const resolve = (input: string) => resolveModelSource(input, { cwd: tmp, homeDir: home });

function errorOf(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error('expected an error');
}

describe('catalogue', () => {
  it('should map the three OpenAI CLIP names to their Xenova ONNX repos with a logit scale of 100', () => {
    expect(CATALOGUE.slice(0, 3).map((e) => [e.name, e.repo, e.logitScale])).toEqual([
      ['clip-vit-base-patch32', 'Xenova/clip-vit-base-patch32', 100],
      ['clip-vit-base-patch16', 'Xenova/clip-vit-base-patch16', 100],
      ['clip-vit-large-patch14', 'Xenova/clip-vit-large-patch14', 100],
    ]);
    expect(DEFAULT_MODEL_NAME).toBe('clip-vit-base-patch32');
  });

  it("should resolve FES's names: open-clip-vit-b32 to the XLM-R base model, clip-vit-large-patch14 to OpenAI ViT-L/14", () => {
    for (const name of ['open-clip-vit-b32', 'open_clip_vit_b32', 'Open-CLIP-ViT-B32']) {
      expect(resolveModelSource(name)).toEqual({
        kind: 'hub',
        repo: 'immich-app/XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k',
        revision: 'main',
      });
    }
    expect(resolveModelSource('clip_vit_large_patch14')).toEqual({
      kind: 'hub',
      repo: 'Xenova/clip-vit-large-patch14',
      revision: 'main',
    });
    expect(findCatalogueEntry('xlm-roberta-base-ViT-B-32')?.aliases).toContain('open-clip-vit-b32');
  });

  it('should list the issue 8 models with layout, tokenizer family, scoring and embedding size, and no invented SigLIP values', () => {
    const byName = new Map(CATALOGUE.map((e) => [e.name, e]));
    expect(byName.get('xlm-roberta-base-vit-b-32')).toMatchObject({
      layout: 'immich',
      tokenizerFamily: 'xlm-r',
      scoring: 'softmax',
      embeddingSize: 512,
    });
    expect(byName.get('vit-b-32-openai')).toMatchObject({
      repo: 'immich-app/ViT-B-32__openai',
      layout: 'immich',
      logitScale: 100,
    });
    expect(byName.get('vit-l-14-openai')).toMatchObject({ repo: 'immich-app/ViT-L-14__openai', embeddingSize: 768 });
    expect(byName.get('xlm-roberta-large-vit-b-16plus')).toMatchObject({
      repo: 'immich-app/XLM-Roberta-Large-Vit-B-16Plus',
      embeddingSize: 640,
    });
    expect(byName.get('siglip-base-patch16-224')).toMatchObject({
      repo: 'Xenova/siglip-base-patch16-224',
      layout: 'hf-siglip',
      embeddingSize: 768,
    });
    for (const name of ['vit-b-16-siglip', 'vit-b-16-siglip2', 'siglip-base-patch16-224']) {
      expect(byName.get(name)).toMatchObject({
        scoring: 'sigmoid',
        tokenizerFamily: 'siglip',
        logitScale: undefined,
        logitBias: undefined,
      });
    }
    expect(findCatalogueEntry('immich-app/ViT-B-16-SigLIP2__webli')?.name).toBe('vit-b-16-siglip2');
    // Any immich-app/<name> is a valid hub id, catalogued or not.
    expect(resolveModelSource('immich-app/nllb-clip-base-siglip__v1')).toEqual({
      kind: 'hub',
      repo: 'immich-app/nllb-clip-base-siglip__v1',
      revision: 'main',
    });
  });

  it('should find entries by name in any case, kebab or snake, and by repo id', () => {
    expect(findCatalogueEntry('clip_vit_base_patch16')?.repo).toBe('Xenova/clip-vit-base-patch16');
    expect(findCatalogueEntry('CLIP-ViT-Large-Patch14')?.repo).toBe('Xenova/clip-vit-large-patch14');
    expect(findCatalogueEntry('Xenova/clip-vit-base-patch32')?.name).toBe('clip-vit-base-patch32');
    expect(findCatalogueEntry('xlm-roberta-base-ViT-B-32')?.repo).toBe(
      'immich-app/XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k',
    );
    expect(findCatalogueEntry('unknown-model')).toBeUndefined();
  });
});

describe('resolveModelSource', () => {
  it('should resolve catalogue names (kebab, snake, any case) to the hub at main', () => {
    expect(resolve('clip-vit-base-patch32')).toEqual({
      kind: 'hub',
      repo: 'Xenova/clip-vit-base-patch32',
      revision: 'main',
    });
    expect(resolve(' clip_vit_base_patch32 ')).toEqual({
      kind: 'hub',
      repo: 'Xenova/clip-vit-base-patch32',
      revision: 'main',
    });
    expect(resolve('CLIP_ViT_Large_Patch14@v1.0')).toEqual({
      kind: 'hub',
      repo: 'Xenova/clip-vit-large-patch14',
      revision: 'v1.0',
    });
  });

  it('should resolve hub ids with an optional revision', () => {
    expect(resolve('laion/CLIP-ViT-B-32-laion2B-s34B-b79K')).toEqual({
      kind: 'hub',
      repo: 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K',
      revision: 'main',
    });
    expect(resolve('Xenova/clip-vit-base-patch16@refs/pr/3')).toEqual({
      kind: 'hub',
      repo: 'Xenova/clip-vit-base-patch16',
      revision: 'refs/pr/3',
    });
  });

  it('should resolve absolute, ./relative and ~ paths of existing directories to absolute local paths', () => {
    const dir = path.join(tmp, 'models', 'clip');
    expect(resolve(dir)).toEqual({ kind: 'local', path: dir });
    expect(resolve('./models/clip')).toEqual({ kind: 'local', path: dir });
    expect(resolve('./models/../models/clip/')).toEqual({ kind: 'local', path: dir });
    expect(resolve('~/my-clip')).toEqual({ kind: 'local', path: path.join(home, 'my-clip') });
  });

  it('should prefer an existing relative directory over a hub id of the same spelling', () => {
    expect(resolve('models/clip')).toEqual({ kind: 'local', path: path.join(tmp, 'models', 'clip') });
  });

  it('should name the path of a missing or non-directory path', () => {
    const missing = errorOf(() => resolve('./nope/model'));
    expect(missing.code).toBe(ErrorCode.BadUserInput);
    expect(missing.message).toBe(`model: no such directory: ${path.join(tmp, 'nope', 'model')} (from "./nope/model")`);
    expect(errorOf(() => resolve('/definitely/not/here')).message).toContain('no such directory: /definitely/not/here');
    expect(errorOf(() => resolve('./a-file')).message).toContain(`not a directory: ${path.join(tmp, 'a-file')}`);
  });

  it('should list the accepted forms for anything else, naming the field', () => {
    for (const input of ['', 'gpt-4', 'clip-vit-huge', 'just some words']) {
      const error = errorOf(() => resolveModelSource(input, { cwd: tmp, field: 'CLIP_MODEL' }));
      expect(error.code).toBe(ErrorCode.BadUserInput);
      expect(error.field).toBe('CLIP_MODEL');
      expect(error.message).toMatch(
        /^CLIP_MODEL: expected a catalogue name \(clip-vit-base-patch32, clip-vit-base-patch16, clip-vit-large-patch14, xlm-roberta-base-vit-b-32, .*\), a local model directory .*, or a hub id owner\/name\[@revision\], but got/,
      );
    }
  });

  it('should refuse hub ids and revisions unsafe for URLs and cache paths', () => {
    for (const input of [
      'a/b/c',
      'owner/na me',
      'own--er/name',
      'owner/na..me',
      'owner/.hidden',
      'owner/name-',
      'o/n%2F..',
      'owner/x.git',
    ]) {
      expect(errorOf(() => resolve(input)).message, input).toMatch(/is not a valid hub id|expected a catalogue name/);
    }
    for (const input of [
      'owner/name@..',
      'owner/name@a/../b',
      'owner/name@',
      'owner/name@a b',
      'clip-vit-base-patch32@x/../y',
    ]) {
      expect(errorOf(() => resolve(input)).message, input).toMatch(/is not a valid revision/);
    }
  });

  it('should format sources back to the user-facing string', () => {
    expect(formatModelSource({ kind: 'hub', repo: 'a/b', revision: 'main' })).toBe('a/b');
    expect(formatModelSource({ kind: 'hub', repo: 'a/b', revision: 'v2' })).toBe('a/b@v2');
    expect(formatModelSource({ kind: 'local', path: '/m' })).toBe('/m');
  });
});

describe('id validation', () => {
  it('should accept real hub ids and revisions', () => {
    expect(isValidRepoId('Xenova/clip-vit-base-patch32')).toBe(true);
    expect(isValidRepoId('openai/clip-vit-large-patch14-336')).toBe(true);
    expect(isValidRepoId('user_1/model.v2')).toBe(true);
    expect(isValidRevision('main')).toBe(true);
    expect(isValidRevision('3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268')).toBe(true);
    expect(isValidRevision('refs/pr/12')).toBe(true);
  });

  it('should refuse traversal, separators and over-long parts', () => {
    expect(isValidRepoId('../etc')).toBe(false);
    expect(isValidRepoId('a/..')).toBe(false);
    expect(isValidRepoId(`a/${'x'.repeat(97)}`)).toBe(false);
    expect(isValidRepoId('a\\b/c')).toBe(false);
    expect(isValidRevision('../x')).toBe(false);
    expect(isValidRevision('/main')).toBe(false);
    expect(isValidRevision('a//b')).toBe(false);
  });
});
