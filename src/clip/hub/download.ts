/**
 * One file's download into the cache: resumed from its `.incomplete` with `Range`, retried after a network failure or
 * a 5xx, and checked before the atomic rename against the size and, for LFS files, the sha256 that the hub reports on
 * the first response of `resolve` (`X-Linked-Size`, `X-Linked-Etag`; before any redirect to the CDN).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { fsyncDir, isFile, partialFile, writeNoExistMarker } from './cacheLayout.js';
import type { HubContext } from './hubContext.js';
import { causeText, HubError } from './hubError.js';
import { hubFileUrl, parseContentRange, parseLength, requestFile, type FileMeta } from './transport.js';

/**
 * Downloads `file` to `finalPath`, retrying what may pass. An optional file the hub does not have is marked so and
 * reported `absent`. Called holding the file's lock.
 */
export async function downloadWithRetries(
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
      // An abort during the pause ends the download with the abort's own reason.
      await setTimeout(delayMs, undefined, { signal }).catch(() => signal.throwIfAborted());
    }
  }
}

async function downloadOnce(ctx: HubContext, file: string, finalPath: string, signal: AbortSignal): Promise<void> {
  const partialPath = partialFile(finalPath);
  const url = hubFileUrl(ctx.endpoint, ctx.source, file);
  let offset = (await fs.stat(partialPath).catch(() => undefined))?.size ?? 0;

  const result = await requestFile(ctx, file, url, partialPath, offset, signal);
  if (result.kind === 'complete') {
    const hash = await hashFile(partialPath, result.meta.sha256);
    await finish(ctx, { file, url, partialPath, finalPath }, result.meta, offset, hash);
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
  await finish(ctx, { file, url, partialPath, finalPath }, { ...meta, size: expectedSize }, received, hash);
}

/** A file being downloaded: its repo path, its URL, and its two paths in the cache. */
interface Target {
  file: string;
  url: string;
  partialPath: string;
  finalPath: string;
}

/** Size and sha256 checks, then the atomic rename. A short file is kept to resume; a wrong one is deleted. */
async function finish(
  ctx: HubContext,
  { file, url, partialPath, finalPath }: Target,
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

/** A sha256 hash primed with a partial file's bytes (so a resumed download is hashed whole). */
async function hashFile(file: string | undefined, expected: string | undefined): Promise<Hash | undefined> {
  if (expected === undefined) return undefined;
  const hash = createHash('sha256');
  if (file === undefined) return hash;
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash;
}
