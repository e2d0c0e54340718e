import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};
const architecture = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
const section = architecture.slice(architecture.indexOf('## Dependencies and why'));

/** Type packages are covered together by the `@types/*` line. */
function documentedName(name: string): string {
  return name.startsWith('@types/') ? '@types/*' : name;
}

describe('docs/architecture.md, dependencies and why', () => {
  it.each(Object.keys({ ...manifest.dependencies, ...manifest.devDependencies }))(
    'should give the reason for %s',
    (name) => {
      expect(section, `docs/architecture.md names no reason for ${name}: add it to "Dependencies and why"`).toContain(
        `\`${documentedName(name)}\``,
      );
    },
  );
});
