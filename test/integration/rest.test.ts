/**
 * The feature-extraction-server REST API through the real server on the tiny generated model: the seed's
 * exact request and response shapes, kebab/snake model names, and every refusal with its status and code.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { TINY_MODEL_DIR } from '../utils/testModel.js';
import { gql, startTestServer, tinyImages, waitFor, type TestServer } from '../utils/testServer.js';

const TASK = 'zero-shot-image-classification';
const ALL_TASKS = [TASK, 'image-embedding', 'text-embedding'];
const CLASSES = ['a red square', 'a photo of a dog', 'a blue circle', 'text'];
// Small limits so the 413 case needs only a small body: the body limit must still fit one base64 image.
const MAX_IMAGE_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 256 * 1024;

let server: TestServer;
let images: string[];

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

async function api(method: 'GET' | 'POST', path: string, body?: unknown, target: TestServer = server): Promise<Answer> {
  const response = await fetch(`${target.url}/api${path}`, {
    method,
    ...(body === undefined
      ? {}
      : {
          headers: { 'content-type': 'application/json' },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        }),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`expected JSON from ${method} ${path}, got ${response.status}: ${text.slice(0, 200)}`);
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** Polls a job until the seed's status says it is done. */
async function pollJob(id: string, batched: boolean): Promise<Record<string, unknown>> {
  const path = `/tasks/${TASK}${batched ? '/batched' : ''}/jobs/${id}`;
  return waitFor(async () => {
    const answer = await api('GET', path);
    expect(answer.status).toBe(200);
    const body = answer.body as Record<string, unknown>;
    expect(['starting', 'running', 'complete', 'failed']).toContain(body.status);
    return body.status === 'complete' || body.status === 'failed' ? body : undefined;
  });
}

function expectDistribution(probabilities: unknown, length: number): void {
  expect(Array.isArray(probabilities)).toBe(true);
  const values = probabilities as number[];
  expect(values).toHaveLength(length);
  for (const value of values) {
    expect(value).toBeGreaterThanOrEqual(0);
    expect(value).toBeLessThanOrEqual(1);
  }
  expect(values.reduce((sum, value) => sum + value, 0)).toBeCloseTo(1, 5);
}

beforeAll(async () => {
  server = await startTestServer({
    clipModels: [{ name: 'tiny_copy', source: TINY_MODEL_DIR }],
    maxImageBytes: MAX_IMAGE_BYTES,
    maxBodyBytes: MAX_BODY_BYTES,
  });
  images = await tinyImages();
});

describe('REST listing', () => {
  it('should list the tasks and the models in kebab case', async () => {
    expect(await api('GET', '/tasks')).toMatchObject({ status: 200, body: ALL_TASKS });
    const models = await api('GET', '/models');
    expect(models.status).toBe(200);
    expect(models.body).toEqual(expect.arrayContaining(['tiny', 'tiny-copy']));
    for (const task of [TASK, 'zero_shot_image_classification']) {
      expect((await api('GET', `/tasks/${task}/models`)).body).toEqual(models.body);
    }
  });

  it('should list the tasks for a model named in kebab or snake case', async () => {
    for (const model of ['tiny', 'tiny-copy', 'tiny_copy']) {
      expect(await api('GET', `/models/${model}/tasks`)).toMatchObject({ status: 200, body: ALL_TASKS });
    }
  });

  it('should answer 404 for an unknown task or model', async () => {
    expect(await api('GET', '/tasks/image-captioning/models')).toMatchObject({
      status: 404,
      body: { error: { code: 'NOT_FOUND' } },
    });
    expect(await api('GET', '/models/blip2/tasks')).toMatchObject({
      status: 404,
      body: { error: { code: 'NOT_FOUND' } },
    });
  });
});

describe('REST jobs', () => {
  it('should run a single-image job with the seed shapes', async () => {
    const created = await api('POST', `/tasks/${TASK}/tiny/jobs`, { image: images[0], classes: CLASSES, config: {} });
    expect(created.status).toBe(200);
    expect(created.body).toEqual({ id: expect.any(String), status: 'starting' });
    const done = await pollJob((created.body as { id: string }).id, false);
    expect(Object.keys(done).sort()).toEqual(['result', 'status']);
    expect(done.status).toBe('complete');
    const result = done.result as Record<string, unknown>;
    expect(Object.keys(result)).toEqual(['probabilities']);
    expectDistribution(result.probabilities, CLASSES.length);
  });

  it('should run a batched job with one result per image, in order', async () => {
    const created = await api('POST', `/tasks/${TASK}/batched/tiny/jobs`, {
      image: images,
      classes: CLASSES,
      config: {},
    });
    expect(created.status).toBe(200);
    expect(created.body).toEqual({ id: expect.any(String), status: 'starting' });
    const { id } = created.body as { id: string };
    const done = await pollJob(id, true);
    expect(done.status).toBe('complete');
    const results = done.result as { probabilities: number[] }[];
    expect(results).toHaveLength(images.length);
    for (const result of results) {
      expect(Object.keys(result)).toEqual(['probabilities']);
      expectDistribution(result.probabilities, CLASSES.length);
    }
    // Each image alone gives the same answer as inside the batch.
    const alone = await api('POST', `/tasks/${TASK}/tiny/jobs`, { image: images[1], classes: CLASSES });
    const aloneDone = await pollJob((alone.body as { id: string }).id, false);
    const aloneProbabilities = (aloneDone.result as { probabilities: number[] }).probabilities;
    aloneProbabilities.forEach((value, index) =>
      expect(value).toBeCloseTo(results[1]?.probabilities[index] ?? Number.NaN, 5),
    );
    // A result is kept after it has been read (the seed deleted it).
    expect((await api('GET', `/tasks/${TASK}/batched/jobs/${id}`)).body).toEqual(done);
  });

  it('should accept config.promptTemplate and bare base64', async () => {
    const bare = images[0]?.replace(/^data:[^,]*,/, '');
    const created = await api('POST', `/tasks/${TASK}/tiny/jobs`, {
      image: bare,
      classes: CLASSES,
      config: { promptTemplate: '{}' },
    });
    expect(created.status).toBe(200);
    const done = await pollJob((created.body as { id: string }).id, false);
    expect(done.status).toBe('complete');
  });

  it('should give the same probabilities as the GraphQL API for the same input', async () => {
    const created = await api('POST', `/tasks/${TASK}/tiny/jobs`, { image: images[2], classes: CLASSES });
    const rest = (await pollJob((created.body as { id: string }).id, false)).result as { probabilities: number[] };
    const mutation = await gql<{ classify: { id: string } }>(
      server.url,
      'mutation($image: String!, $classes: [String!]!) { classify(input: { image: $image, classes: $classes, model: "tiny" }) { id } }',
      {
        image: images[2],
        classes: CLASSES,
      },
    );
    const jobId = mutation.body.data?.classify.id ?? '';
    const graphql = await waitFor(async () => {
      const answer = await gql<{ job: { status: string; result: { images: { probabilities: number[] }[] } | null } }>(
        server.url,
        'query($id: ID!) { job(id: $id) { status result { images { probabilities } } } }',
        { id: jobId },
      );
      return answer.body.data?.job.status === 'COMPLETE'
        ? answer.body.data.job.result?.images[0]?.probabilities
        : undefined;
    });
    rest.probabilities.forEach((value, index) => expect(value).toBeCloseTo(graphql[index] ?? Number.NaN, 9));
  });

  it('should accept model names in kebab or snake case', async () => {
    for (const model of ['tiny-copy', 'tiny_copy', 'TINY_COPY']) {
      const created = await api('POST', `/tasks/${TASK}/${model}/jobs`, { image: images[0], classes: CLASSES });
      expect(created.status).toBe(200);
      expect((await pollJob((created.body as { id: string }).id, false)).status).toBe('complete');
    }
  });

  it('should answer the legacy synchronous route with the probabilities themselves', async () => {
    const answer = await api('POST', `/legacy/tasks/${TASK}/tiny/jobs`, { image: images[0], classes: CLASSES });
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.body as object)).toEqual(['probabilities']);
    expectDistribution((answer.body as { probabilities: unknown }).probabilities, CLASSES.length);
  });

  it('should answer 404 for an unknown job on either route', async () => {
    for (const path of [`/tasks/${TASK}/jobs/no-such-job`, `/tasks/${TASK}/batched/jobs/no-such-job`]) {
      const answer = await api('GET', path);
      expect(answer.status).toBe(404);
      expect(answer.body).toMatchObject({
        error: { code: 'NOT_FOUND', message: expect.any(String) },
        detail: expect.any(String),
      });
    }
  });
});

describe('REST refusals', () => {
  const notAnImage = Buffer.from('this is plain text, not an image at all').toString('base64');

  it.each([
    [
      'an image that is not base64',
      `/tasks/${TASK}/tiny/jobs`,
      () => ({ image: '%%% not base64 %%%', classes: CLASSES }),
      /^image/,
    ],
    [
      'an image that is not an image',
      `/tasks/${TASK}/tiny/jobs`,
      () => ({ image: notAnImage, classes: CLASSES }),
      /^image/,
    ],
    [
      'a bad image inside a batch',
      `/tasks/${TASK}/batched/tiny/jobs`,
      () => ({ image: [images[0], notAnImage], classes: CLASSES }),
      /^image/,
    ],
    ['empty classes', `/tasks/${TASK}/tiny/jobs`, () => ({ image: images[0], classes: [] }), /^classes/],
    ['missing classes', `/tasks/${TASK}/tiny/jobs`, () => ({ image: images[0] }), /^classes/],
    ['an empty batch', `/tasks/${TASK}/batched/tiny/jobs`, () => ({ image: [], classes: CLASSES }), /^image/],
    [
      'an unknown model',
      `/tasks/${TASK}/no-such-model/jobs`,
      () => ({ image: images[0], classes: CLASSES }),
      /^model$/,
    ],
    ['a list on the single route', `/tasks/${TASK}/tiny/jobs`, () => ({ image: images, classes: CLASSES }), /^image$/],
  ])('should answer 422 BAD_USER_INPUT for %s, naming the field', async (_name, path, body, field) => {
    const answer = await api('POST', path, body());
    expect(answer.status).toBe(422);
    const error = (answer.body as { error: { code: string; message: string; field: string } }).error;
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message.length).toBeGreaterThan(5);
    expect(error.field).toMatch(field);
    expect((answer.body as { detail: string }).detail).toBe(error.message);
  });

  it('should answer 400 with a JSON error for malformed JSON', async () => {
    const answer = await api('POST', `/tasks/${TASK}/tiny/jobs`, '{"image": "abc", "classes": ["a",');
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(answer.body).toMatchObject({
      error: { code: 'BAD_USER_INPUT', message: expect.stringMatching(/^Malformed JSON in request body/) },
    });
  });

  it('should answer 413 with a JSON error for a body over the limit', async () => {
    const answer = await api('POST', `/tasks/${TASK}/tiny/jobs`, {
      image: 'A'.repeat(MAX_BODY_BYTES + 1024),
      classes: CLASSES,
    });
    expect(answer.status).toBe(413);
    expect(answer.body).toMatchObject({
      error: { code: 'PAYLOAD_TOO_LARGE', message: `Request body is over the size limit of ${MAX_BODY_BYTES} bytes` },
    });
  });

  it('should answer 404 JSON for an unknown route under /api', async () => {
    expect(await api('GET', '/no/such/route')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
  });

  it('should never leak stack traces or file paths in error bodies', async () => {
    const answers = await Promise.all([
      api('POST', `/tasks/${TASK}/tiny/jobs`, '{'),
      api('POST', `/tasks/${TASK}/tiny/jobs`, { image: notAnImage, classes: CLASSES }),
      api('GET', `/tasks/${TASK}/jobs/%E0%A4%A`),
    ]);
    for (const answer of answers) {
      expect(JSON.stringify(answer.body)).not.toMatch(/\/work\/|node_modules|\.ts:\d|\bat \w+ \(/);
    }
  });
});

describe('REST under overload', () => {
  it('should refuse the excess with 429 OVERLOADED and complete every accepted job', async () => {
    const small = await startTestServer({ maxQueuedJobs: 2, maxConcurrentJobs: 1 });
    const batch = Array.from({ length: 8 }, (_, index) => images[index % images.length]);
    const answers = await Promise.all(
      Array.from({ length: 24 }, () =>
        api('POST', `/tasks/${TASK}/batched/tiny/jobs`, { image: batch, classes: CLASSES }, small),
      ),
    );
    const refused = answers.filter((answer) => answer.status === 429);
    const accepted = answers.filter((answer) => answer.status === 200);
    expect(refused.length + accepted.length).toBe(answers.length);
    expect(refused.length).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThan(0);
    for (const answer of refused) {
      expect(answer.body).toMatchObject({ error: { code: 'OVERLOADED' } });
      expect(answer.headers.get('retry-after')).toBe('1');
    }
    for (const answer of accepted) {
      const { id } = answer.body as { id: string };
      const done = await waitFor(async () => {
        const status = await api('GET', `/tasks/${TASK}/batched/jobs/${id}`, undefined, small);
        const body = status.body as { status: string };
        return body.status === 'complete' || body.status === 'failed' ? body : undefined;
      });
      expect(done.status).toBe('complete');
    }
    await small.stop();
  });
});
