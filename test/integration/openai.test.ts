/**
 * The OpenAI-compatible API through a real server on the tiny model, driven by the clients people use: the
 * official `openai` package (it asks for base64 and decodes it) and LangChain's OpenAIEmbeddings. Vectors equal
 * those of GraphQL embedding jobs for the same inputs; texts, data-URI images, `modality: "image"` (bare base64 and
 * URLs), `{"text"}`/`{"image"}` objects, both encodings, `GET /v1/models`, and errors in OpenAI's shape.
 */
import { OpenAIEmbeddings } from '@langchain/openai';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { distinctImages, gql, startTestServer, waitFor, type TestServer } from '../utils/testServer.js';
import { bytesOfDataUrl, startForbiddenHost, startImageHost, type LoopbackHost } from '../utils/imageHost.js';

const MODEL = 'tiny';
const TEXTS = ['a photo of a cat', 'a diagram of a bridge', 'two dogs playing in the snow'];

let server: TestServer;
let client: OpenAI;
let images: string[];
let host: LoopbackHost;
let forbidden: LoopbackHost;
let embeddingSize: number;

beforeAll(async () => {
  images = await distinctImages(3, 3100);
  host = await startImageHost({ 'cat.png': bytesOfDataUrl(images[1] as string) });
  forbidden = await startForbiddenHost(bytesOfDataUrl(images[0] as string));
  server = await startTestServer({ imageUrlAllowedNetworks: ['127.0.0.1/32'], maxImagesPerJob: 4 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-needed', maxRetries: 0 });
  const models = await gql<{ models: { embeddingSize: number }[] }>(server.url, '{ models { embeddingSize } }');
  embeddingSize = models.body.data?.models[0]?.embeddingSize ?? 0;
});

/** The vectors of a GraphQL embedding job (embedTexts or embedImages) for the same inputs. */
async function graphqlVectors(kind: 'texts' | 'images', inputs: string[]): Promise<number[][]> {
  const mutation =
    kind === 'texts'
      ? 'mutation ($input: EmbedTextsInput!) { job: embedTexts(input: $input) { id } }'
      : 'mutation ($input: EmbedImagesInput!) { job: embedImages(input: $input) { id } }';
  const { body } = await gql<{ job: { id: string } }>(server.url, mutation, { input: { [kind]: inputs } });
  const id = body.data?.job.id;
  if (id === undefined) throw new Error(JSON.stringify(body.errors));
  return waitFor(async () => {
    const read = await gql<{ job: { status: string; embeddings: { vectors: number[][] } | null } }>(
      server.url,
      'query ($id: ID!) { job(id: $id) { status embeddings { vectors } } }',
      { id },
    );
    return read.body.data?.job.status === 'COMPLETE' ? read.body.data.job.embeddings?.vectors : undefined;
  });
}

async function apiErrorOf(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof OpenAI.APIError)) throw new Error(`expected an APIError, got ${String(error)}`);
  return error;
}

describe('the openai client', () => {
  it('should list the configured models', async () => {
    const page = await client.models.list();
    expect(page.data.map((model) => model.id)).toEqual([MODEL]);
    expect(page.data[0]).toMatchObject({ object: 'model', owned_by: 'clip-classify-server' });
    expect((await client.models.retrieve(MODEL)).id).toBe(MODEL);
  });

  it('should embed texts to the vectors of a GraphQL embedTexts job, in both encodings, counting their tokens', async () => {
    const base64 = await client.embeddings.create({ model: MODEL, input: TEXTS });
    const float = await client.embeddings.create({ model: MODEL, input: TEXTS, encoding_format: 'float' });
    const expected = await graphqlVectors('texts', TEXTS);
    expect(base64.data.map((item) => item.embedding)).toEqual(expected);
    expect(float.data.map((item) => item.embedding)).toEqual(expected);
    expect(base64.data.map((item) => item.index)).toEqual([0, 1, 2]);
    expect(base64.object).toBe('list');
    expect(base64.model).toBe(MODEL);
    expect(base64.usage.prompt_tokens).toBeGreaterThan(TEXTS.length * 2);
    expect(base64.usage.total_tokens).toBe(base64.usage.prompt_tokens);
    expect(expected[0]).toHaveLength(embeddingSize);
  });

  it('should embed data-URI images, bare base64 and URLs with modality "image" to the vectors of a GraphQL embedImages job', async () => {
    const expected = await graphqlVectors('images', images);
    const dataUris = await client.embeddings.create({ model: MODEL, input: images });
    expect(dataUris.data.map((item) => item.embedding)).toEqual(expected);
    expect(dataUris.usage.prompt_tokens).toBe(0);
    const bare = images.map((image) => image.slice(image.indexOf(',') + 1));
    const modality = await client.embeddings.create({
      model: MODEL,
      input: [bare[0] as string, `${host.url}/cat.png`, bare[2] as string],
      modality: 'image',
    } as OpenAI.EmbeddingCreateParams);
    expect(modality.data.map((item) => item.embedding)).toEqual(expected);
  });

  it('should keep mixed {"text"} and {"image"} objects in input order', async () => {
    const [textVectors, imageVectors] = [
      await graphqlVectors('texts', TEXTS.slice(0, 2)),
      await graphqlVectors('images', images.slice(0, 2)),
    ];
    const input = [{ image: images[0] }, { text: TEXTS[0] }, { image: `${host.url}/cat.png` }, { text: TEXTS[1] }];
    const answer = await client.embeddings.create({ model: MODEL, input } as unknown as OpenAI.EmbeddingCreateParams);
    expect(answer.data.map((item) => item.embedding)).toEqual([
      imageVectors[0],
      textVectors[0],
      imageVectors[1],
      textVectors[1],
    ]);
    // A URL in a plain string is a text: it is never guessed to be an image.
    const asText = await client.embeddings.create({ model: MODEL, input: [`${host.url}/cat.png`] });
    expect(asText.data[0]?.embedding).toEqual((await graphqlVectors('texts', [`${host.url}/cat.png`]))[0]);
  });

  it('should accept the model’s own size as dimensions and refuse any other, naming it', async () => {
    const same = await client.embeddings.create({ model: MODEL, input: 'a cat', dimensions: embeddingSize });
    expect(same.data[0]?.embedding).toHaveLength(embeddingSize);
    const error = await apiErrorOf(client.embeddings.create({ model: MODEL, input: 'a cat', dimensions: 8 }));
    expect(error.status).toBe(400);
    expect(error.param).toBe('dimensions');
    expect(error.type).toBe('invalid_request_error');
  });

  it('should answer errors in OpenAI’s shape, naming the input at fault', async () => {
    const unknown = await apiErrorOf(client.embeddings.create({ model: 'text-embedding-3-small', input: 'a cat' }));
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect(unknown.code).toBe('model_not_found');

    const badImage = await apiErrorOf(
      client.embeddings.create({
        model: MODEL,
        input: ['a cat', 'a dog', 'a cow', 'data:image/png;base64,bm90IGFuIGltYWdl'],
      }),
    );
    expect(badImage.status).toBe(400);
    expect(badImage.param).toBe('input[3]');
    expect(badImage.message).toMatch(/input\[3\]: not an image/);

    const refusedUrl = await apiErrorOf(
      client.embeddings.create({
        model: MODEL,
        input: [{ text: 'a cat' }, { image: `${forbidden.url}/x.png` }],
      } as unknown as OpenAI.EmbeddingCreateParams),
    );
    expect(refusedUrl.status).toBe(400);
    expect(refusedUrl.param).toBe('input[1]');
    expect(refusedUrl.code).toBe('URL_FORBIDDEN');
    expect(forbidden.connections()).toBe(0);

    const tooMany = await apiErrorOf(client.embeddings.create({ model: MODEL, input: [...images, ...images] }));
    expect(tooMany.status).toBe(400);
    expect(tooMany.param).toBe('input');
    expect(tooMany.message).toContain('MAX_IMAGES_PER_JOB');

    const raw = await fetch(`${server.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": ',
    });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toEqual({
      error: { message: 'The request body is not valid JSON', type: 'invalid_request_error', param: null, code: null },
    });
    const nowhere = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST' });
    expect(nowhere.status).toBe(404);
    expect(((await nowhere.json()) as { error: { code: string } }).error.code).toBe('unknown_url');
  });
});

describe("LangChain's OpenAIEmbeddings", () => {
  it('should embed documents and a query to the vectors of GraphQL jobs', async () => {
    const embeddings = new OpenAIEmbeddings({
      model: MODEL,
      apiKey: 'not-needed',
      configuration: { baseURL: `${server.url}/v1` },
      maxRetries: 0,
    });
    const expected = await graphqlVectors('texts', TEXTS);
    expect(await embeddings.embedDocuments(TEXTS)).toEqual(expected);
    expect(await embeddings.embedQuery(TEXTS[1] as string)).toEqual(expected[1]);
  });
});

describe('with API keys', () => {
  it('should answer 401 invalid_api_key without the key, embed with it, and 413 a body over MAX_BODY_BYTES or nested past MAX_JSON_DEPTH', async () => {
    const KEY = 'openai-test-key';
    const keyed = await startTestServer({ apiKeys: [KEY], maxImageBytes: 1024, maxBodyBytes: 70_000 });
    const wrong = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    const error = await apiErrorOf(wrong.embeddings.create({ model: MODEL, input: 'a cat' }));
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error.code).toBe('invalid_api_key');
    const right = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: KEY, maxRetries: 0 });
    expect((await right.embeddings.create({ model: MODEL, input: 'a cat' })).data).toHaveLength(1);
    const tooLarge = await apiErrorOf(right.embeddings.create({ model: MODEL, input: 'x'.repeat(80_000) }));
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.code).toBe('PAYLOAD_TOO_LARGE');
    const tooComplex = await fetch(`${keyed.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: `{"model":"${MODEL}","input":${'['.repeat(1000)}${']'.repeat(1000)}}`,
    });
    expect(tooComplex.status).toBe(413);
    const refusal = (await tooComplex.json()) as { error: { message: string; type: string; code: string } };
    expect(refusal.error).toMatchObject({ type: 'invalid_request_error', code: 'PAYLOAD_TOO_LARGE' });
    expect(refusal.error.message).toContain('MAX_JSON_DEPTH');
    await keyed.stop();
  });
});
