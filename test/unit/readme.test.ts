import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { linkTargets } from '../utils/markdownLinks.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const MAX_README_LINES = 250;

describe('README', () => {
  it(`should be at most ${MAX_README_LINES} lines (the rest belongs in docs/)`, () => {
    expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(MAX_README_LINES);
  });

  it('should give the two commands', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });

  it('should show the page', () => {
    expect(linkTargets(readme)).toContain('docs/web-ui.png');
  });

  it.each(fs.readdirSync(path.join(ROOT, 'docs')).filter((file) => file.endsWith('.md')))(
    'should list docs/%s in its map of docs/',
    (file) => {
      const mapLine = readme.split('\n').find((line) => /^\s*[-*]\s/.test(line) && line.includes(`](docs/${file})`));
      expect(mapLine, `README.md has no list line linking docs/${file}`).toBeDefined();
    },
  );
});
