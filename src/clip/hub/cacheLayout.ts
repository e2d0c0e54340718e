/**
 * Where the hub's files live on disk: one directory per repo and revision, so a model directory is usable as it is.
 * ```
 * {cacheDir}/{owner}--{name}/{revision, URI-encoded}/
 *   config.json  onnx/text_model.onnx  …      complete files only, under their hub paths
 *   onnx/text_model.onnx.incomplete            a download in progress or interrupted; resumed with `Range`
 *   onnx/text_model.onnx.lock                  held (pid inside) by the process downloading that file
 *   .no_exist/tokenizer_config.json            an optional file the hub answered 404 for: not asked again
 *   .listing.json                              the revision's file listing, so offline starts know the layout
 * ```
 * Repo ids cannot contain `--` (catalogue.ts checks), so `{owner}--{name}` is unambiguous.
 *
 * Revalidation: a complete cached file is used without any network access, online or offline. That is exact for
 * commit shas and tags; a branch such as `main` stays at the files first downloaded until the cache directory is
 * deleted (or another revision is asked for). We chose this over huggingface_hub's per-file HEAD because a server
 * must start offline, and quickly, from a model it already has.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError, ErrorCode } from '../../errors.js';
import { isValidRepoId, isValidRevision } from '../catalogue.js';

/** A repo at a revision. */
export interface HubRepoRef {
  /** `owner/name`. */
  repo: string;
  /** Branch, tag or commit sha. */
  revision: string;
}

/** Where a repo revision's file listing is cached, beside its files. */
export const LISTING_FILE = '.listing.json';

/** The local directory that holds a repo revision's files (whether or not they are there yet). */
export function snapshotDir(cacheDir: string, source: HubRepoRef): string {
  assertValidRef(source);
  const [owner, name] = source.repo.split('/') as [string, string];
  return path.join(path.resolve(cacheDir), `${owner}--${name}`, encodeURIComponent(source.revision));
}

/** A repo file's complete copy in a snapshot directory. */
export function cachedFile(dir: string, file: string): string {
  return path.join(dir, ...file.split('/'));
}

/** The download in progress beside a complete file's path. */
export function partialFile(finalPath: string): string {
  return `${finalPath}.incomplete`;
}

/** The lock held by the process downloading a file. */
export function lockFile(finalPath: string): string {
  return `${finalPath}.lock`;
}

/** The marker of an optional file the hub does not have. */
export function noExistMarker(dir: string, file: string): string {
  return path.join(dir, '.no_exist', ...file.split('/'));
}

export async function writeNoExistMarker(dir: string, file: string): Promise<void> {
  const marker = noExistMarker(dir, file);
  await fs.mkdir(path.dirname(marker), { recursive: true });
  await fs.writeFile(marker, '');
}

/**
 * Checks repo-relative file paths and removes repeats: `/`-separated, no empty, `.` or `..` segments (they become URL
 * and cache paths).
 */
export function repoRelativeFiles(files: readonly string[]): string[] {
  for (const file of files) {
    const segments = file.split('/');
    if (
      file === '' ||
      segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\0'))
    ) {
      throw new TypeError(`Expected a repo-relative file path like "onnx/model.onnx", got "${file}"`);
    }
  }
  return [...new Set(files)];
}

export async function isFile(p: string): Promise<boolean> {
  const stat = await fs.stat(p).catch(() => undefined);
  return stat?.isFile() === true;
}

/** Makes a rename in `dir` durable; skipped where directories cannot be opened (Windows). */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r').catch(() => undefined);
  if (handle === undefined) return;
  await handle.sync().catch(() => undefined);
  await handle.close();
}

function assertValidRef(source: HubRepoRef): void {
  if (!isValidRepoId(source.repo))
    throw new AppError(ErrorCode.BadUserInput, `invalid hub id "${source.repo}": expected owner/name`, {
      field: 'model',
    });
  if (!isValidRevision(source.revision)) {
    throw new AppError(ErrorCode.BadUserInput, `invalid revision "${source.revision}" of ${source.repo}`, {
      field: 'model',
    });
  }
}
