/**
 * The only module that talks to the Hugging Face hub: a repo's files → a local directory, downloaded once into a cache.
 *
 * Cache layout (one directory per repo and revision, so a model directory is usable as it is):
 * ```
 * {cacheDir}/{owner}--{name}/{revision, URI-encoded}/
 *   config.json  onnx/text_model.onnx  …      complete files only, under their hub paths
 *   onnx/text_model.onnx.incomplete            a download in progress or interrupted; resumed with `Range`
 *   onnx/text_model.onnx.lock                  held (pid inside) by the process downloading that file
 *   .no_exist/tokenizer_config.json            an optional file the hub answered 404 for: not asked again
 * ```
 * Repo ids cannot contain `--` (catalogue.ts checks), so `{owner}--{name}` is unambiguous.
 *
 * Revalidation: a complete cached file is used without any network access, online or offline. That is exact for
 * commit shas and tags; a branch such as `main` stays at the files first downloaded until the cache directory is
 * deleted (or another revision is asked for). We chose this over huggingface_hub's per-file HEAD because a server
 * must start offline, and quickly, from a model it already has.
 *
 * Integrity: the size and, for LFS files, the sha256 that the hub reports on the FIRST response of `resolve`
 * (`X-Linked-Size`, `X-Linked-Etag`; before any redirect to the CDN) are checked before the atomic rename.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AppError, ErrorCode } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';
import { isValidRepoId, isValidRevision } from '../catalogue.js';
import { ProgressReporter } from './downloadProgress.js';
import { withFileLock } from './fileLock.js';
import { CONFIG_FILES, OPTIONAL_MODEL_FILES, combinedModelFile, towerModelFiles } from '../layouts/hfClip.js';
import { isHfSiglipDir } from '../layouts/hfSiglip.js';
import {
  IMMICH_CONFIG_FILE,
  IMMICH_PREPROCESS_CFG,
  IMMICH_TEXTUAL_MODEL,
  IMMICH_TOKENIZER_FILE,
  IMMICH_VISUAL_MODEL,
  immichFilesToFetch,
  isImmichDir,
  isImmichListing,
} from '../layouts/immich.js';
import type { Precision } from '../types.js';

/** The public hub; `HF_ENDPOINT` points elsewhere (a mirror). */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/** `~/.cache/clip-server/models`: the cache when `MODEL_CACHE_DIR` is not set. */
export function defaultCacheDir(homeDir: string = os.homedir()): string {
  return path.join(homeDir, '.cache', 'clip-server', 'models');
}

/** A repo at a revision. */
export interface HubRepoRef {
  /** `owner/name`. */
  repo: string;
  /** Branch, tag or commit sha. */
  revision: string;
}

/** Options of {@link fetchModel}. The config layer maps the environment onto them; nothing here reads `process.env`. */
export interface HubOptions {
  /** Root of the download cache. Default {@link defaultCacheDir} (`MODEL_CACHE_DIR` in config). */
  cacheDir?: string;
  /** Hub base URL. Default {@link DEFAULT_HUB_ENDPOINT} (`HF_ENDPOINT` in config). */
  endpoint?: string;
  /** Sent as `Authorization: Bearer …` to the hub's origin only, never logged (`HF_TOKEN`). */
  token?: string | undefined;
  /** Use the cache only; never touch the network (`HF_HUB_OFFLINE=1`). Default false. */
  offline?: boolean;
  /** Files the model needs, `/`-separated paths in the repo. Any one missing is an error. */
  files: readonly string[];
  /** Files fetched when the repo has them; a 404 (or offline, a cache miss) skips them silently. */
  optionalFiles?: readonly string[];
  /** A progress bar on stderr: default only when stderr is a TTY; false → log lines only. */
  progress?: boolean;
  /** Default: silent. */
  logger?: Logger;
  /** Injectable for tests; default the global fetch. */
  fetch?: typeof fetch;
  /** Aborts this call; a download shared with another caller goes on while anyone still waits for it. */
  signal?: AbortSignal;
  /** Retries of a file after a network failure, an interrupted body or a 5xx, each resuming. Default 3. */
  maxRetries?: number;
  /** Pause before retry n is n × this. Default 1000 ms. */
  retryDelayMs?: number;
}

/** Why a hub file could not be had; `HubError.reason`. */
export type HubErrorReason = 'unauthorized' | 'not-found' | 'network' | 'http' | 'integrity' | 'offline-miss';

/** A file that could not be downloaded: MODEL_UNAVAILABLE, with the file, URL and reason for callers that branch on it. */
export class HubError extends AppError {
  override name = 'HubError';

  constructor(
    readonly reason: HubErrorReason,
    readonly file: string,
    readonly url: string | undefined,
    message: string,
    readonly retryable = false,
    cause?: unknown,
  ) {
    super(ErrorCode.ModelUnavailable, message, cause === undefined ? {} : { cause });
  }
}

/** `{endpoint}/{owner}/{name}/resolve/{revision}/{path}`, each path segment and the revision URI-encoded. */
export function hubFileUrl(endpoint: string, source: HubRepoRef, file: string): string {
  const base = endpoint.replace(/\/+$/, '');
  const filePath = file.split('/').map(encodeURIComponent).join('/');
  return `${base}/${source.repo}/resolve/${encodeURIComponent(source.revision)}/${filePath}`;
}

/** The local directory that holds a repo revision's files (whether or not they are there yet). */
export function snapshotDir(cacheDir: string, source: HubRepoRef): string {
  assertValidRef(source);
  const [owner, name] = source.repo.split('/') as [string, string];
  return path.join(path.resolve(cacheDir), `${owner}--${name}`, encodeURIComponent(source.revision));
}

/**
 * Makes sure `files` (and whichever `optionalFiles` the repo has) are in the cache and returns the local directory
 * holding them. Small files are fetched first so a wrong id or a gated repo fails before a large download starts.
 * Throws a {@link HubError} naming the file, the URL and why.
 */
export async function fetchModel(source: HubRepoRef, options: HubOptions): Promise<string> {
  const dir = snapshotDir(options.cacheDir ?? defaultCacheDir(), source);
  const required = uniqueFiles(options.files);
  const optional = uniqueFiles(options.optionalFiles ?? []).filter((f) => !required.includes(f));
  const ctx = createContext(source, dir, options);
  const entries = [
    ...required.map((file) => ({ file, optional: false })),
    ...optional.map((file) => ({ file, optional: true })),
  ];
  // Graphs and their external data (any name) are large; configs and tokenizers are small.
  const isLarge = (file: string): boolean => !/\.(?:json|txt|md|model)$/i.test(file);

  // A required failure stops this call's other downloads (shared ones go on if another caller still waits).
  const callAbort = new AbortController();
  const onAbort = (): void => callAbort.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();
  try {
    for (const [phase, limit] of [
      [entries.filter((e) => !isLarge(e.file)), 4],
      [entries.filter((e) => isLarge(e.file)), 2],
    ] as const) {
      // Offline there is nothing to download, only files to look for: one at a time, so the error names the first missing
      // file in the order asked for, not whichever check answered first.
      await runPool(phase, ctx.offline ? 1 : limit, async ({ file, optional: isOptional }) => {
        try {
          await ensureFile(ctx, file, isOptional, callAbort.signal);
        } catch (error) {
          if (isOptional && !callAbort.signal.aborted) {
            ctx.logger.warn({ repo: source.repo, file, err: errorMessage(error) }, 'optional model file skipped');
            return;
          }
          callAbort.abort(error);
          throw error;
        }
      });
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    ctx.progress.stop();
  }
  return dir;
}

/** Options of {@link fetchModelFiles}: the hub settings, less the file lists it decides. */
export interface FetchModelFilesOptions extends Omit<HubOptions, 'files' | 'optionalFiles'> {
  /**
   * Also fetch the combined `onnx/model*.onnx` when the repo has it, as a source of the trained logit scale: always
   * (true), never (false), or `'for-siglip'`: only for a Hugging Face SigLIP export (its config.json's `model_type`),
   * whose trained scale and bias are in that graph alone. It is as large as both towers together. Default false.
   */
  withCombined?: boolean | 'for-siglip';
}

/** Where a repo revision's file listing is cached, beside its files (so offline starts know the layout). */
export const LISTING_FILE = '.listing.json';

/** `{endpoint}/api/models/{owner}/{name}/revision/{revision}`: the hub's model-info API, whose `siblings` list the files. */
export function hubListingUrl(endpoint: string, source: HubRepoRef): string {
  return `${endpoint.replace(/\/+$/, '')}/api/models/${source.repo}/revision/${encodeURIComponent(source.revision)}`;
}

/**
 * The files of a repo revision (`/`-separated paths), as the hub's model-info API lists them, cached in the snapshot
 * directory; undefined when they cannot be listed (offline without a cached listing, or a mirror without the API).
 * A private or gated repo is an error (HubError `unauthorized`), as it would be for its files.
 */
export async function fetchRepoListing(
  source: HubRepoRef,
  options: Omit<HubOptions, 'files' | 'optionalFiles'>,
): Promise<string[] | undefined> {
  const dir = snapshotDir(options.cacheDir ?? defaultCacheDir(), source);
  const cached = path.join(dir, LISTING_FILE);
  const text = await fs.readFile(cached, 'utf8').catch(() => undefined);
  if (text !== undefined) {
    try {
      const parsed = JSON.parse(text) as { files?: unknown };
      if (Array.isArray(parsed.files) && parsed.files.every((f) => typeof f === 'string')) return parsed.files;
    } catch {
      // A torn listing is fetched again below.
    }
  }
  const logger = options.logger ?? silentLogger();
  if (options.offline === true) return undefined;
  const endpoint = options.endpoint ?? DEFAULT_HUB_ENDPOINT;
  const url = hubListingUrl(endpoint, source);
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'clip-server' };
  const token = options.token === '' ? undefined : options.token;
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  let response: Response;
  try {
    response = await (options.fetch ?? globalThis.fetch)(url, {
      headers,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } catch (error) {
    logger.debug(
      { repo: source.repo, url, err: causeText(error) },
      'file listing unavailable; falling back to the known file names',
    );
    return undefined;
  }
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel();
    const hint = token === undefined ? 'set HF_TOKEN' : 'the HF_TOKEN given has no access to it';
    throw new HubError(
      'unauthorized',
      LISTING_FILE,
      url,
      `${source.repo}@${source.revision} is gated or private (HTTP ${response.status} for its file listing at ${url}): ${hint}`,
    );
  }
  if (!response.ok) {
    await response.body?.cancel();
    logger.debug(
      { repo: source.repo, url, status: response.status },
      'file listing unavailable; falling back to the known file names',
    );
    return undefined;
  }
  let files: string[];
  try {
    const body = (await response.json()) as { siblings?: { rfilename?: unknown }[] };
    files = (body.siblings ?? []).map((s) => s.rfilename).filter((f): f is string => typeof f === 'string');
  } catch (error) {
    logger.debug(
      { repo: source.repo, url, err: causeText(error) },
      'file listing unreadable; falling back to the known file names',
    );
    return undefined;
  }
  await fs.mkdir(dir, { recursive: true });
  const temporary = `${cached}.tmp-${process.pid}`;
  await fs.writeFile(
    temporary,
    `${JSON.stringify({ repo: source.repo, revision: source.revision, files }, null, 2)}\n`,
  );
  await fs.rename(temporary, cached);
  return files;
}

/**
 * Fetches what a model needs at a precision, in whichever layout its repo is (from its file listing):
 * - immich's (`visual/model.onnx`, `textual/model.onnx`): config.json and every file under `visual/` and `textual/` the
 *   listing names (external data included), except other runtimes' files (`*.armnn`, `*.rknn`, …); fp32 only.
 * - Hugging Face's (see layouts/hfClip.ts): the configs, the tokenizer and the two towers, or, when the repo has no towers
 *   at that precision, the combined graph.
 * Without a listing (offline with an older cache, a mirror without the API) the Hugging Face file names are tried.
 * Returns the local directory, to be read with `loadModelSpec(dir, precision)`. Throws a {@link HubError} naming the
 * file, the URL and why; a precision the repo lacks is an error naming the graphs it has.
 */
export async function fetchModelFiles(
  source: HubRepoRef,
  precision: Precision,
  options: FetchModelFilesOptions,
): Promise<string> {
  const { withCombined = false, ...hub } = options;
  const listing = await fetchRepoListing(source, hub);
  const what = `${source.repo}@${source.revision}`;
  const url = hubListingUrl(hub.endpoint ?? DEFAULT_HUB_ENDPOINT, source);
  if (listing !== undefined && isImmichListing(listing)) {
    if (precision !== 'fp32') {
      throw new HubError(
        'not-found',
        IMMICH_VISUAL_MODEL,
        url,
        `${what} is in immich's layout and has only fp32 ONNX graphs (${[IMMICH_VISUAL_MODEL, IMMICH_TEXTUAL_MODEL].filter((f) => listing.includes(f)).join(', ')}); ` +
          `CLIP_PRECISION=${precision} asks for a variant it does not have: set CLIP_PRECISION=fp32`,
      );
    }
    const missing = [
      IMMICH_CONFIG_FILE,
      IMMICH_VISUAL_MODEL,
      IMMICH_PREPROCESS_CFG,
      IMMICH_TEXTUAL_MODEL,
      IMMICH_TOKENIZER_FILE,
    ].filter((f) => !listing.includes(f));
    if (missing.length > 0)
      throw new HubError(
        'not-found',
        missing[0]!,
        url,
        `${what} lacks ${missing.join(', ')} (immich layout; its listing at ${url})`,
      );
    return fetchModel(source, { ...hub, files: immichFilesToFetch(listing) });
  }
  if (listing === undefined && hub.offline === true) {
    // Offline without a cached listing (files copied into the cache by hand): an immich-layout snapshot is used as it is.
    const dir = snapshotDir(hub.cacheDir ?? defaultCacheDir(), source);
    if (await isImmichDir(dir)) return dir;
  }
  const towers = towerModelFiles(precision);
  const combined = combinedModelFile(precision);
  if (listing !== undefined) {
    const hasTowers = listing.includes(towers.text) && listing.includes(towers.vision);
    if (!hasTowers && listing.includes(combined)) {
      return fetchModel(source, { ...hub, files: [...CONFIG_FILES, combined], optionalFiles: OPTIONAL_MODEL_FILES });
    }
    if (!hasTowers) {
      const graphs = listing.filter((f) => f.endsWith('.onnx'));
      throw new HubError(
        'not-found',
        towers.vision,
        url,
        `${what} has no ${precision} graphs (CLIP_PRECISION=${precision} needs ${towers.text} + ${towers.vision}, or ${combined}); ` +
          (graphs.length === 0 ? 'it has no .onnx files at all' : `it has ${graphs.join(', ')}`),
      );
    }
  }
  try {
    const towersAnd = (optionalFiles: readonly string[]): Promise<string> =>
      fetchModel(source, { ...hub, files: [...CONFIG_FILES, towers.text, towers.vision], optionalFiles });
    const dir = await towersAnd(withCombined === true ? [...OPTIONAL_MODEL_FILES, combined] : OPTIONAL_MODEL_FILES);
    // Complete files are not fetched again, so the second call costs only the combined graph.
    return withCombined === 'for-siglip' && (await isHfSiglipDir(dir))
      ? await towersAnd([...OPTIONAL_MODEL_FILES, combined])
      : dir;
  } catch (error) {
    const towerMissing =
      error instanceof HubError &&
      (error.reason === 'not-found' || error.reason === 'offline-miss') &&
      (error.file === towers.text || error.file === towers.vision);
    if (!towerMissing) throw error;
    try {
      return await fetchModel(source, {
        ...hub,
        files: [...CONFIG_FILES, combined],
        optionalFiles: OPTIONAL_MODEL_FILES,
      });
    } catch (fallbackError) {
      if (!(fallbackError instanceof HubError && fallbackError.file === combined)) throw fallbackError;
      throw new HubError(
        fallbackError.reason,
        combined,
        fallbackError.url,
        `${source.repo}@${source.revision} has no ${precision} graphs: ${error.message}; and the combined graph: ${fallbackError.message}`,
        false,
        fallbackError,
      );
    }
  }
}

// --- one file --------------------------------------------------------------------------------------------------

interface HubContext {
  source: HubRepoRef;
  dir: string;
  endpoint: string;
  token: string | undefined;
  offline: boolean;
  fetch: typeof fetch;
  logger: Logger;
  maxRetries: number;
  retryDelayMs: number;
  progress: ProgressReporter;
}

function createContext(source: HubRepoRef, dir: string, options: HubOptions): HubContext {
  const maxRetries = options.maxRetries ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  if (!Number.isInteger(maxRetries) || maxRetries < 0)
    throw new TypeError(`Expected maxRetries to be an integer >= 0, got ${maxRetries}`);
  if (!(retryDelayMs >= 0)) throw new TypeError(`Expected retryDelayMs to be >= 0, got ${retryDelayMs}`);
  const endpoint = options.endpoint ?? DEFAULT_HUB_ENDPOINT;
  try {
    new URL(endpoint);
  } catch {
    throw new AppError(ErrorCode.BadUserInput, `hub endpoint: expected an http(s) URL, but got "${endpoint}"`, {
      field: 'HF_ENDPOINT',
    });
  }
  const logger = options.logger ?? silentLogger();
  const bar = options.progress ?? process.stderr.isTTY === true;
  return {
    source,
    dir,
    endpoint,
    token: options.token === '' ? undefined : options.token,
    offline: options.offline ?? false,
    fetch: options.fetch ?? globalThis.fetch,
    logger,
    maxRetries,
    retryDelayMs,
    progress: new ProgressReporter(bar, logger),
  };
}

/** Downloads in flight in this process, by final path: concurrent callers share one (principle 8). */
const inFlight = new Map<string, SharedDownload>();

interface SharedDownload {
  /** The final path. */
  key: string;
  promise: Promise<'downloaded' | 'absent'>;
  controller: AbortController;
  waiters: number;
}

async function ensureFile(ctx: HubContext, file: string, optional: boolean, signal: AbortSignal): Promise<void> {
  const finalPath = path.join(ctx.dir, ...file.split('/'));
  if (await isFile(finalPath)) return;
  if (ctx.offline) {
    if (optional) return;
    throw new HubError(
      'offline-miss',
      file,
      undefined,
      `HF_HUB_OFFLINE=1 and ${ctx.source.repo}@${ctx.source.revision}/${file} is not in the cache at ${finalPath}`,
    );
  }
  if (optional && (await isFile(noExistMarker(ctx.dir, file)))) return;

  let shared = inFlight.get(finalPath);
  if (shared === undefined) {
    const controller = new AbortController();
    const entry: SharedDownload = {
      key: finalPath,
      controller,
      waiters: 0,
      promise: withFileLock(`${finalPath}.lock`, controller.signal, ctx.logger, () =>
        downloadWithRetries(ctx, file, finalPath, optional, controller.signal),
      ),
    };
    shared = entry;
    inFlight.set(finalPath, entry);
    // Evict when settled, so a failure is retried by the next call rather than cached.
    const evict = (): void => {
      if (inFlight.get(finalPath) === entry) inFlight.delete(finalPath);
    };
    entry.promise.then(evict, evict);
  }
  await waitShared(shared, signal);
}

/** Waits for a shared download; when the last waiter gives up, the download is aborted. */
async function waitShared(shared: SharedDownload, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  shared.waiters += 1;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      shared.promise,
      new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    shared.waiters -= 1;
    if (shared.waiters === 0 && signal.aborted) {
      // Nobody wants it any more. Unlist it first so a later caller starts afresh (waiting on the file lock until
      // this one has let go) instead of joining a download that is being aborted.
      if (inFlight.get(shared.key) === shared) inFlight.delete(shared.key);
      shared.controller.abort(new Error(`download of ${shared.key} abandoned by every caller`));
    }
  }
}

async function downloadWithRetries(
  ctx: HubContext,
  file: string,
  finalPath: string,
  optional: boolean,
  signal: AbortSignal,
): Promise<'downloaded' | 'absent'> {
  // Another process may have finished it while we waited for the lock.
  if (await isFile(finalPath)) return 'downloaded';
  await fs.mkdir(path.dirname(finalPath), { recursive: true });
  for (let attempt = 0; ; attempt += 1) {
    try {
      await downloadOnce(ctx, file, finalPath, signal);
      return 'downloaded';
    } catch (error) {
      if (optional && error instanceof HubError && error.reason === 'not-found') {
        await writeNoExistMarker(ctx.dir, file);
        ctx.logger.debug({ repo: ctx.source.repo, file }, 'optional model file not on the hub');
        return 'absent';
      }
      const retryable = error instanceof HubError && error.retryable && !signal.aborted;
      if (!retryable || attempt >= ctx.maxRetries) throw error;
      const delayMs = ctx.retryDelayMs * (attempt + 1);
      ctx.logger.warn(
        { repo: ctx.source.repo, file, attempt: attempt + 1, delayMs, err: error.message },
        'model download failed; retrying',
      );
      await sleep(delayMs, signal);
    }
  }
}

/** What the first response of `resolve` says about the file (before any redirect). */
interface FileMeta {
  size: number | undefined;
  sha256: string | undefined;
  commit: string | undefined;
}

async function downloadOnce(ctx: HubContext, file: string, finalPath: string, signal: AbortSignal): Promise<void> {
  const partialPath = `${finalPath}.incomplete`;
  const url = hubFileUrl(ctx.endpoint, ctx.source, file);
  let offset = (await fs.stat(partialPath).catch(() => undefined))?.size ?? 0;

  const result = await request(ctx, file, url, offset, signal);
  if (result.kind === 'complete') {
    await finish(
      ctx,
      file,
      url,
      partialPath,
      finalPath,
      result.meta,
      offset,
      await hashFile(partialPath, result.meta.sha256),
    );
    return;
  }
  const { response, meta } = result;
  offset = result.offset;

  let expectedSize = meta.size;
  if (response.status === 206) {
    const range = parseContentRange(response.headers.get('content-range'));
    if (range === undefined || range.start !== offset) {
      await response.body?.cancel();
      await fs.rm(partialPath, { force: true });
      throw new HubError(
        'http',
        file,
        url,
        `${file}: ${url} answered a range other than the one asked for; restarting`,
        true,
      );
    }
    expectedSize ??= range.total;
  } else {
    // 200: the whole file, even if we asked for a range (a server that ignores Range): start over.
    offset = 0;
    expectedSize ??= parseLength(response.headers.get('content-length'));
  }

  const hash =
    meta.sha256 === undefined ? undefined : await hashFile(offset > 0 ? partialPath : undefined, meta.sha256);
  const handle = await fs.open(partialPath, offset > 0 ? 'a' : 'w');
  let received = offset;
  const bar = ctx.progress.start(file, expectedSize, offset);
  // An explicit reader, cancelled on abort: a fetch body aborted while we await a disk write was seen to leave the
  // next read pending for ever (Node 20's undici), which would hold the file lock for ever.
  // Node's fetch types its body as a stream of `any`; it yields bytes.
  const reader = response.body?.getReader() as ReadableStreamDefaultReader<Uint8Array> | undefined;
  const onAbort = (): void => void reader?.cancel(signal.reason).catch(() => undefined);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (reader === undefined) break;
      const { done, value } = await reader.read();
      signal.throwIfAborted();
      if (done) break;
      await handle.write(value);
      hash?.update(value);
      received += value.byteLength;
      bar.update(received);
    }
    await handle.sync();
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw new HubError(
      'network',
      file,
      url,
      `download of ${file} from ${url} was interrupted after ${received} bytes (${causeText(error)}); it resumes on the next try`,
      true,
      error,
    );
  } finally {
    signal.removeEventListener('abort', onAbort);
    await handle.close();
    bar.done();
  }
  await finish(ctx, file, url, partialPath, finalPath, { ...meta, size: expectedSize }, received, hash);
}

/** Size and sha256 checks, then the atomic rename. A short file is kept to resume; a wrong one is deleted. */
async function finish(
  ctx: HubContext,
  file: string,
  url: string,
  partialPath: string,
  finalPath: string,
  meta: FileMeta,
  size: number,
  hash: Hash | undefined,
): Promise<void> {
  if (meta.size !== undefined && size < meta.size) {
    throw new HubError(
      'network',
      file,
      url,
      `download of ${file} from ${url} ended after ${size} of ${meta.size} bytes; it resumes on the next try`,
      true,
    );
  }
  if (meta.size !== undefined && size > meta.size) {
    await fs.rm(partialPath, { force: true });
    throw new HubError(
      'integrity',
      file,
      url,
      `${file} from ${url}: size mismatch: the hub reports ${meta.size} bytes, got ${size}; the download was deleted`,
    );
  }
  if (hash !== undefined && meta.sha256 !== undefined) {
    const actual = hash.digest('hex');
    if (actual !== meta.sha256) {
      await fs.rm(partialPath, { force: true });
      throw new HubError(
        'integrity',
        file,
        url,
        `${file} from ${url}: sha256 mismatch: the hub reports ${meta.sha256}, got ${actual}; the download was deleted`,
      );
    }
  }
  await fs.rename(partialPath, finalPath);
  await fsyncDir(path.dirname(finalPath));
  ctx.logger.info(
    { repo: ctx.source.repo, revision: ctx.source.revision, commit: meta.commit, file, bytes: size },
    'model file downloaded',
  );
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/** The outcome of {@link request}: a body to read from `offset`, or a partial that is already whole. */
type RequestResult =
  { kind: 'body'; response: Response; meta: FileMeta; offset: number } | { kind: 'complete'; meta: FileMeta };

/**
 * GETs `url` (with `Range` when resuming from `offset`), following redirects by hand so the hub's own headers are
 * read from the first response, and the token goes only to the hub's origin, never to the CDN.
 */
async function request(
  ctx: HubContext,
  file: string,
  url: string,
  offset: number,
  signal: AbortSignal,
): Promise<RequestResult> {
  const hubOrigin = new URL(ctx.endpoint).origin;
  const partialPath = `${path.join(ctx.dir, ...file.split('/'))}.incomplete`;
  let current = url;
  let meta: FileMeta | undefined;
  let rangeStart = offset;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
    const headers: Record<string, string> = {
      // Sizes are compared with Content-Length; a compressed body would not match it.
      'accept-encoding': 'identity',
      'user-agent': 'clip-server',
    };
    if (ctx.token !== undefined && new URL(current).origin === hubOrigin)
      headers['authorization'] = `Bearer ${ctx.token}`;
    if (rangeStart > 0) headers['range'] = `bytes=${rangeStart}-`;

    let response: Response;
    try {
      response = await ctx.fetch(current, { headers, redirect: 'manual', signal });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw new HubError(
        'network',
        file,
        current,
        `cannot download ${file} from ${current}: ${causeText(error)}`,
        true,
        error,
      );
    }
    const first = meta === undefined;
    meta ??= readMeta(response.headers);
    if (
      first &&
      rangeStart > 0 &&
      meta.size !== undefined &&
      rangeStart >= meta.size &&
      (response.ok || REDIRECTS.has(response.status))
    ) {
      await response.body?.cancel();
      // The partial has every byte already (a crash between download and rename): no body needed.
      if (rangeStart === meta.size) return { kind: 'complete', meta };
      await restartFromZero();
      continue;
    }
    if (REDIRECTS.has(response.status)) {
      const location = response.headers.get('location');
      await response.body?.cancel();
      if (location === null)
        throw new HubError(
          'http',
          file,
          current,
          `${file}: ${current} redirected (HTTP ${response.status}) without a Location`,
        );
      current = new URL(location, current).toString();
      continue;
    }
    if (response.status === 416 && rangeStart > 0) {
      // The partial is no prefix of this file (the revision moved?): drop it and start again.
      await response.body?.cancel();
      await restartFromZero();
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw statusError(ctx, file, current, response.status, response.statusText);
    }
    return { kind: 'body', response, meta, offset: rangeStart };
  }
  throw new HubError('http', file, url, `${file}: more than ${MAX_REDIRECTS} redirects from ${url}`);

  async function restartFromZero(): Promise<void> {
    await fs.rm(partialPath, { force: true });
    rangeStart = 0;
    current = url;
    meta = undefined;
  }
}

function statusError(ctx: HubContext, file: string, url: string, status: number, statusText: string): HubError {
  const what = `${ctx.source.repo}@${ctx.source.revision}`;
  if (status === 401 || status === 403) {
    const hint = ctx.token === undefined ? 'set HF_TOKEN' : 'the HF_TOKEN given has no access to it';
    return new HubError(
      'unauthorized',
      file,
      url,
      `${what} is gated or private (HTTP ${status} for ${file} at ${url}): ${hint}`,
    );
  }
  if (status === 404) {
    return new HubError(
      'not-found',
      file,
      url,
      `${file} of ${what} not found at ${url} (check the repo id, revision and precision)`,
    );
  }
  const retryable = status >= 500 || status === 429 || status === 408;
  return new HubError(
    'http',
    file,
    url,
    `cannot download ${file} from ${url}: HTTP ${status} ${statusText}`.trimEnd(),
    retryable,
  );
}

function readMeta(headers: Headers): FileMeta {
  const linkedEtag = normaliseEtag(headers.get('x-linked-etag'));
  const sha256 = linkedEtag !== undefined && /^[0-9a-f]{64}$/.test(linkedEtag) ? linkedEtag : undefined;
  return {
    // X-Linked-Size belongs to the LFS file; Content-Length of a redirect is the redirect's own body.
    size: parseLength(headers.get('x-linked-size')),
    sha256,
    commit: headers.get('x-repo-commit') ?? undefined,
  };
}

function normaliseEtag(value: string | null): string | undefined {
  if (value === null) return undefined;
  return value
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1')
    .toLowerCase();
}

function parseLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

function parseContentRange(value: string | null): { start: number; total: number | undefined } | undefined {
  const match = value === null ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (match === null) return undefined;
  return { start: Number(match[1]), total: match[3] === '*' ? undefined : Number(match[3]) };
}

/** A sha256 hash primed with a partial file's bytes (so a resumed download is hashed whole). */
async function hashFile(file: string | undefined, expected: string | undefined): Promise<Hash | undefined> {
  if (expected === undefined) return undefined;
  const hash = createHash('sha256');
  if (file === undefined) return hash;
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash;
}

// --- small helpers -------------------------------------------------------------------------------------------

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

/** Repo-relative file paths: `/`-separated, no empty, `.` or `..` segments (they become URL and cache paths). */
function uniqueFiles(files: readonly string[]): string[] {
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

function noExistMarker(dir: string, file: string): string {
  return path.join(dir, '.no_exist', ...file.split('/'));
}

async function writeNoExistMarker(dir: string, file: string): Promise<void> {
  const marker = noExistMarker(dir, file);
  await fs.mkdir(path.dirname(marker), { recursive: true });
  await fs.writeFile(marker, '');
}

async function isFile(p: string): Promise<boolean> {
  const stat = await fs.stat(p).catch(() => undefined);
  return stat?.isFile() === true;
}

async function fsyncDir(dir: string): Promise<void> {
  // Makes the rename durable; not supported everywhere (e.g. Windows), where it is skipped.
  const handle = await fs.open(dir, 'r').catch(() => undefined);
  if (handle === undefined) return;
  await handle.sync().catch(() => undefined);
  await handle.close();
}

async function runPool<T>(items: readonly T[], limit: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const errors: unknown[] = [];
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failed && next < items.length) {
      const item = items[next] as T;
      next += 1;
      try {
        await worker(item);
      } catch (error) {
        failed = true;
        errors.push(error);
      }
    }
  });
  await Promise.all(lanes);
  // The first failure is the cause; the others are usually its abort.
  if (errors.length > 0) throw errors[0];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function causeText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code === undefined ? `${error.message}: ${cause.message}` : `${error.message}: ${code} ${cause.message}`;
  }
  return error.message;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
