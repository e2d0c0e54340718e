/**
 * @file Where the page's bundle lives: `<repo>/dist/web/` (written by `npm run build`, scripts/build-web.ts).
 * The repo root is found by walking up to package.json, so the same code works from src/ (tsx, vitest) and
 * from a compiled dist/src/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The files the build writes, by role. */
export const WEB_BUNDLE_FILES = { script: 'app.js', stylesheet: 'app.css' } as const;

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** `<repo>/dist/web`. */
export function webBundleDir(): string {
  return path.join(repoRoot(), 'dist', 'web');
}

/** `<repo>/src/web`, the page's sources. */
export function webSourceDir(): string {
  return path.join(repoRoot(), 'src', 'web');
}
