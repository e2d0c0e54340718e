/**
 * Embedding jobs over GraphQL through a real server on the tiny model: embedImages / embedTexts over HTTP, the
 * same Job followed to COMPLETE over graphql-ws, vectors of the model's size in input order, each task's result
 * in its own field, and bad input coded as for classify.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ClassifyDocument,
  EmbedImagesDocument,
  EmbeddingJobUpdatedDocument,
  EmbedTextsDocument,
  SimilaritiesDocument,
  type EmbeddingJobFieldsFragment,
} from '../generated/graphql.js';
import { distinctImages, gql, startTestServer, subscribe, waitFor, type TestServer } from '../utils/testServer.js';

const MAX_TEXTS = 4;
const MAX_TEXT_LENGTH = 30;

let server: TestServer;
let images: string[];
let embeddingSize: number;

beforeAll(async () => {
  server = await startTestServer({ maxTextsPerJob: MAX_TEXTS, maxTextLength: MAX_TEXT_LENGTH, maxImagesPerJob: 5 });
  images = await distinctImages(3, 900);
  const models = await gql<{ models: { embeddingSize: number }[] }>(server.url, '{ models { embeddingSize } }');
  embeddingSize = models.body.data?.models[0]?.embeddingSize ?? 0;
  expect(embeddingSize).toBeGreaterThan(0);
});

/** Follows a job over graphql-ws until the server completes the subscription; returns the last state. */
async function followToEnd(id: string): Promise<EmbeddingJobFieldsFragment> {
  const result = await subscribe(server.wsUrl, EmbeddingJobUpdatedDocument, { id });
  expect(result.error).toBeUndefined();
  expect(result.completed).toBe(true);
  const states = result.messages.map((message) => message.data?.jobUpdated.status);
  expect(states.at(-1)).toBe('COMPLETE');
  const last = result.messages.at(-1)?.data?.jobUpdated;
  if (!last) throw new Error('no final state');
  return last;
}

function expectUnitVectors(job: EmbeddingJobFieldsFragment, count: number): number[][] {
  expect(job.embeddings?.dimensions).toBe(embeddingSize);
  const vectors = job.embeddings?.vectors ?? [];
  expect(vectors).toHaveLength(count);
  for (const vector of vectors) {
    expect(vector).toHaveLength(embeddingSize);
    expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
  }
  return vectors;
}

async function errorOf(
  document: typeof EmbedImagesDocument | typeof EmbedTextsDocument,
  input: Record<string, unknown>,
): Promise<{ code: unknown; field: unknown }> {
  const { body } = await gql<unknown, { input: never }>(server.url, document, { input: input as never });
  expect(body.data ?? null).toBeNull();
  const error = body.errors?.[0];
  if (error === undefined) throw new Error(`expected an error, got ${JSON.stringify(body)}`);
  return { code: error.extensions?.code, field: error.extensions?.field };
}

describe('embedImages', () => {
  it('should create an IMAGE_EMBEDDING job and complete it over graphql-ws with one vector per image, in order', async () => {
    const { body } = await gql(server.url, EmbedImagesDocument, { input: { images } });
    expect(body.errors).toBeUndefined();
    const created = body.data?.embedImages;
    expect(created).toMatchObject({
      status: 'QUEUED',
      task: 'IMAGE_EMBEDDING',
      model: 'tiny',
      imageCount: images.length,
      texts: [],
      embeddings: null,
    });
    const done = await followToEnd(created?.id ?? '');
    const vectors = expectUnitVectors(done, images.length);
    // In order: the last image alone gives the batch's last vector.
    const alone = await gql(server.url, EmbedImagesDocument, { input: { image: images[2] } });
    const single = await followToEnd(alone.body.data?.embedImages.id ?? '');
    expectUnitVectors(single, 1)[0]!.forEach((value, index) => expect(value).toBeCloseTo(vectors[2]![index]!, 6));
  });

  it('should refuse neither or both of image/images, and an empty list, as classify does', async () => {
    expect(await errorOf(EmbedImagesDocument, {})).toEqual({ code: 'BAD_USER_INPUT', field: 'image' });
    expect(await errorOf(EmbedImagesDocument, { image: images[0], images })).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'image,images',
    });
    expect(await errorOf(EmbedImagesDocument, { images: [] })).toEqual({ code: 'BAD_USER_INPUT', field: 'images' });
    expect(await errorOf(EmbedImagesDocument, { images: Array.from({ length: 6 }, () => images[0]) })).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'images',
    });
    expect(await errorOf(EmbedImagesDocument, { image: 'bm90IGFuIGltYWdl' })).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'image',
    });
    expect(await errorOf(EmbedImagesDocument, { image: images[0], model: 'nope' })).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'model',
    });
  });
});

describe('embedTexts', () => {
  it('should embed texts verbatim by default and with a template when config asks for one', async () => {
    const { body } = await gql(server.url, EmbedTextsDocument, {
      input: { texts: ['a photo of a dog', 'a cat', 'a photo of a dog'] },
    });
    expect(body.data?.embedTexts).toMatchObject({
      status: 'QUEUED',
      task: 'TEXT_EMBEDDING',
      texts: ['a photo of a dog', 'a cat', 'a photo of a dog'],
      imageCount: 0,
    });
    const vectors = expectUnitVectors(await followToEnd(body.data?.embedTexts.id ?? ''), 3);
    expect(vectors[2]).toEqual(vectors[0]);
    const templated = await gql(server.url, EmbedTextsDocument, {
      input: { text: 'dog', config: { promptTemplate: 'a photo of a {}' } },
    });
    const [vector] = expectUnitVectors(await followToEnd(templated.body.data?.embedTexts.id ?? ''), 1);
    vector!.forEach((value, index) => expect(value).toBeCloseTo(vectors[0]![index]!, 6));
  });

  it('should refuse neither text nor texts, empty texts and texts over the limits, naming the field', async () => {
    expect(await errorOf(EmbedTextsDocument, {})).toEqual({ code: 'BAD_USER_INPUT', field: 'text' });
    expect(await errorOf(EmbedTextsDocument, { text: 'a', texts: ['b'] })).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'text,texts',
    });
    expect(await errorOf(EmbedTextsDocument, { text: '' })).toEqual({ code: 'BAD_USER_INPUT', field: 'text' });
    expect(await errorOf(EmbedTextsDocument, { texts: [] })).toEqual({ code: 'BAD_USER_INPUT', field: 'texts' });
    expect(await errorOf(EmbedTextsDocument, { texts: ['ok', ' '] })).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'texts[1]',
    });
    expect(
      await errorOf(EmbedTextsDocument, { texts: Array.from({ length: MAX_TEXTS + 1 }, (_, i) => `t${i}`) }),
    ).toEqual({ code: 'BAD_USER_INPUT', field: 'texts' });
    expect(await errorOf(EmbedTextsDocument, { text: 'y'.repeat(MAX_TEXT_LENGTH + 1) })).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'text',
    });
    expect(await errorOf(EmbedTextsDocument, { text: 'a', config: { promptTemplate: 3 } })).toMatchObject({
      code: 'BAD_USER_INPUT',
    });
  });
});

describe('one Job type for every task', () => {
  it('should give each selection exactly its own result: `result` for a classification, `embeddings` for an embedding', async () => {
    const classified = await gql(server.url, ClassifyDocument, { input: { image: images[0], classes: ['a', 'b'] } });
    const embedded = await gql(server.url, EmbedImagesDocument, { input: { image: images[0] } });
    const ids = [classified.body.data?.classify.id ?? '', embedded.body.data?.embedImages.id ?? ''];
    const query = `query($id: ID!) { job(id: $id) { status task result { images { probabilities top(k: 1) { label } } } embeddings { dimensions } } }`;
    const [classification, embedding] = await Promise.all(
      ids.map((id) =>
        waitFor(async () => {
          const answer = await gql<{ job: { status: string; task: string; result: unknown; embeddings: unknown } }>(
            server.url,
            query,
            { id },
          );
          expect(answer.body.errors).toBeUndefined();
          return answer.body.data?.job.status === 'COMPLETE' ? answer.body.data.job : undefined;
        }),
      ),
    );
    expect(classification).toMatchObject({
      task: 'CLASSIFICATION',
      embeddings: null,
      result: { images: [{ probabilities: expect.any(Array), top: [{ label: expect.any(String) }] }] },
    });
    expect(embedding).toMatchObject({
      task: 'IMAGE_EMBEDDING',
      result: null,
      embeddings: { dimensions: embeddingSize },
    });
  });

  it('should cancel an embedding job and list it with the others', async () => {
    const { body } = await gql(server.url, EmbedTextsDocument, { input: { texts: ['one', 'two'] } });
    const id = body.data?.embedTexts.id ?? '';
    const cancelled = await gql<{ cancelJob: { status: string; task: string } }>(
      server.url,
      'mutation($id: ID!) { cancelJob(id: $id) { status task } }',
      { id },
    );
    expect(['CANCELLED', 'COMPLETE']).toContain(cancelled.body.data?.cancelJob.status);
    expect(cancelled.body.data?.cancelJob.task).toBe('TEXT_EMBEDDING');
  });
});

describe('similarities', () => {
  it('should rank images for each text query by the cosine of their vectors, best first', async () => {
    const texts = await gql(server.url, EmbedTextsDocument, { input: { texts: ['a red square', 'a photo of a dog'] } });
    const imageJob = await gql(server.url, EmbedImagesDocument, { input: { images } });
    const textsDone = await followToEnd(texts.body.data?.embedTexts.id ?? '');
    const imagesDone = await followToEnd(imageJob.body.data?.embedImages.id ?? '');
    const { body } = await gql(server.url, SimilaritiesDocument, {
      queries: textsDone.id,
      candidates: imagesDone.id,
      k: 2,
    });
    expect(body.errors).toBeUndefined();
    const rankings = body.data?.similarities ?? [];
    expect(rankings.map((ranking) => [ranking.index, ranking.text])).toEqual([
      [0, 'a red square'],
      [1, 'a photo of a dog'],
    ]);
    const textVectors = textsDone.embeddings?.vectors ?? [];
    const imageVectors = imagesDone.embeddings?.vectors ?? [];
    for (const ranking of rankings) {
      const expected = imageVectors
        .map((vector, index) => ({
          index,
          score: vector.reduce((sum, value, i) => sum + value * textVectors[ranking.index]![i]!, 0),
        }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 2);
      expect(ranking.matches.map((match) => match.index)).toEqual(expected.map((match) => match.index));
      ranking.matches.forEach((match, i) => {
        expect(match.score).toBeCloseTo(expected[i]!.score, 6);
        expect(match.text).toBeNull();
      });
    }
  });

  it('should answer NOT_FOUND for an unknown job and BAD_USER_INPUT for a classification job', async () => {
    const texts = await gql(server.url, EmbedTextsDocument, { input: { text: 'a cat' } });
    const done = await followToEnd(texts.body.data?.embedTexts.id ?? '');
    const unknown = await gql(server.url, SimilaritiesDocument, { queries: done.id, candidates: 'no-such-job' });
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const classified = await gql(server.url, ClassifyDocument, { input: { image: images[0], classes: ['a', 'b'] } });
    const id = classified.body.data?.classify.id ?? '';
    await waitFor(async () =>
      (await gql<{ job: { status: string } }>(server.url, 'query($id: ID!) { job(id: $id) { status } }', { id })).body
        .data?.job.status === 'COMPLETE'
        ? true
        : undefined,
    );
    const wrong = await gql(server.url, SimilaritiesDocument, { queries: done.id, candidates: id });
    expect(wrong.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'candidates' });
  });
});
