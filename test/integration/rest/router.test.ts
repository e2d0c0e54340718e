import http from 'node:http';
import { OPEN_CALLER, type Caller } from '../../../src/jobs/caller.js';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInfo } from '../../../src/clip/types.js';
import { AppError, ErrorCode, badUserInput } from '../../../src/errors.js';
import { isTerminal, type Job, type SubmitJobInput } from '../../../src/jobs/types.js';
import type { JobSubmitter } from '../../../src/rest/deps.js';
import { createRestRouter } from '../../../src/rest/router.js';
import { normaliseModelName } from '../../../src/clip/catalogue.js';

/**
 * A JobSubmitter double: records submissions, lets a test move jobs through their states (announced to its
 * watchers), and throws what a test scripts. The router under test is the real one, on a real express app and socket.
 */
class JobsDouble implements JobSubmitter {
  readonly jobs = new Map<string, Job>();
  readonly #watchers = new Set<(job: Job) => void>();
  readonly submitted: SubmitJobInput[] = [];
  nextError: Error | undefined;
  #count = 0;

  async submit(_caller: Caller, input: SubmitJobInput): Promise<Job> {
    if (this.nextError !== undefined) {
      const error = this.nextError;
      this.nextError = undefined;
      throw error;
    }
    this.submitted.push(input);
    const job: Job = {
      id: `job-${++this.#count}`,
      owner: null,
      task: input.task ?? 'classification',
      model: input.model ?? 'default',
      classes: input.task === undefined || input.task === 'classification' ? input.classes : [],
      texts: input.task === 'text-embedding' ? input.texts : [],
      imageCount: input.task === 'text-embedding' ? 0 : input.images.length,
      batched: input.batched,
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + 3_600_000),
      version: 0,
      status: 'queued',
    };
    this.jobs.set(job.id, job);
    return job;
  }

  async get(_caller: Caller, id: string): Promise<Job | undefined> {
    return this.jobs.get(id);
  }

  async watch(_caller: Caller, id: string): Promise<AsyncIterableIterator<Job>> {
    const current = this.jobs.get(id);
    if (current === undefined) throw new AppError(ErrorCode.NotFound, `job ${id} not found`);
    const states: Job[] = [current];
    let wake: (() => void) | null = null;
    const listener = (job: Job): void => {
      if (job.id !== id) return;
      states.push(job);
      wake?.();
    };
    this.#watchers.add(listener);
    const watchers = this.#watchers;
    return (async function* () {
      try {
        for (;;) {
          const job = states.shift();
          if (job === undefined) {
            await new Promise<void>((resolve) => (wake = resolve));
            continue;
          }
          yield job;
          if (isTerminal(job)) return;
        }
      } finally {
        watchers.delete(listener);
      }
    })();
  }

  #set(job: Job): void {
    this.jobs.set(job.id, job);
    for (const listener of this.#watchers) listener(job);
  }

  complete(id: string, probabilities: number[][]): void {
    const job = this.#job(id);
    this.#set({
      ...job,
      status: 'complete',
      startedAt: new Date(),
      finishedAt: new Date(),
      result: { task: 'classification', images: probabilities.map((p) => ({ probabilities: p })) },
    });
  }

  completeEmbedding(id: string, embeddings: number[][]): void {
    const job = this.#job(id);
    if (job.task === 'classification') throw new Error(`${id} is a classification job`);
    this.#set({
      ...job,
      status: 'complete',
      startedAt: new Date(),
      finishedAt: new Date(),
      result: { task: job.task, embeddings },
    });
  }

  run(id: string): void {
    this.#set({ ...this.#job(id), status: 'running', startedAt: new Date() });
  }

  fail(id: string, code: ErrorCode, message: string): void {
    this.#set({
      ...this.#job(id),
      status: 'failed',
      startedAt: null,
      finishedAt: new Date(),
      error: { code, message },
    });
  }

  #job(id: string): Job {
    const job = this.jobs.get(id);
    if (job === undefined) throw new Error(`no job ${id}`);
    return job;
  }
}

function modelInfo(name: string): ModelInfo {
  return {
    name,
    source: name,
    precision: 'fp32',
    status: 'ready',
    embeddingSize: 8,
    contextLength: 77,
    imageSize: 32,
    logitScale: 100,
    error: null,
  };
}

const MODELS = [modelInfo('clip-vit-base-patch32'), modelInfo('tiny_test')];
const jobs = new JobsDouble();
const logLines: string[] = [];
let server: http.Server;
let base: string;

beforeAll(async () => {
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  const app = express();
  app.use(
    '/api',
    createRestRouter({
      jobs,
      clip: {
        models: () => MODELS,
        resolveModelName: (name) => MODELS.find((m) => normaliseModelName(m.name) === normaliseModelName(name))?.name,
      },
      logger,
      callerOf: () => OPEN_CALLER,
      maxBodyBytes: 4096,
      jsonLimits: { maxDepth: 8, maxValues: 200 },
    }),
  );
  server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
});

afterEach(() => {
  jobs.nextError = undefined;
});

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

async function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<Answer> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers = { 'content-type': contentType };
  }
  const response = await fetch(`${base}${path}`, init);
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

const TASK = '/tasks/zero-shot-image-classification';
const ALL_TASKS = ['zero-shot-image-classification', 'image-embedding', 'text-embedding'];

describe('listing routes', () => {
  it('should list the three CLIP tasks', async () => {
    const answer = await call('GET', '/tasks');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(ALL_TASKS);
  });

  it('should list models in kebab case, also per task in either spelling', async () => {
    expect((await call('GET', '/models')).body).toEqual(['clip-vit-base-patch32', 'tiny-test']);
    expect((await call('GET', '/tasks/zero_shot_image_classification/models')).body).toEqual([
      'clip-vit-base-patch32',
      'tiny-test',
    ]);
  });

  it('should list the tasks for a model in kebab or snake case', async () => {
    expect((await call('GET', '/models/tiny-test/tasks')).body).toEqual(ALL_TASKS);
    expect((await call('GET', '/models/clip_vit_base_patch32/tasks')).body).toEqual(ALL_TASKS);
    expect((await call('GET', '/tasks/image_embedding/models')).body).toEqual(['clip-vit-base-patch32', 'tiny-test']);
  });

  it('should answer 404 JSON for an unknown task or model', async () => {
    const task = await call('GET', '/tasks/image-captioning/models');
    expect(task.status).toBe(404);
    expect(task.body).toMatchObject({ error: { code: 'NOT_FOUND' } });
    const model = await call('GET', '/models/blip2/tasks');
    expect(model.status).toBe(404);
    expect(model.body).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('should answer 404 JSON for a route that does not exist', async () => {
    const answer = await call('GET', '/nothing/here');
    expect(answer.status).toBe(404);
    expect(answer.headers.get('content-type')).toMatch(/application\/json/);
    expect(answer.body).toEqual({
      error: { code: 'NOT_FOUND', message: 'No route GET /api/nothing/here' },
      detail: 'No route GET /api/nothing/here',
    });
  });
});

describe('single-image jobs', () => {
  it('should submit the body as a job on the resolved model and answer {id, status: starting}', async () => {
    const answer = await call('POST', `${TASK}/tiny_test/jobs`, {
      image: 'data:image/png;base64,AAAA',
      classes: ['cat', 'dog'],
      config: { promptTemplate: '{}' },
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ id: expect.any(String), status: 'starting' });
    expect(jobs.submitted.at(-1)).toEqual({
      images: ['data:image/png;base64,AAAA'],
      imagesField: 'image',
      batched: false,
      classes: ['cat', 'dog'],
      config: { promptTemplate: '{}' },
      model: 'tiny_test',
    });
  });

  it('should report starting, running, then complete with one probabilities object', async () => {
    const { body } = await call('POST', `${TASK}/tiny-test/jobs`, { image: 'AAAA', classes: ['a', 'b'] });
    const { id } = body as { id: string };
    expect((await call('GET', `${TASK}/jobs/${id}`)).body).toEqual({ status: 'starting' });
    jobs.run(id);
    expect((await call('GET', `${TASK}/jobs/${id}`)).body).toEqual({ status: 'running' });
    jobs.complete(id, [[0.3, 0.7]]);
    const done = await call('GET', `${TASK}/jobs/${id}`);
    expect(done.status).toBe(200);
    expect(done.headers.get('cache-control')).toBe('no-store');
    expect(done.body).toEqual({ status: 'complete', result: { probabilities: [0.3, 0.7] } });
    // Unlike the seed, reading a result does not delete it.
    expect((await call('GET', `${TASK}/jobs/${id}`)).body).toEqual(done.body);
  });

  it('should answer a failed job with status failed and the error, at 200', async () => {
    const { body } = await call('POST', `${TASK}/tiny-test/jobs`, { image: 'AAAA', classes: ['a', 'b'] });
    const { id } = body as { id: string };
    jobs.fail(id, ErrorCode.InferenceFailed, 'the model failed');
    const answer = await call('GET', `${TASK}/jobs/${id}`);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: 'failed', error: { code: 'INFERENCE_FAILED', message: 'the model failed' } });
  });

  it('should answer 404 for an unknown job', async () => {
    const answer = await call('GET', `${TASK}/jobs/does-not-exist`);
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({
      error: { code: 'NOT_FOUND' },
      detail: expect.stringContaining('does-not-exist'),
    });
  });
});

describe('batched jobs', () => {
  it('should submit a list of images and answer a list of results on the batched route', async () => {
    const answer = await call('POST', `${TASK}/batched/tiny-test/jobs`, {
      image: ['AAAA', 'BBBB'],
      classes: ['a', 'b', 'c'],
      config: {},
    });
    expect(answer.status).toBe(200);
    const { id, status } = answer.body as { id: string; status: string };
    expect(status).toBe('starting');
    expect(jobs.submitted.at(-1)).toMatchObject({
      images: ['AAAA', 'BBBB'],
      batched: true,
      classes: ['a', 'b', 'c'],
      config: {},
    });
    jobs.complete(id, [
      [0.2, 0.3, 0.5],
      [0.1, 0.1, 0.8],
    ]);
    expect((await call('GET', `${TASK}/batched/jobs/${id}`)).body).toEqual({
      status: 'complete',
      result: [{ probabilities: [0.2, 0.3, 0.5] }, { probabilities: [0.1, 0.1, 0.8] }],
    });
    const single = await call('GET', `${TASK}/jobs/${id}`);
    expect(single.status).toBe(422);
    expect(single.body).toMatchObject({ error: { code: 'BAD_USER_INPUT', field: 'id' } });
  });
});

describe('refusals', () => {
  it.each([
    ['an unknown model', `${TASK}/no-such-model/jobs`, { image: 'AAAA', classes: ['a'] }, 'model'],
    ['a missing image', `${TASK}/tiny-test/jobs`, { classes: ['a'] }, 'image'],
    ['a list image on the single route', `${TASK}/tiny-test/jobs`, { image: ['AAAA'], classes: ['a'] }, 'image'],
    ['classes that are not a list', `${TASK}/tiny-test/jobs`, { image: 'AAAA', classes: 'a' }, 'classes'],
    [
      'a non-string batched image',
      `${TASK}/batched/tiny-test/jobs`,
      { image: ['AAAA', 1], classes: ['a'] },
      'image[1]',
    ],
  ])('should answer 422 for %s, naming the field', async (_name, path, body, field) => {
    const answer = await call('POST', path, body);
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ error: { code: 'BAD_USER_INPUT', field }, detail: expect.any(String) });
  });

  it('should pass on a BAD_USER_INPUT from the job service as 422 with its message and field', async () => {
    jobs.nextError = badUserInput('classes must not be empty', 'classes');
    const answer = await call('POST', `${TASK}/tiny-test/jobs`, { image: 'AAAA', classes: [] });
    expect(answer.status).toBe(422);
    expect(answer.body).toEqual({
      error: { code: 'BAD_USER_INPUT', message: 'classes must not be empty', field: 'classes' },
      detail: 'classes must not be empty',
    });
  });

  it('should answer 429 with Retry-After when the queue is full', async () => {
    jobs.nextError = new AppError(ErrorCode.Overloaded, 'The inference queue is full; retry later');
    const answer = await call('POST', `${TASK}/tiny-test/jobs`, { image: 'AAAA', classes: ['a'] });
    expect(answer.status).toBe(429);
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(answer.body).toMatchObject({ error: { code: 'OVERLOADED' } });
  });

  it('should answer 503 while shutting down', async () => {
    jobs.nextError = new AppError(ErrorCode.ShuttingDown, 'The server is shutting down');
    const answer = await call('POST', `${TASK}/tiny-test/jobs`, { image: 'AAAA', classes: ['a'] });
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ error: { code: 'SHUTTING_DOWN' } });
  });

  it('should answer 400 JSON for malformed JSON', async () => {
    const answer = await call('POST', `${TASK}/tiny-test/jobs`, '{"image": "AAAA", "classes": [');
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toMatch(/application\/json/);
    expect(answer.body).toMatchObject({
      error: { code: 'BAD_USER_INPUT', message: expect.stringMatching(/^Malformed JSON in request body/) },
    });
    expect(answer.text).not.toMatch(/<html|node_modules|\n\s+at /i);
  });

  it('should answer 413 JSON for a body over the limit', async () => {
    const answer = await call('POST', `${TASK}/tiny-test/jobs`, { image: 'A'.repeat(5000), classes: ['a'] });
    expect(answer.status).toBe(413);
    expect(answer.body).toMatchObject({
      error: { code: 'PAYLOAD_TOO_LARGE', message: 'Request body is over the size limit of 4096 bytes' },
    });
  });

  it('should answer 413 naming the setting for a body with too many values or too deep, before any job is submitted', async () => {
    const submitted = jobs.submitted.length;
    const many = await call('POST', `${TASK}/tiny-test/jobs`, `{"image":"AAAA","classes":[${'{},'.repeat(300)}{}]}`);
    expect(many.status).toBe(413);
    expect(many.body).toMatchObject({
      error: { code: 'PAYLOAD_TOO_LARGE', message: expect.stringContaining('MAX_JSON_VALUES') },
    });
    const deep = await call(
      'POST',
      `${TASK}/tiny-test/jobs`,
      `{"image":"AAAA","classes":${'['.repeat(20)}${']'.repeat(20)}}`,
    );
    expect(deep.status).toBe(413);
    expect(deep.body).toMatchObject({
      error: { code: 'PAYLOAD_TOO_LARGE', message: expect.stringContaining('MAX_JSON_DEPTH') },
    });
    expect(jobs.submitted.length).toBe(submitted);
  });

  it('should answer 415 for a JSON body in a charset other than UTF-8', async () => {
    const answer = await call(
      'POST',
      `${TASK}/tiny-test/jobs`,
      '{"image":"AAAA","classes":["a"]}',
      'application/json; charset=utf-16',
    );
    expect(answer.status).toBe(415);
    expect(answer.body).toMatchObject({ error: { code: 'BAD_USER_INPUT', message: expect.stringContaining('UTF-8') } });
  });

  it('should answer 422 for a body that is not JSON at all', async () => {
    const answer = await call('POST', `${TASK}/tiny-test/jobs`, 'image=AAAA', 'text/plain');
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({
      error: { code: 'BAD_USER_INPUT', message: expect.stringContaining('application/json') },
    });
  });

  it('should mask an unexpected error as 500 and log the detail server-side only', async () => {
    jobs.nextError = new Error('ENOENT: /secret/path/model.onnx');
    logLines.length = 0;
    const answer = await call('POST', `${TASK}/tiny-test/jobs`, { image: 'AAAA', classes: ['a'] });
    expect(answer.status).toBe(500);
    expect(answer.body).toEqual({
      error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' },
      detail: 'Internal server error',
    });
    expect(answer.text).not.toContain('/secret/path');
    expect(logLines.join('\n')).toContain('/secret/path/model.onnx');
  });
});

describe('the legacy synchronous route', () => {
  // The id of the job the double accepts after `before` jobs, once the request under test has reached it.
  async function jobAfter(before: number): Promise<string> {
    await expect.poll(() => jobs.jobs.size, { timeout: 5000 }).toBe(before + 1);
    return [...jobs.jobs.keys()].at(-1) ?? '';
  }

  it('should wait for the job and answer its probabilities', async () => {
    const before = jobs.jobs.size;
    const pending = call('POST', `/legacy${TASK}/tiny-test/jobs`, { image: 'AAAA', classes: ['a', 'b'] });
    jobs.complete(await jobAfter(before), [[0.9, 0.1]]);
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ probabilities: [0.9, 0.1] });
  });

  it('should answer a failed job with the status of its error code', async () => {
    const before = jobs.jobs.size;
    const pending = call('POST', `/legacy${TASK}/tiny-test/jobs`, { image: 'AAAA', classes: ['a', 'b'] });
    jobs.fail(await jobAfter(before), ErrorCode.BadUserInput, 'image: not an image');
    const answer = await pending;
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ error: { code: 'BAD_USER_INPUT', message: 'image: not an image' } });
  });
});

describe('embedding tasks', () => {
  const IMAGE = '/tasks/image-embedding';
  const TEXT = '/tasks/text-embedding';

  it('should submit image-embedding jobs, single and batched, and answer {embedding} per image in order', async () => {
    const single = await call('POST', `${IMAGE}/tiny-test/jobs`, { image: 'data:image/png;base64,AAAA' });
    expect(single.body).toEqual({ id: expect.any(String), status: 'starting' });
    expect(jobs.submitted.at(-1)).toEqual({
      task: 'image-embedding',
      images: ['data:image/png;base64,AAAA'],
      imagesField: 'image',
      batched: false,
      model: 'tiny_test',
    });
    const singleId = (single.body as { id: string }).id;
    jobs.completeEmbedding(singleId, [[0.6, 0.8]]);
    expect((await call('GET', `${IMAGE}/jobs/${singleId}`)).body).toEqual({
      status: 'complete',
      result: { embedding: [0.6, 0.8] },
    });

    const batched = await call('POST', `${IMAGE}/batched/tiny-test/jobs`, { image: ['AAAA', 'BBBB'] });
    const batchedId = (batched.body as { id: string }).id;
    expect((await call('GET', `${IMAGE}/batched/jobs/${batchedId}`)).body).toEqual({ status: 'starting' });
    jobs.completeEmbedding(batchedId, [
      [1, 0],
      [0, 1],
    ]);
    expect((await call('GET', `${IMAGE}/batched/jobs/${batchedId}`)).body).toEqual({
      status: 'complete',
      result: [{ embedding: [1, 0] }, { embedding: [0, 1] }],
    });
  });

  it('should submit text-embedding jobs with the texts and config, and answer {embedding}', async () => {
    const answer = await call('POST', `${TEXT}/batched/tiny-test/jobs`, {
      text: ['a cat', 'a dog'],
      config: { promptTemplate: 'a photo of {}' },
    });
    expect(jobs.submitted.at(-1)).toEqual({
      task: 'text-embedding',
      texts: ['a cat', 'a dog'],
      textsField: 'text',
      batched: true,
      config: { promptTemplate: 'a photo of {}' },
      model: 'tiny_test',
    });
    const id = (answer.body as { id: string }).id;
    jobs.completeEmbedding(id, [
      [1, 0],
      [0, 1],
    ]);
    expect((await call('GET', `${TEXT}/batched/jobs/${id}`)).body).toEqual({
      status: 'complete',
      result: [{ embedding: [1, 0] }, { embedding: [0, 1] }],
    });
  });

  it("should answer 404 NOT_FOUND for a job read on another task's route", async () => {
    const { body } = await call('POST', `${TEXT}/tiny-test/jobs`, { text: 'a cat' });
    const { id } = body as { id: string };
    for (const path of [`${IMAGE}/jobs/${id}`, `${TASK}/jobs/${id}`, `${IMAGE}/batched/jobs/${id}`]) {
      const answer = await call('GET', path);
      expect(answer.status).toBe(404);
      expect(answer.body).toMatchObject({
        error: { code: 'NOT_FOUND', message: expect.stringContaining(`/api/tasks/text-embedding`) },
      });
    }
    expect((await call('GET', `${TEXT}/jobs/${id}`)).status).toBe(200);
  });

  it.each([
    ['no image', `${IMAGE}/tiny-test/jobs`, {}, 'image'],
    ['no text', `${TEXT}/tiny-test/jobs`, { config: {} }, 'text'],
    ['a text list on the single route', `${TEXT}/tiny-test/jobs`, { text: ['a'] }, 'text'],
    ['a non-string batched text', `${TEXT}/batched/tiny-test/jobs`, { text: ['a', null] }, 'text[1]'],
  ])('should answer 422 for %s, naming the field', async (_name, path, body, field) => {
    const answer = await call('POST', path, body);
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ error: { code: 'BAD_USER_INPUT', field } });
  });

  it('should answer {embedding} on the legacy synchronous routes', async () => {
    for (const [path, body] of [
      [`/legacy${IMAGE}/tiny-test/jobs`, { image: 'AAAA' }],
      [`/legacy${TEXT}/tiny-test/jobs`, { text: 'a cat' }],
    ] as const) {
      const before = jobs.jobs.size;
      const pending = call('POST', path, body);
      await expect.poll(() => jobs.jobs.size, { timeout: 5000 }).toBe(before + 1);
      jobs.completeEmbedding([...jobs.jobs.keys()].at(-1) ?? '', [[0, 1]]);
      const answer = await pending;
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ embedding: [0, 1] });
    }
  });
});
