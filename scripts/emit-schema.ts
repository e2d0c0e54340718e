/**
 * Writes schema/schema.graphql from the code-first schema (src/graphql). Run `npm run emit-schema`
 * after changing a GraphQL type; test/unit/graphql/schema.test.ts fails while the file is stale.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { printGraphqlSchema } from '../src/graphql/schema.js';

/** The committed SDL, relative to the repository root (this file runs from dist/scripts/ or scripts/). */
export const SCHEMA_FILE = 'schema/schema.graphql';

function repositoryRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/scripts → ../.. ; scripts → ..
  return path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '..', '..') : path.resolve(here, '..');
}

const target = path.join(repositoryRoot(), SCHEMA_FILE);
await mkdir(path.dirname(target), { recursive: true });
await writeFile(target, await printGraphqlSchema());
console.log(`wrote ${path.relative(process.cwd(), target) || target}`);
