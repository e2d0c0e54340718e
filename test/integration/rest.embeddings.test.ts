/**
 * FES's image-embedding and text-embedding tasks through the real server on the tiny generated model, replaying
 * vitrivr-engine's DenseEmbedding client exactly (ImageEmbeddingApi / TextEmbeddingApi: bodies
 * `{"image": "data:image/png;base64,…"}`, `{"image": [...]}`, `{"text": "…"}`, `{"text": [...]}` with no `config`,
 * then polling the job route until `complete`): vectors of the model's size, unit length, in input order.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestServer, distinctImages, waitFor, type TestServer } from '../utils/testServer.js';

const IMAGE_TASK = 'image-embedding';
const TEXT_TASK = 'text-embedding';
const TEXTS = ['a red square', 'a photo of a dog', 'a blue circle', 'text'];
const MAX_TEXTS = 5;
const MAX_TEXT_LENGTH = 40;
const MAX_IMAGES = 6;

let server: TestServer;
let images: string[];
let embeddingSize: number;
let logitScale: number;

interface Answer {
  status: number;
  body: unknown;
}

async function api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${server.url}/api${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json() };
}

/** Submits as vitrivr-engine does and polls until `complete` or `failed`, checking every answer's shape. */
async function runJob(task: string, batched: boolean, body: unknown): Promise<Record<string, unknown>> {
  const prefix = `/tasks/${task}${batched ? '/batched' : ''}`;
  const created = await api('POST', `${prefix}/tiny/jobs`, body);
  expect(created.status).toBe(200);
  expect(created.body).toEqual({ id: expect.any(String), status: 'starting' });
  const { id } = created.body as { id: string };
  return waitFor(async () => {
    const answer = await api('GET', `${prefix}/jobs/${id}`);
    expect(answer.status).toBe(200);
    const state = answer.body as Record<string, unknown>;
    expect(['starting', 'running', 'complete', 'failed']).toContain(state.status);
    return state.status === 'complete' || state.status === 'failed' ? { ...state, id } : undefined;
  });
}

function expectUnitVector(vector: unknown): number[] {
  expect(Array.isArray(vector)).toBe(true);
  const values = vector as number[];
  expect(values).toHaveLength(embeddingSize);
  expect(Math.hypot(...values)).toBeCloseTo(1, 5);
  return values;
}

function dot(a: readonly number[], b: readonly number[]): number {
  return a.reduce((sum, value, index) => sum + value * (b[index] ?? Number.NaN), 0);
}

function expectSameVector(actual: readonly number[], expected: readonly number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, index) => expect(Math.abs(value - (expected[index] ?? Number.NaN))).toBeLessThan(1e-6));
}

beforeAll(async () => {
  server = await startTestServer({
    maxTextsPerJob: MAX_TEXTS,
    maxTextLength: MAX_TEXT_LENGTH,
    maxImagesPerJob: MAX_IMAGES,
    jobTtlSeconds: 600,
  });
  images = await distinctImages(4, 700);
  const models = await gql<{ models: { name: string; embeddingSize: number; logitScale: number }[] }>(
    server.url,
    '{ models { name embeddingSize logitScale } }',
  );
  const tiny = models.body.data?.models.find((model) => model.name === 'tiny');
  embeddingSize = tiny?.embeddingSize ?? 0;
  logitScale = tiny?.logitScale ?? 0;
  expect(embeddingSize).toBeGreaterThan(0);
});

describe("vitrivr-engine's image-embedding calls", () => {
  it('should answer a single image {"image": data URL} with one unit vector of the model size', async () => {
    const done = await runJob(IMAGE_TASK, false, { image: images[0] });
    expect(Object.keys(done).sort()).toEqual(['id', 'result', 'status']);
    expect(done.status).toBe('complete');
    const result = done.result as Record<string, unknown>;
    expect(Object.keys(result)).toEqual(['embedding']);
    expectUnitVector(result.embedding);
  });

  it('should answer a batch {"image": [...]} with one {embedding} per image, in input order', async () => {
    const done = await runJob(IMAGE_TASK, true, { image: images });
    expect(done.status).toBe('complete');
    const results = done.result as { embedding: number[] }[];
    expect(results).toHaveLength(images.length);
    const vectors = results.map((result) => {
      expect(Object.keys(result)).toEqual(['embedding']);
      return expectUnitVector(result.embedding);
    });
    // In order: each image alone gives the vector at its own index (and distinct images give distinct vectors).
    for (const index of [2, 0]) {
      const alone = await runJob(IMAGE_TASK, false, { image: images[index] });
      expectSameVector((alone.result as { embedding: number[] }).embedding, vectors[index] ?? []);
    }
    expect(dot(vectors[0] ?? [], vectors[1] ?? [])).toBeLessThan(1 - 1e-4);
    // Unlike FES, a result stays readable after it has been read, until the job's TTL.
    const again = await api('GET', `/tasks/${IMAGE_TASK}/batched/jobs/${String(done.id)}`);
    expect(again.body).toEqual({ status: 'complete', result: done.result });
  });
});

describe("vitrivr-engine's text-embedding calls", () => {
  it('should answer {"text": "…"} with one unit vector, and a batch in input order', async () => {
    const single = await runJob(TEXT_TASK, false, { text: TEXTS[1] });
    expect(single.status).toBe('complete');
    const vector = expectUnitVector((single.result as { embedding: unknown }).embedding);
    const batch = await runJob(TEXT_TASK, true, { text: TEXTS });
    const vectors = (batch.result as { embedding: number[] }[]).map((result) => expectUnitVector(result.embedding));
    expect(vectors).toHaveLength(TEXTS.length);
    expectSameVector(vectors[1] ?? [], vector);
  });

  it('should embed texts verbatim: image·text similarities reproduce classification with the template "{}"', async () => {
    const imageVector = expectUnitVector(
      ((await runJob(IMAGE_TASK, false, { image: images[3] })).result as { embedding: number[] }).embedding,
    );
    const textVectors = ((await runJob(TEXT_TASK, true, { text: TEXTS })).result as { embedding: number[] }[]).map(
      (r) => r.embedding,
    );
    const classified = await runJob('zero-shot-image-classification', false, {
      image: images[3],
      classes: TEXTS,
      config: { promptTemplate: '{}' },
    });
    const probabilities = (classified.result as { probabilities: number[] }).probabilities;
    const logits = textVectors.map((text) => logitScale * dot(imageVector, text));
    const max = Math.max(...logits);
    const exps = logits.map((logit) => Math.exp(logit - max));
    const total = exps.reduce((sum, value) => sum + value, 0);
    exps.forEach((value, index) => expect(value / total).toBeCloseTo(probabilities[index] ?? Number.NaN, 5));
  });

  it('should apply config.promptTemplate when one is given', async () => {
    const templated = await runJob(TEXT_TASK, false, { text: 'dog', config: { promptTemplate: 'a photo of a {}' } });
    const verbatim = await runJob(TEXT_TASK, false, { text: 'a photo of a dog' });
    expectSameVector(
      (templated.result as { embedding: number[] }).embedding,
      (verbatim.result as { embedding: number[] }).embedding,
    );
  });
});

describe('the legacy synchronous embedding routes', () => {
  it('should answer {embedding} itself for an image and for a text', async () => {
    const image = await api('POST', `/legacy/tasks/${IMAGE_TASK}/tiny/jobs`, { image: images[0] });
    expect(image.status).toBe(200);
    expect(Object.keys(image.body as object)).toEqual(['embedding']);
    expectUnitVector((image.body as { embedding: unknown }).embedding);
    const text = await api('POST', `/legacy/tasks/${TEXT_TASK}/tiny/jobs`, { text: 'a cat' });
    expect(text.status).toBe(200);
    expectUnitVector((text.body as { embedding: unknown }).embedding);
  });
});

describe('embedding refusals', () => {
  it.each([
    ['no image', `/tasks/${IMAGE_TASK}/tiny/jobs`, {}, 'image'],
    ['an empty image list', `/tasks/${IMAGE_TASK}/batched/tiny/jobs`, { image: [] }, 'image'],
    [
      'too many images',
      `/tasks/${IMAGE_TASK}/batched/tiny/jobs`,
      { image: Array.from({ length: MAX_IMAGES + 1 }, () => 'AAAA') },
      'image',
    ],
    [
      'not an image',
      `/tasks/${IMAGE_TASK}/tiny/jobs`,
      { image: Buffer.from('plain text, not an image').toString('base64') },
      'image',
    ],
    ['no text', `/tasks/${TEXT_TASK}/tiny/jobs`, {}, 'text'],
    ['an empty text', `/tasks/${TEXT_TASK}/tiny/jobs`, { text: '' }, 'text'],
    ['a blank text in a batch', `/tasks/${TEXT_TASK}/batched/tiny/jobs`, { text: ['a cat', '   '] }, 'text[1]'],
    [
      'too many texts',
      `/tasks/${TEXT_TASK}/batched/tiny/jobs`,
      { text: Array.from({ length: MAX_TEXTS + 1 }, (_, i) => `text ${i}`) },
      'text',
    ],
    ['a text over MAX_TEXT_LENGTH', `/tasks/${TEXT_TASK}/tiny/jobs`, { text: 'x'.repeat(MAX_TEXT_LENGTH + 1) }, 'text'],
    ['an unknown model', `/tasks/${TEXT_TASK}/no-such-model/jobs`, { text: 'a cat' }, 'model'],
  ])('should answer 422 BAD_USER_INPUT for %s, naming the field', async (_name, path, body, field) => {
    const answer = await api('POST', path, body);
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ error: { code: 'BAD_USER_INPUT', field }, detail: expect.any(String) });
  });

  it.each([
    ['a body that is a list', `/tasks/${TEXT_TASK}/tiny/jobs`, ['a cat'], undefined],
    ['a text that is an object', `/tasks/${TEXT_TASK}/tiny/jobs`, { text: { $gt: '' } }, 'text'],
    ['nested text lists', `/tasks/${TEXT_TASK}/batched/tiny/jobs`, { text: ['a', ['b']] }, 'text[1]'],
    ['an image that is a number', `/tasks/${IMAGE_TASK}/tiny/jobs`, { image: 12 }, 'image'],
    ['a batched image list of objects', `/tasks/${IMAGE_TASK}/batched/tiny/jobs`, { image: [{}] }, 'image[0]'],
  ])('should refuse %s with a coded 422 and keep serving', async (_name, path, body, field) => {
    const answer = await api('POST', path, body);
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ error: { code: 'BAD_USER_INPUT', ...(field === undefined ? {} : { field }) } });
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('should accept and ignore unknown config keys, as FES declares config free-form (the GraphQL input stays strict)', async () => {
    const job = await runJob(TEXT_TASK, false, { text: 'a cat', config: { temperature: 1, top_k: 50 } });
    expect(job.status).toBe('complete');
    expectUnitVector((job.result as { embedding: unknown }).embedding);
  });

  it("should answer 404 NOT_FOUND for a job read on another task's route", async () => {
    const created = await api('POST', `/tasks/${TEXT_TASK}/tiny/jobs`, { text: 'a cat' });
    const { id } = created.body as { id: string };
    for (const path of [`/tasks/${IMAGE_TASK}/jobs/${id}`, `/tasks/zero-shot-image-classification/jobs/${id}`]) {
      const answer = await api('GET', path);
      expect(answer.status).toBe(404);
      expect(answer.body).toMatchObject({
        error: { code: 'NOT_FOUND', message: expect.stringContaining(`/api/tasks/${TEXT_TASK}/jobs/${id}`) },
      });
    }
  });
});
