import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { printGraphqlSchema } from '../../../src/graphql/schema.js';

const SCHEMA_FILE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'schema',
  'schema.graphql',
);

describe('schema/schema.graphql', () => {
  it('should match the schema built from src/graphql (run `npm run emit-schema` when it does not)', async () => {
    const committed = await readFile(SCHEMA_FILE, 'utf8');
    const built = await printGraphqlSchema();
    expect(built === committed, 'schema/schema.graphql is stale: run `npm run emit-schema` and commit the result').toBe(
      true,
    );
  });

  it('should contain the fixed contract of issue 3', async () => {
    const sdl = await printGraphqlSchema();
    for (const line of [
      'enum JobStatus {\n  QUEUED\n  RUNNING\n  COMPLETE\n  FAILED\n  CANCELLED\n}',
      'top(k: Int = 5): [ClassScore!]!',
      'probabilities: [Float!]!',
      'images: [ImageClassification!]!',
      'job(id: ID!): Job',
      'models: [Model!]!',
      'classify(input: ClassifyInput!): Job!',
      'cancelJob(id: ID!): Job',
      'jobUpdated(id: ID!): Job!',
      'scalar DateTime',
      'scalar JSON',
    ]) {
      expect(sdl).toContain(line);
    }
    expect(sdl).toMatch(
      /jobs\((?=[^)]*status: JobStatus)(?=[^)]*first: Int = 20)(?=[^)]*after: String)[^)]*\): JobConnection!/,
    );
    const start = sdl.indexOf('input ClassifyInput {');
    const classifyInput = sdl.slice(start, sdl.indexOf('\n}', start) + 1);
    for (const field of [
      'image: String\n',
      'images: [String!]\n',
      // Issue 22: `classes` or a stored `classifier` (exactly one, checked at run time); `config` deprecated for `prompt`.
      'classes: [String!]\n',
      'classifier: ID\n',
      'model: String\n',
      'prompt: PromptInput\n',
      'config: JSON @deprecated(reason: "Use `prompt: PromptInput`',
    ]) {
      expect(classifyInput).toContain(`  ${field}`);
    }
  });
});
