/**
 * The server compiled for the tests that run it as a process: src/ into dist/.reliability-build (incremental: fast
 * when nothing changed). Its own directory and build info, so it neither races nor confuses `npm run build` or other
 * tests' builds. The system tier's globalSetup compiles it once per run (test/setup/server.ts); a test file run on
 * its own elsewhere compiles it through buildServer in test/utils/processServer.ts.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withDirLock } from './dirLock.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD_DIR = path.join(ROOT, 'dist', '.reliability-build');
const LOCK_DIR = `${BUILD_DIR}.lock`;
/** A lock older than this belongs to a run that died (a build takes seconds). */
const STALE_LOCK_MS = 180_000;

/** The repository root (the server processes' working directory). */
export const REPO_ROOT = ROOT;

/** The compiled entry point. */
export const MAIN_JS = path.join(BUILD_DIR, 'src', 'main.js');

const execFileAsync = promisify(execFile);

/** Compiles the server under a lock (several vitest runs may share a checkout). */
export function compileServer(): Promise<void> {
  return withDirLock(LOCK_DIR, { staleMs: STALE_LOCK_MS, pollMs: 100 }, async () => {
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await execFileAsync(
      process.execPath,
      [
        tsc,
        '-p',
        'tsconfig.build.json',
        '--outDir',
        BUILD_DIR,
        '--tsBuildInfoFile',
        path.join(BUILD_DIR, '.tsbuildinfo'),
      ],
      { cwd: ROOT },
    ).catch((error: { stdout?: string }) => {
      // Type errors elsewhere do not stop tsc from emitting; only a missing entry point is fatal.
      if (!existsSync(MAIN_JS)) throw new Error(`build failed: ${error.stdout ?? String(error)}`);
    });
  });
}
