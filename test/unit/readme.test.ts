import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeSettings } from '../../src/config.js';

const readme = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md'), 'utf8');

describe('README', () => {
  it.each(describeSettings().map((s) => [s.env, s]))('should document the setting %s with its flag and default', (_, setting) => {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${setting.env}\` |`));
    expect(row, `README's configuration table has no row for ${setting.env}`).toBeDefined();
    expect(row).toContain(`\`${setting.flag}\``);
    expect(row).toContain(setting.default.replace(/\|/g, '\\|'));
  });

  it('should give the two commands', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });
});
