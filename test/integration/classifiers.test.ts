/**
 * Stored zero-shot classifiers through a real server on the tiny model: createClassifier answers BUILDING at once and
 * classifierUpdated shows the current state, the build's progress and READY; classify(classifier) gives the
 * probabilities of the same classes and templates inline; a classifier over MAX_PROMPTS_PER_JOB builds and serves; a
 * restart finds it READY and runs no text model (the text batches counted on /metrics); `above`, the typed `prompt`
 * and the deprecation of `config`; the coded refusals; one API key does not see another's classifiers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectBuildFollowedToReady } from '../utils/classifierBuild.js';
import { metricValue } from '../utils/metrics.js';
import { distinctImages, gql, startTestServer, subscribe, waitFor, type TestServer } from '../utils/testServer.js';

const MAX_PROMPTS_PER_JOB = 60;
const CLASSIFIER_FIELDS = 'id name preset model status builtPrompts totalPrompts classCount error { code message }';
const JOB_FIELDS =
  'id status classes classifier error { code message } result { images { probabilities above(threshold: 0.2) { label probability } } }';

interface ClassifierState {
  id: string;
  status: string;
  builtPrompts: number;
  totalPrompts: number;
  model: string;
  preset: boolean;
  classCount: number;
  error: { code: string; message: string } | null;
}

interface JobState {
  id: string;
  status: string;
  classes: string[];
  classifier: string | null;
  error: { code: string } | null;
  result: { images: { probabilities: number[]; above: { label: string; probability: number }[] }[] } | null;
}

let cacheDir: string;
let server: TestServer;
let images: string[];

beforeAll(async () => {
  cacheDir = await mkdtemp(path.join(os.tmpdir(), 'classifiers-'));
  server = await start();
  images = await distinctImages(3, 4200);
});

afterAll(async () => {
  await server.stop();
  await rm(cacheDir, { recursive: true, force: true });
});

function start(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  return startTestServer({
    modelCacheDir: cacheDir,
    maxPromptsPerJob: MAX_PROMPTS_PER_JOB,
    maxTextBatchSize: 8,
    ...overrides,
  });
}

async function createClassifier(input: Record<string, unknown>, url = server.url): Promise<ClassifierState> {
  const { body } = await gql<{ createClassifier: ClassifierState }>(
    url,
    `mutation ($input: CreateClassifierInput!) { createClassifier(input: $input) { ${CLASSIFIER_FIELDS} } }`,
    { input },
  );
  expect(body.errors).toBeUndefined();
  return body.data!.createClassifier;
}

async function classifierState(id: string, url = server.url): Promise<ClassifierState | null> {
  const { body } = await gql<{ classifier: ClassifierState | null }>(
    url,
    `query ($id: ID!) { classifier(id: $id) { ${CLASSIFIER_FIELDS} } }`,
    { id },
  );
  expect(body.errors).toBeUndefined();
  return body.data!.classifier;
}

async function waitReady(id: string, url = server.url): Promise<ClassifierState> {
  return waitFor(async () => {
    const state = await classifierState(id, url);
    return state?.status === 'READY' ? state : undefined;
  }, 60_000);
}

/** Submits a classification and follows it to its end over graphql-ws. */
async function classify(input: Record<string, unknown>, url = server.url): Promise<JobState> {
  const { body } = await gql<{ classify: JobState }>(
    url,
    `mutation ($input: ClassifyInput!) { classify(input: $input) { id status classifier } }`,
    { input },
  );
  expect(body.errors).toBeUndefined();
  const ws = `${url.replace('http://', 'ws://')}/graphql`;
  const followed = await subscribe<{ jobUpdated: JobState }>(
    ws,
    `subscription ($id: ID!) { jobUpdated(id: $id) { ${JOB_FIELDS} } }`,
    { id: body.data!.classify.id },
    { timeoutMs: 60_000 },
  );
  expect(followed.error).toBeUndefined();
  return followed.messages.at(-1)!.data!.jobUpdated;
}

async function errorOf(query: string, variables: Record<string, unknown>): Promise<unknown> {
  const { body } = await gql(server.url, query, variables);
  return body.errors?.[0]?.extensions?.code;
}

const classifyError = (input: Record<string, unknown>): Promise<unknown> =>
  errorOf('mutation ($input: ClassifyInput!) { classify(input: $input) { id } }', { input });

function expectClose(actual: number[][], expected: number[][]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((row, i) => row.forEach((value, j) => expect(Math.abs(value - expected[i]![j]!)).toBeLessThan(1e-5)));
}

const CLASSES = ['cat', 'dog', 'car', 'tree', 'boat'];
const TEMPLATES = ['a photo of a {}.', 'a drawing of a {}.', 'itap of a {}.'];

describe('classify(classifier)', () => {
  it('should give the probabilities of the same classes and templates inline, within 1e-5, and name the classifier', async () => {
    const created = await createClassifier({ name: 'five', classes: CLASSES, prompt: { templates: TEMPLATES } });
    expect(created).toMatchObject({
      status: 'BUILDING',
      totalPrompts: 15,
      classCount: 5,
      preset: false,
      model: 'tiny',
    });
    const stored = await classify({ images, classifier: created.id });
    expect(stored).toMatchObject({ status: 'COMPLETE', classes: CLASSES, classifier: created.id });
    const inline = await classify({ images, classes: CLASSES, config: { promptTemplates: TEMPLATES } });
    expect(inline.classifier).toBeNull();
    expectClose(
      stored.result!.images.map((image) => image.probabilities),
      inline.result!.images.map((image) => image.probabilities),
    );
    expect((await classifierState(created.id))?.status).toBe('READY');
  });

  it('should take the typed prompt as config did, and answer above(threshold) best first', async () => {
    const typed = await classify({ images, classes: CLASSES, prompt: { templates: TEMPLATES } });
    const untyped = await classify({ images, classes: CLASSES, config: { promptTemplates: TEMPLATES } });
    expectClose(
      typed.result!.images.map((image) => image.probabilities),
      untyped.result!.images.map((image) => image.probabilities),
    );
    const single = await classify({ images, classes: CLASSES, prompt: { template: 'itap of a {}.' } });
    const singleConfig = await classify({ images, classes: CLASSES, config: { promptTemplate: 'itap of a {}.' } });
    expectClose(
      single.result!.images.map((image) => image.probabilities),
      singleConfig.result!.images.map((image) => image.probabilities),
    );
    for (const image of typed.result!.images) {
      const expected = image.probabilities
        .map((probability, index) => ({ label: CLASSES[index]!, probability }))
        .filter((score) => score.probability >= 0.2)
        .sort((a, b) => b.probability - a.probability);
      expect(image.above).toEqual(expected);
    }
  });

  it('should refuse classes and classifier together or neither, an unknown classifier, and prompt with config', async () => {
    expect(await classifyError({ images, classes: CLASSES, classifier: 'imagenet-1k' })).toBe('BAD_USER_INPUT');
    expect(await classifyError({ images })).toBe('BAD_USER_INPUT');
    expect(await classifyError({ images, classifier: 'no-such-classifier' })).toBe('BAD_USER_INPUT');
    expect(
      await classifyError({
        images,
        classes: CLASSES,
        prompt: { template: 'a {}' },
        config: { promptTemplate: 'a {}' },
      }),
    ).toBe('BAD_USER_INPUT');
    expect(await classifyError({ images, classifier: 'imagenet-1k', config: { promptTemplate: 'a {}' } })).toBe(
      'BAD_USER_INPUT',
    );
  });

  it('should run a preset on the model it is asked for, built on first use with its 1,000 classes', async () => {
    const job = await classify({ images: images.slice(0, 1), classifier: 'imagenet-1k-simple' });
    expect(job.status).toBe('COMPLETE');
    expect(job.classes).toHaveLength(1000);
    expect(job.result!.images[0]!.probabilities).toHaveLength(1000);
    const preset = await classifierState('imagenet-1k-simple');
    expect(preset).toMatchObject({ status: 'READY', preset: true, totalPrompts: 7000, model: 'tiny' });
    expect((await classifierState('imagenet-1k'))?.status).toBe('PENDING');
  }, 120_000);
});

describe('createClassifier', () => {
  it('should build a classifier over MAX_PROMPTS_PER_JOB with its progress moving, and serve it', async () => {
    const classes = Array.from({ length: 150 }, (_, i) => `thing number ${i}`);
    const templates = ['a photo of a {}.', 'a sketch of a {}.', 'a close-up of a {}.', '{}'];
    expect(classes.length * templates.length).toBeGreaterThan(MAX_PROMPTS_PER_JOB);
    expect(await classifyError({ images, classes, prompt: { templates } })).toBe('BAD_USER_INPUT');
    const created = await createClassifier({ classes, prompt: { templates } });
    await expectBuildFollowedToReady(server.wsUrl, created.id, 600, 60_000);
    const job = await classify({ images, classifier: created.id });
    expect(job.status).toBe('COMPLETE');
    expect(job.result!.images[0]!.probabilities).toHaveLength(150);
  });

  it('should refuse bad input, coded', async () => {
    const create = (input: Record<string, unknown>): Promise<unknown> =>
      errorOf('mutation ($input: CreateClassifierInput!) { createClassifier(input: $input) { id } }', { input });
    expect(await create({ classes: [] })).toBe('BAD_USER_INPUT');
    expect(await create({ classes: ['a', 'a'] })).toBe('BAD_USER_INPUT');
    expect(await create({ classes: ['a'], prompt: { template: 'no placeholder' } })).toBe('BAD_USER_INPUT');
    expect(await create({ classes: ['a'], model: 'no-such-model' })).toBe('BAD_USER_INPUT');
  });

  it('should delete a classifier: gone from classifier(id), and refused by classify', async () => {
    const created = await createClassifier({ classes: ['x', 'y'] });
    await waitReady(created.id);
    const { body } = await gql<{ deleteClassifier: { id: string } | null }>(
      server.url,
      'mutation ($id: ID!) { deleteClassifier(id: $id) { id } }',
      { id: created.id },
    );
    expect(body.data?.deleteClassifier?.id).toBe(created.id);
    expect(await classifierState(created.id)).toBeNull();
    expect(await classifyError({ images, classifier: created.id })).toBe('BAD_USER_INPUT');
    expect(await errorOf('mutation { deleteClassifier(id: "imagenet-1k") { id } }', {})).toBe('BAD_USER_INPUT');
  });
});

describe('a restart', () => {
  it('should keep a built classifier READY and classify with it without running the text model', async () => {
    const created = await createClassifier({ classes: CLASSES, prompt: { templates: ['{} here', 'there is a {}'] } });
    await waitReady(created.id);
    const before = await classify({ images, classifier: created.id });
    const restarted = await start();
    try {
      expect(await classifierState(created.id, restarted.url)).toMatchObject({ status: 'READY', totalPrompts: 10 });
      const after = await classify({ images, classifier: created.id }, restarted.url);
      expectClose(
        after.result!.images.map((image) => image.probabilities),
        before.result!.images.map((image) => image.probabilities),
      );
      // Every text-tower run is a text batch; the restarted server has run none.
      expect((await metricValue(restarted.url, 'clip_batch_size_count', 'model="tiny",kind="text"')) ?? 0).toBe(0);
      expect(await metricValue(restarted.url, 'clip_batch_size_count', 'model="tiny",kind="image"')).toBeGreaterThan(0);
    } finally {
      await restarted.stop();
    }
  });
});

describe('the schema', () => {
  it('should mark config @deprecated naming prompt, on ClassifyInput and EmbedTextsInput', async () => {
    for (const type of ['ClassifyInput', 'EmbedTextsInput']) {
      const { body } = await gql<{
        __type: { inputFields: { name: string; isDeprecated: boolean; deprecationReason: string | null }[] };
      }>(
        server.url,
        `{ __type(name: "${type}") { inputFields(includeDeprecated: true) { name isDeprecated deprecationReason } } }`,
      );
      const fields = body.data!.__type.inputFields;
      expect(fields.find((field) => field.name === 'config')).toMatchObject({ isDeprecated: true });
      expect(fields.find((field) => field.name === 'config')?.deprecationReason).toContain('prompt');
      expect(fields.find((field) => field.name === 'prompt')).toMatchObject({ isDeprecated: false });
    }
  });
});

describe('API keys', () => {
  it("should show a key its own classifiers and the presets, never another key's; an admin key sees all", async () => {
    const keyed = await start({ apiKeys: ['key-a', 'key-b', 'admin'], adminApiKeys: ['admin'] });
    try {
      const as = (key: string, query: string, variables: Record<string, unknown> = {}) =>
        fetch(`${keyed.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ query, variables }),
        }).then((response) => response.json() as Promise<{ data?: Record<string, unknown>; errors?: unknown[] }>);
      const created = await as('key-a', 'mutation { createClassifier(input: { classes: ["p", "q"] }) { id } }');
      const id = (created.data!.createClassifier as { id: string }).id;
      const listOf = async (key: string): Promise<string[]> =>
        ((await as(key, '{ classifiers { id } }')).data!.classifiers as { id: string }[]).map((c) => c.id);
      expect(await listOf('key-a')).toContain(id);
      expect(await listOf('key-b')).not.toContain(id);
      expect(await listOf('key-b')).toEqual(expect.arrayContaining(['imagenet-1k', 'imagenet-1k-simple']));
      expect(await listOf('admin')).toContain(id);
      expect(
        (await as('key-b', 'query ($id: ID!) { classifier(id: $id) { id } }', { id })).data!.classifier,
      ).toBeNull();
      const refused = await as(
        'key-b',
        'mutation ($id: ID!) { classify(input: { image: "x", classifier: $id }) { id } }',
        {
          id,
        },
      );
      expect(refused.errors).toBeDefined();
    } finally {
      await keyed.stop();
    }
  });
});
