/**
 * The built-in model catalogue and the one function that turns a user's model string
 * (`CLIP_MODEL`, `CLIP_MODELS`, a job's `model`) into a {@link ModelSource}.
 *
 * Accepted forms, tried in this order:
 * 1. a catalogue name, case-insensitive, kebab or snake case (`clip-vit-base-patch32`, `CLIP_ViT_Base_Patch32`),
 *    optionally with `@revision`;
 * 2. a local directory: absolute (`/models/clip`), relative (`./clip`, `../clip`), home (`~/clip`), or any
 *    other string that names an existing directory relative to the working directory;
 * 3. a hub id `owner/name` or `owner/name@revision` (revision default `main`).
 *
 * Hub ids and revisions are validated strictly here because hub/fetchModel.ts puts them into URLs and cache paths.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AppError, ErrorCode } from '../errors.js';
import type { ModelSource } from './types.js';

/** One built-in model. */
export interface CatalogueEntry {
  /** The short name, kebab case (`clip-vit-base-patch32`). */
  name: string;
  /** The hub repository (`owner/name`) in the CLIP ONNX layout. */
  repo: string;
  /**
   * The trained logit scale, i.e. `exp(logit_scale)` of the checkpoint (100 for every OpenAI CLIP model),
   * for when the model's own graph does not reveal it.
   */
  logitScale: number | undefined;
  description: string;
}

/** The catalogue name used when no model is configured. */
export const DEFAULT_MODEL_NAME = 'clip-vit-base-patch32';

/** The default hub revision. */
export const DEFAULT_REVISION = 'main';

/**
 * Built-in models. Only ONNX exports whose hub layout (config.json, preprocessor_config.json, tokenizer.json,
 * onnx/{text,vision}_model*.onnx) is known to match what layouts/hfClip.ts reads belong here.
 */
export const CATALOGUE: readonly CatalogueEntry[] = Object.freeze([
  {
    name: 'clip-vit-base-patch32',
    repo: 'Xenova/clip-vit-base-patch32',
    logitScale: 100,
    description: 'OpenAI CLIP ViT-B/32 (224 px, 512-d embeddings); the default: fastest on CPU.',
  },
  {
    name: 'clip-vit-base-patch16',
    repo: 'Xenova/clip-vit-base-patch16',
    logitScale: 100,
    description: 'OpenAI CLIP ViT-B/16 (224 px, 512-d embeddings); ~4.4x the image cost of ViT-B/32, more accurate.',
  },
  {
    name: 'clip-vit-large-patch14',
    repo: 'Xenova/clip-vit-large-patch14',
    logitScale: 100,
    description: 'OpenAI CLIP ViT-L/14 (224 px, 768-d embeddings); the most accurate and much the slowest.',
  },
]);

/** `Clip_ViT_Base_Patch32` → `clip-vit-base-patch32`: the form model names are compared in. */
export function normaliseModelName(name: string): string {
  return name.trim().toLowerCase().replace(/_/g, '-');
}

/**
 * The catalogue entry for a short name (any case, kebab or snake) or for its hub repo id
 * (so `Xenova/clip-vit-base-patch32` also finds the known logit scale); undefined when unknown.
 */
export function findCatalogueEntry(nameOrRepo: string): CatalogueEntry | undefined {
  const key = normaliseModelName(nameOrRepo);
  return CATALOGUE.find((entry) => entry.name === key || entry.repo.toLowerCase() === key);
}

// One part of a hub id: what huggingface_hub's validate_repo_id accepts (word chars, '-', '.'; at most 96;
// starting and ending with a word char); '--' and '..' are refused separately.
const REPO_PART = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?$/;
// A branch, tag, commit sha or `refs/pr/N`. Slashes are allowed (hub/fetchModel.ts encodes them), '..' and empty segments are not.
const REVISION = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;

/** True for `owner/name` ids that are safe to put into a URL path and a cache directory name. */
export function isValidRepoId(repo: string): boolean {
  const parts = repo.split('/');
  return (
    parts.length === 2 &&
    parts.every((part) => REPO_PART.test(part) && !part.includes('--') && !part.includes('..')) &&
    !repo.endsWith('.git')
  );
}

/** True for revisions (branch, tag, commit, `refs/pr/1`) that are safe in a URL and a cache path. */
export function isValidRevision(revision: string): boolean {
  return revision.length <= 255 && REVISION.test(revision) && !revision.split('/').some((s) => s === '.' || s.includes('..'));
}

/** Options of {@link resolveModelSource}. */
export interface ResolveModelSourceOptions {
  /** Base of relative paths; default `process.cwd()`. */
  cwd?: string;
  /** What `~` means; default `os.homedir()`. */
  homeDir?: string;
  /** The input field named in errors (e.g. `model`, `CLIP_MODEL`); default `model`. */
  field?: string;
}

const ACCEPTED_FORMS =
  `a catalogue name (${CATALOGUE.map((e) => e.name).join(', ')}), ` +
  'a local model directory (/abs/path, ./relative, ~/path), or a hub id owner/name[@revision]';

/**
 * Resolves a user's model string. Throws an AppError (BAD_USER_INPUT, with `field`) that names the accepted forms
 * when the string is none of them, and "no such directory" when it looks like a path that does not exist.
 * The local path returned is absolute; nothing is downloaded or read here beyond a `stat`.
 */
export function resolveModelSource(input: string, options: ResolveModelSourceOptions = {}): ModelSource {
  const field = options.field ?? 'model';
  const text = input.trim();
  if (text === '') {
    throw new AppError(ErrorCode.BadUserInput, `${field}: expected ${ACCEPTED_FORMS}, but got an empty string`, {
      field,
    });
  }

  const [base, revision] = splitRevision(text);
  const invalidRevision = (): AppError =>
    new AppError(
      ErrorCode.BadUserInput,
      `${field}: "${revision}" is not a valid revision: expected a branch, tag or commit of letters, digits, '-', '_', '.' or '/'`,
      { field },
    );
  const entry = findByShortName(base);
  if (entry !== undefined) {
    if (revision !== undefined && !isValidRevision(revision)) throw invalidRevision();
    return { kind: 'hub', repo: entry.repo, revision: revision ?? DEFAULT_REVISION };
  }

  const cwd = options.cwd ?? process.cwd();
  if (looksLikePath(text)) {
    const dir = expandPath(text, cwd, options.homeDir ?? os.homedir());
    const kind = statKind(dir);
    if (kind === 'directory') return { kind: 'local', path: dir };
    const why = kind === 'missing' ? 'no such directory' : 'not a directory';
    throw new AppError(ErrorCode.BadUserInput, `${field}: ${why}: ${dir} (from "${text}")`, { field });
  }
  // A bare relative path such as `models/clip` reads like a hub id; an existing directory wins, as in transformers.
  const relative = path.resolve(cwd, text);
  if (statKind(relative) === 'directory') return { kind: 'local', path: relative };

  if (base.includes('/')) {
    if (!isValidRepoId(base)) {
      throw new AppError(
        ErrorCode.BadUserInput,
        `${field}: "${base}" is not a valid hub id: expected owner/name with letters, digits, '-', '_' or '.' ` +
          `(no '--' or '..', at most 96 characters each)`,
        { field },
      );
    }
    if (revision !== undefined && !isValidRevision(revision)) throw invalidRevision();
    return { kind: 'hub', repo: base, revision: revision ?? DEFAULT_REVISION };
  }

  throw new AppError(ErrorCode.BadUserInput, `${field}: expected ${ACCEPTED_FORMS}, but got "${text}"`, { field });
}

/** The user-facing string for a source: `owner/name@rev` (without `@main`) or the local path. */
export function formatModelSource(source: ModelSource): string {
  switch (source.kind) {
    case 'local':
      return source.path;
    case 'hub':
      return source.revision === DEFAULT_REVISION ? source.repo : `${source.repo}@${source.revision}`;
  }
}

function findByShortName(name: string): CatalogueEntry | undefined {
  const key = normaliseModelName(name);
  return CATALOGUE.find((entry) => entry.name === key);
}

function splitRevision(text: string): [string, string | undefined] {
  const at = text.lastIndexOf('@');
  // '@' inside a path (`./a@b/c`) is not a revision marker; paths are checked before the revision matters.
  if (at <= 0) return [text, undefined];
  return [text.slice(0, at), text.slice(at + 1)];
}

function looksLikePath(text: string): boolean {
  return (
    path.isAbsolute(text) ||
    text === '.' ||
    text === '..' ||
    text === '~' ||
    /^(?:\.{1,2}|~)[/\\]/.test(text) ||
    /^[A-Za-z]:[/\\]/.test(text)
  );
}

function expandPath(text: string, cwd: string, homeDir: string): string {
  if (text === '~') return homeDir;
  if (/^~[/\\]/.test(text)) return path.join(homeDir, text.slice(2));
  return path.resolve(cwd, text);
}

function statKind(p: string): 'directory' | 'other' | 'missing' {
  try {
    return fs.statSync(p).isDirectory() ? 'directory' : 'other';
  } catch {
    return 'missing';
  }
}
