/**
 * Bundles the page (src/web) with esbuild into dist/web/app.js and app.css: one ES module with its npm
 * dependencies (graphql-ws's client) inlined, minified, for current browsers. Run by `npm run build` (after
 * the type check of src/web/tsconfig.json) and by the tests' globalSetup, so a fresh clone's `npm test` has it.
 *
 * The files are written to a temporary name and renamed into place, so a server reading them (or another
 * build running at once) never sees half a file.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { WEB_BUNDLE_FILES, webBundleDir, webSourceDir } from '../src/http/webUi/bundle.js';

export interface WebBuildSummary {
  outDir: string;
  files: { name: string; bytes: number }[];
  ms: number;
}

/** Builds the bundle; rejects with esbuild's messages when the page's code does not compile. */
export async function buildWebUi(outDir: string = webBundleDir()): Promise<WebBuildSummary> {
  const started = performance.now();
  const source = webSourceDir();
  const result = await build({
    entryPoints: { app: path.join(source, 'main.ts'), 'app-style': path.join(source, 'styles.css') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari16'],
    minify: true,
    legalComments: 'none',
    write: false,
    outdir: outDir,
    logLevel: 'silent',
  });
  await fs.mkdir(outDir, { recursive: true });
  const files: WebBuildSummary['files'] = [];
  for (const file of result.outputFiles) {
    const name = path.extname(file.path) === '.css' ? WEB_BUNDLE_FILES.stylesheet : WEB_BUNDLE_FILES.script;
    const target = path.join(outDir, name);
    const temporary = `${target}.tmp-${process.pid}`;
    await fs.writeFile(temporary, file.contents);
    await fs.rename(temporary, target);
    files.push({ name, bytes: file.contents.byteLength });
  }
  return { outDir, files, ms: Math.round(performance.now() - started) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildWebUi().then(
    (summary) =>
      console.log(
        `web UI: ${summary.files.map((f) => `${f.name} ${(f.bytes / 1024).toFixed(1)} KiB`).join(', ')} in ${summary.ms} ms → ${summary.outDir}`,
      ),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
