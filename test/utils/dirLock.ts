/**
 * A lock across processes on one checkout: a directory made with `mkdir` (atomic), polled while another process
 * holds it, and broken when it is older than `staleMs` (its holder died mid-way). Several vitest workers, and
 * several runs, share the generated test models and the process tests' build.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

export interface DirLockOptions {
  /** A lock older than this, in ms, is from a run that died: it is removed. */
  staleMs: number;
  /** How often a waiter looks again, in ms. */
  pollMs: number;
}

/** Runs `body` while holding the lock `lockDir`, and releases it however `body` ends. */
export async function withDirLock<T>(lockDir: string, options: DirLockOptions, body: () => Promise<T>): Promise<T> {
  await mkdir(path.dirname(lockDir), { recursive: true });
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(lockDir).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > options.staleMs) await rm(lockDir, { recursive: true, force: true });
      else await new Promise((resolve) => setTimeout(resolve, options.pollMs));
    }
  }
  try {
    return await body();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}
