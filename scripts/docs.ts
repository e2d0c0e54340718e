/**
 * `npm run docs`: writes docs/configuration.md from the settings table in src/config.ts.
 * test/unit/scripts/configurationReference.test.ts fails while the committed file is stale.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeSettings } from '../src/config.js';
import { CONFIGURATION_FILE, renderConfigurationReference } from './docs/configurationReference.js';

function repositoryRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/scripts → ../.. ; scripts → ..
  return path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '..', '..') : path.resolve(here, '..');
}

const target = path.join(repositoryRoot(), CONFIGURATION_FILE);
await writeFile(target, renderConfigurationReference(describeSettings()));
console.log(`wrote ${path.relative(process.cwd(), target) || target}`);
