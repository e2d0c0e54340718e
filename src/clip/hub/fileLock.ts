/**
 * A lock file shared by processes: created exclusively with our pid inside, so two processes never append to
 * the same `.incomplete` download. A lock whose process is gone is stale and taken over.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout } from 'node:timers/promises';
import type { Logger } from '../../logger.js';

/**
 * How often a held lock is looked at again. Another process's lock file gives no event to await (file watching is
 * unreliable on network and container filesystems), so waiting for it is polling.
 */
const LOCK_POLL_MS = 250;
/** A lock file without a readable pid is being written right now, unless it is older than this. */
const UNREADABLE_LOCK_STALE_MS = 10_000;

/** Runs `fn` holding the lock at `lockPath`, waiting while another live process holds it. */
export async function withFileLock<T>(
  lockPath: string,
  signal: AbortSignal,
  logger: Logger,
  fn: () => Promise<T>,
): Promise<T> {
  await fs.mkdir(path.dirname(lockPath), { recursive: true });
  let logged = false;
  for (;;) {
    try {
      await fs.writeFile(lockPath, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (await isStaleLock(lockPath)) {
      await fs.rm(lockPath, { force: true });
      continue;
    }
    if (!logged) {
      logger.info({ lock: lockPath }, 'another process is downloading this model file; waiting');
      logged = true;
    }
    await setTimeout(LOCK_POLL_MS, undefined, { signal });
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lockPath, { force: true });
  }
}

async function isStaleLock(lockPath: string): Promise<boolean> {
  const text = await fs.readFile(lockPath, 'utf8').catch(() => undefined);
  if (text === undefined) return false; // gone already: the next create wins or waits
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) {
    // Being written right now, or garbage: stale only once it is old.
    const stat = await fs.stat(lockPath).catch(() => undefined);
    return stat !== undefined && Date.now() - stat.mtimeMs > UNREADABLE_LOCK_STALE_MS;
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
