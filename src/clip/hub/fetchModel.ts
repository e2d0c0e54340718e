/**
 * A repo's files → a local directory: the required and optional files of one model, small ones first so that a wrong
 * id or a gated repo fails before a large download starts, a few at a time.
 */
import pLimit from 'p-limit';
import { repoRelativeFiles, snapshotDir, type HubRepoRef } from './cacheLayout.js';
import { createContext, type HubClientOptions } from './hubContext.js';
import { errorMessage } from './hubError.js';
import { ensureFile } from './sharedDownloads.js';

/** How many small files (configs, tokenizers) download at once. */
const SMALL_FILE_DOWNLOADS = 4;
/** How many large files (graphs, external data) download at once: fewer, as they share the bandwidth. */
const LARGE_FILE_DOWNLOADS = 2;

/** Options of {@link fetchModel}: how to reach the hub, and which files. */
export interface HubOptions extends HubClientOptions {
  /** Files the model needs, `/`-separated paths in the repo. Any one missing is an error. */
  files: readonly string[];
  /** Files fetched when the repo has them; a 404 (or offline, a cache miss) skips them silently. */
  optionalFiles?: readonly string[];
}

/**
 * Makes sure `files` (and whichever `optionalFiles` the repo has) are in the cache and returns the local directory
 * holding them. Throws a {@link HubError} naming the file, the URL and why.
 */
export async function fetchModel(source: HubRepoRef, options: HubOptions): Promise<string> {
  const dir = snapshotDir(options.cacheDir, source);
  const required = repoRelativeFiles(options.files);
  const optional = repoRelativeFiles(options.optionalFiles ?? []).filter((f) => !required.includes(f));
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
  const fetchEntry = async ({ file, optional: isOptional }: (typeof entries)[number]): Promise<void> => {
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
  };
  try {
    for (const [phase, concurrency] of [
      [entries.filter((e) => !isLarge(e.file)), SMALL_FILE_DOWNLOADS],
      [entries.filter((e) => isLarge(e.file)), LARGE_FILE_DOWNLOADS],
    ] as const) {
      // Offline there is nothing to download, only files to look for: one at a time, so the error names the first
      // missing file in the order asked for, not whichever check answered first.
      await eachLimited(phase, ctx.offline ? 1 : concurrency, fetchEntry);
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    ctx.progress.stop();
  }
  return dir;
}

/**
 * Runs `worker` on each item, `concurrency` at a time, in order. The first failure starts nothing more, waits for the
 * running ones (which it has aborted) and is thrown: the others are usually its abort.
 */
async function eachLimited<T>(
  items: readonly T[],
  concurrency: number,
  worker: (item: T) => Promise<void>,
): Promise<void> {
  const limit = pLimit({ concurrency, rejectOnClear: true });
  const failures: unknown[] = [];
  await Promise.allSettled(
    items.map((item) =>
      limit(async () => {
        try {
          await worker(item);
        } catch (error) {
          failures.push(error);
          limit.clearQueue();
        }
      }),
    ),
  );
  if (failures.length > 0) throw failures[0];
}
