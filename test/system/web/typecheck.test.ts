/**
 * The page's code is held to the server's strict checks under its own config (DOM, no Node types):
 * src/web/tsconfig.json. The root tsconfig.json excludes src/web, so this is where `npm test` checks it.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

it('should type-check src/web with src/web/tsconfig.json', async () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const run = promisify(execFile)(process.execPath, [tsc, '-p', path.join(ROOT, 'src', 'web', 'tsconfig.json')], {
    cwd: ROOT,
  });
  await expect(
    run.then(
      () => 'ok',
      (error: Error & { stdout?: string }) => error.stdout ?? String(error),
    ),
  ).resolves.toBe('ok');
});
