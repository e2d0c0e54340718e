/**
 * Making sure one file is in the cache: a complete copy is used as it is; offline, a missing one is an error;
 * otherwise it is downloaded once, holding the file's cross-process lock, and concurrent callers in this process share
 * that one download (principle 8: promises are cached, a failure is evicted).
 */
import { withFileLock } from './fileLock.js';
import { cachedFile, isFile, lockFile, noExistMarker } from './cacheLayout.js';
import { downloadWithRetries } from './download.js';
import { repoRevision, type HubContext } from './hubContext.js';
import { HubError } from './hubError.js';

/** Downloads in flight in this process, by final path. */
const inFlight = new Map<string, SharedDownload>();

interface SharedDownload {
  /** The final path. */
  key: string;
  promise: Promise<'downloaded' | 'absent'>;
  controller: AbortController;
  waiters: number;
}

/**
 * Resolves once `file` is in the cache (or, when optional, known to be absent from the hub or, offline, from the
 * cache). `signal` aborts this caller's wait; the download itself stops when no caller waits for it any more.
 */
export async function ensureFile(ctx: HubContext, file: string, optional: boolean, signal: AbortSignal): Promise<void> {
  const finalPath = cachedFile(ctx.dir, file);
  if (await isFile(finalPath)) return;
  if (ctx.offline) {
    if (optional) return;
    throw new HubError(
      'offline-miss',
      file,
      undefined,
      `HF_HUB_OFFLINE=1 and ${repoRevision(ctx.source)}/${file} is not in the cache at ${finalPath}`,
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
      promise: withFileLock(lockFile(finalPath), controller.signal, ctx.logger, () =>
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
