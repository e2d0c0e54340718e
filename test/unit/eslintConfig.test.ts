import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// The project's eslint.config.js, without the type-aware rules: the boundaries only read the import's text, and
// the files linted here exist only as text, outside any TypeScript program.
const eslint = new ESLint({ cwd: ROOT, overrideConfig: tseslint.configs.disableTypeChecked });

/** The boundary messages ESLint gives `file` (a path under the repository) importing `specifier`. */
async function boundaryErrors(file: string, specifier: string): Promise<string[]> {
  const code = `import type { Imported } from '${specifier}';\nexport type Used = Imported;\n`;
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('eslint.config.js folder boundaries', () => {
  it.each([
    ['src/graphql/context.ts', '../jobs/index.js'],
    ['src/graphql/types/Job.ts', '../../jobs/index.js'],
    ['src/http/server.ts', '../rest/index.js'],
    ['src/main.ts', './http/index.js'],
    ['src/clip/hub/fetchModel.ts', '../layouts/hfClip.js'],
    ['src/clip/ClipService.ts', '../errors.js'],
    ['src/jobs/redis/BullJobQueue.ts', '../../clip/index.js'],
    ['src/config.ts', './logger.js'],
    ['src/logger.ts', './errors.js'],
    ['src/web/main.ts', './dom.js'],
  ])('should let %s import %s', async (file, specifier) => {
    expect(await boundaryErrors(file, specifier)).toEqual([]);
  });

  it.each([
    ['src/graphql/context.ts', '../jobs/JobService.js', 'only through its index.ts'],
    ['src/graphql/types/Job.ts', '../../jobs/types.js', 'only through its index.ts'],
    ['src/http/server.ts', '../jobs/redis/index.js', 'only through its index.ts'],
    ['src/main.ts', './http/server.js', 'only through its index.ts'],
    ['src/clip/ClipService.ts', '../jobs/index.js', 'clip is the core'],
    ['src/clip/hub/fetchModel.ts', '../../http/index.js', 'clip is the core'],
    ['src/clip/ClipModel.ts', '../jobs/types.js', 'only through its index.ts'],
    ['src/config.ts', './clip/index.js', 'import nothing else from the app'],
    ['src/errors.ts', './jobs/index.js', 'import nothing else from the app'],
    ['src/web/api.ts', '../errors.js', 'bundled for the browser'],
  ])('should refuse %s importing %s', async (file, specifier, reason) => {
    const errors = await boundaryErrors(file, specifier);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join('\n')).toContain(reason);
  });

  it('should check re-exports as well as imports', async () => {
    const [result] = await eslint.lintText("export { JobService } from '../jobs/JobService.js';\n", {
      filePath: path.join(ROOT, 'src/http/index.ts'),
    });
    expect(result?.messages.map((m) => m.ruleId)).toContain('no-restricted-imports');
  });
});
