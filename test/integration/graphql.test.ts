/**
 * The GraphQL API end to end (issue 3 acceptance): a real server on the tiny random-weight model,
 * HTTP mutations and queries, graphql-ws subscriptions, cancel, TTL, bad input and overload.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CancelJobDocument,
  ClassifyDocument,
  JobDocument,
  JobsDocument,
  JobUpdatedDocument,
  ModelsDocument,
  type JobFieldsFragment,
} from '../generated/graphql.js';
import {
  distinctImages,
  gql,
  startTestServer,
  subscribe,
  tinyImages,
  waitFor,
  wsClient,
  type TestServer,
} from '../utils/testServer.js';

type JobFields = JobFieldsFragment;

let images: string[];
let server: TestServer;

beforeAll(async () => {
  images = await tinyImages();
  server = await startTestServer();
});

function image(index = 0): string {
  const found = images[index % images.length];
  if (found === undefined) throw new Error('no test image');
  return found;
}

async function classify(url: string, input: Record<string, unknown>): Promise<JobFields> {
  const { body } = await gql(url, ClassifyDocument, { input: input as never });
  if (body.errors !== undefined || !body.data) throw new Error(`classify failed: ${JSON.stringify(body.errors)}`);
  return body.data.classify;
}

async function jobOf(url: string, id: string): Promise<JobFields | null> {
  const { body } = await gql(url, JobDocument, { id });
  if (body.errors !== undefined) throw new Error(JSON.stringify(body.errors));
  return body.data?.job ?? null;
}

async function untilFinished(url: string, id: string): Promise<JobFields> {
  return waitFor(async () => {
    const job = await jobOf(url, id);
    return job !== null && ['COMPLETE', 'FAILED', 'CANCELLED'].includes(job.status) ? job : undefined;
  });
}

function expectCompleteShape(job: JobFields, classes: string[], imageCount: number): void {
  expect(job.status).toBe('COMPLETE');
  expect(job.error).toBeNull();
  expect(job.classes).toEqual(classes);
  expect(job.result?.images).toHaveLength(imageCount);
  for (const result of job.result?.images ?? []) {
    expect(result.probabilities).toHaveLength(classes.length);
    const sum = result.probabilities.reduce((a, b) => a + b, 0);
    expect(sum).toBeCloseTo(1, 5);
    for (const p of result.probabilities) expect(p).toBeGreaterThanOrEqual(0);
    // top(k: 3): sorted by probability, labels matching their probabilities.
    expect(result.top).toHaveLength(Math.min(3, classes.length));
    for (let i = 1; i < result.top.length; i += 1) {
      expect(result.top[i - 1]!.probability).toBeGreaterThanOrEqual(result.top[i]!.probability);
    }
    for (const score of result.top) expect(result.probabilities[classes.indexOf(score.label)]).toBe(score.probability);
  }
}

async function graphqlErrorOf(
  url: string,
  input: Record<string, unknown>,
): Promise<{ code: unknown; field: unknown; message: string }> {
  const { body } = await gql(url, ClassifyDocument, { input: input as never });
  expect(body.data ?? null).toBeNull();
  const error = body.errors?.[0];
  if (error === undefined) throw new Error(`expected an error, got ${JSON.stringify(body)}`);
  return { code: error.extensions?.code, field: error.extensions?.field, message: error.message };
}

describe('GraphQL over HTTP', () => {
  it('should create a job with the classify mutation and complete it, keeping the result', async () => {
    const classes = ['a cat', 'a dog', 'a car', 'a tree'];
    const created = await classify(server.graphqlUrl, { image: image(0), classes });
    expect(created.status).toBe('QUEUED');
    expect(created.result).toBeNull();
    expect(created.imageCount).toBe(1);
    expect(Number.isNaN(Date.parse(created.createdAt))).toBe(false);
    const done = await untilFinished(server.graphqlUrl, created.id);
    expectCompleteShape(done, classes, 1);
    expect(Date.parse(done.finishedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(done.startedAt ?? ''));
    // Not deleted on first read (unlike the seed).
    expect((await jobOf(server.graphqlUrl, created.id))?.status).toBe('COMPLETE');
  });

  it('should classify several images in order, with prompt templates', async () => {
    const classes = ['red', 'green', 'blue'];
    const created = await classify(server.graphqlUrl, {
      images: [image(0), image(1), image(2)],
      classes,
      config: { promptTemplates: ['a photo of {}.', 'a {} picture.'] },
    });
    expect(created.imageCount).toBe(3);
    const done = await untilFinished(server.graphqlUrl, created.id);
    expectCompleteShape(done, classes, 3);
    // The same image alone gives the same probabilities as in the batch.
    const single = await untilFinished(
      server.graphqlUrl,
      (
        await classify(server.graphqlUrl, {
          image: image(1),
          classes,
          config: { promptTemplates: ['a photo of {}.', 'a {} picture.'] },
        })
      ).id,
    );
    const batched = done.result?.images[1]?.probabilities ?? [];
    single.result?.images[0]?.probabilities.forEach((p, i) => expect(p).toBeCloseTo(batched[i] ?? NaN, 4));
  });

  it('should accept bare base64 and a model named by any of its names', async () => {
    const models = await gql(server.graphqlUrl, ModelsDocument);
    const [model] = models.body.data?.models ?? [];
    expect(model).toMatchObject({ ready: true, isDefault: true, status: 'READY', precision: 'FP32', error: null });
    expect(model?.embeddingSize).toBeGreaterThan(0);
    const bare = image(0).slice(image(0).indexOf(',') + 1);
    const job = await classify(server.graphqlUrl, { image: bare, classes: ['x', 'y'], model: model?.name });
    expect(job.model).toBe(model?.name);
    expectCompleteShape(await untilFinished(server.graphqlUrl, job.id), ['x', 'y'], 1);
  });

  it('should run 50 concurrent jobs to completion with correct shapes', async () => {
    const submissions = Array.from({ length: 50 }, (_, i) => {
      const classes = Array.from({ length: 2 + (i % 5) }, (__, c) => `class ${i}-${c}`);
      return classify(server.graphqlUrl, { image: image(i), classes }).then((job) => ({ job, classes }));
    });
    const created = await Promise.all(submissions);
    expect(new Set(created.map(({ job }) => job.id)).size).toBe(50);
    const finished = await Promise.all(
      created.map(async ({ job, classes }) => ({ done: await untilFinished(server.graphqlUrl, job.id), classes })),
    );
    for (const { done, classes } of finished) expectCompleteShape(done, classes, 1);
  });

  it('should list jobs in creation order with paging and a status filter', async () => {
    const fresh = await startTestServer();
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1)
      ids.push((await classify(fresh.graphqlUrl, { image: image(i), classes: ['a', 'b'] })).id);
    await Promise.all(ids.map((id) => untilFinished(fresh.graphqlUrl, id)));
    const first = await gql(fresh.graphqlUrl, JobsDocument, { first: 2 });
    expect(first.body.data?.jobs.nodes.map((node) => node.id)).toEqual(ids.slice(0, 2));
    expect(first.body.data?.jobs.pageInfo.hasNextPage).toBe(true);
    const rest = await gql(fresh.graphqlUrl, JobsDocument, {
      first: 2,
      after: first.body.data?.jobs.pageInfo.endCursor,
    });
    expect(rest.body.data?.jobs.nodes.map((node) => node.id)).toEqual(ids.slice(2));
    expect(rest.body.data?.jobs.pageInfo.hasNextPage).toBe(false);
    const complete = await gql(fresh.graphqlUrl, JobsDocument, { status: 'COMPLETE', first: 10 });
    expect(complete.body.data?.jobs.nodes).toHaveLength(3);
    const failed = await gql(fresh.graphqlUrl, JobsDocument, { status: 'FAILED' });
    expect(failed.body.data?.jobs.nodes).toEqual([]);
    const bad = await gql(fresh.graphqlUrl, JobsDocument, { first: 1000 });
    expect(bad.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
    await fresh.stop();
  });

  it('should answer null for an unknown job', async () => {
    expect(await jobOf(server.graphqlUrl, 'no-such-job')).toBeNull();
  });
});

describe('bad input', () => {
  it.each([
    ['neither image nor images', { classes: ['a'] }, 'image', /exactly one of image, images or files, got none/],
    ['both image and images', { image: 'x', images: ['x'], classes: ['a'] }, 'image,images', /got image and images/],
    ['empty classes', { image: 'IMG0', classes: [] }, 'classes', /at least one class/],
    ['a blank class', { image: 'IMG0', classes: ['a', '   '] }, 'classes[1]', /non-empty/],
    ['duplicate classes', { image: 'IMG0', classes: ['cat', 'dog', 'cat'] }, 'classes[2]', /duplicates classes\[0\]/],
    [
      'too many classes',
      { image: 'IMG0', classes: Array.from({ length: 1001 }, (_, i) => `c${i}`) },
      'classes',
      /at most 1000 classes/,
    ],
    [
      'a class over the length limit',
      { image: 'IMG0', classes: ['x'.repeat(1001)] },
      'classes[0]',
      /at most 1000 characters/,
    ],
    ['no images', { images: [], classes: ['a'] }, 'images', /at least one image/],
    [
      'too many images',
      { images: Array.from({ length: 65 }, () => 'IMG0'), classes: ['a'] },
      'images',
      /at most 64 images/,
    ],
    ['invalid base64', { image: 'data:image/png;base64,@@@not base64@@@', classes: ['a'] }, 'image', /./],
    [
      'a non-image',
      { image: Buffer.from('just some text, not an image').toString('base64'), classes: ['a'] },
      'image',
      /./,
    ],
    [
      'a non-image among images',
      { images: ['IMG0', `data:text/plain;base64,${Buffer.from('%PDF-1.4 nope').toString('base64')}`], classes: ['a'] },
      'images[1]',
      /./,
    ],
    [
      'an unknown model',
      { image: 'IMG0', classes: ['a'], model: 'no-such-model' },
      'model',
      /unknown model "no-such-model"/,
    ],
    ['a bad config', { image: 'IMG0', classes: ['a'], config: { promptTemplate: 42 } }, /^config/, /./],
  ])('should refuse %s with BAD_USER_INPUT naming the field', async (_name, input, field: string | RegExp, message) => {
    const resolved = JSON.parse(JSON.stringify(input).replaceAll('"IMG0"', JSON.stringify(image(0)))) as Record<
      string,
      unknown
    >;
    const error = await graphqlErrorOf(server.graphqlUrl, resolved);
    expect(error.code).toBe('BAD_USER_INPUT');
    if (typeof field === 'string') expect(error.field).toBe(field);
    else expect(error.field).toMatch(field);
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/\/work\/|node_modules|at .*\.ts:\d+/);
  });

  it('should refuse an image over the byte limit and one over the pixel limit', async () => {
    const small = await startTestServer({ maxImageBytes: 300, maxImagePixels: 100 });
    const bytes = await graphqlErrorOf(small.graphqlUrl, {
      image: `data:image/png;base64,${Buffer.alloc(400, 1).toString('base64')}`,
      classes: ['a'],
    });
    expect(bytes).toMatchObject({ code: 'BAD_USER_INPUT', field: 'image' });
    const pixels = await graphqlErrorOf(small.graphqlUrl, { images: [image(0)], classes: ['a'] });
    expect(pixels).toMatchObject({ code: 'BAD_USER_INPUT', field: 'images[0]' });
    await small.stop();
  });

  it('should refuse a negative top(k) and missing required variables with BAD_USER_INPUT', async () => {
    const job = await untilFinished(
      server.graphqlUrl,
      (await classify(server.graphqlUrl, { image: image(0), classes: ['a', 'b'] })).id,
    );
    const negative = await gql(
      server.graphqlUrl,
      `query($id: ID!) { job(id: $id) { result { images { top(k: -1) { label } } } } }`,
      { id: job.id },
    );
    expect(negative.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'k' });
    const missing = await gql(server.graphqlUrl, JobDocument, {} as never);
    expect(missing.status).toBe(400);
    expect(missing.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('cancel', () => {
  it('should cancel a queued job, leave a finished one unchanged, and answer null for an unknown one', async () => {
    const serial = await startTestServer({ maxConcurrentJobs: 1 });
    // A long job occupies the only slot, so the next one stays QUEUED.
    const blocker = await classify(serial.graphqlUrl, { images: await distinctImages(64, 5000), classes: ['a', 'b'] });
    const queued = await classify(serial.graphqlUrl, { image: image(0), classes: ['a', 'b'] });
    const cancelled = await gql(serial.graphqlUrl, CancelJobDocument, { id: queued.id });
    expect(cancelled.body.data?.cancelJob).toMatchObject({
      id: queued.id,
      status: 'CANCELLED',
      startedAt: null,
      result: null,
    });
    expect(cancelled.body.data?.cancelJob?.finishedAt).toBeTruthy();
    expect((await jobOf(serial.graphqlUrl, queued.id))?.status).toBe('CANCELLED');
    const done = await untilFinished(serial.graphqlUrl, blocker.id);
    expect(done.status).toBe('COMPLETE');
    const again = await gql(serial.graphqlUrl, CancelJobDocument, { id: blocker.id });
    expect(again.body.data?.cancelJob?.status).toBe('COMPLETE');
    const unknown = await gql(serial.graphqlUrl, CancelJobDocument, { id: 'nope' });
    expect(unknown.body).toEqual({ data: { cancelJob: null } });
    await serial.stop();
  });
});

describe('job TTL', () => {
  it('should forget a finished job after JOB_TTL_SECONDS', async () => {
    const shortLived = await startTestServer({ jobTtlSeconds: 1 });
    const job = await untilFinished(
      shortLived.graphqlUrl,
      (await classify(shortLived.graphqlUrl, { image: image(0), classes: ['a', 'b'] })).id,
    );
    expect(Date.parse(job.expiresAt) - Date.parse(job.finishedAt ?? '')).toBe(1000);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(await jobOf(shortLived.graphqlUrl, job.id)).toBeNull();
    await shortLived.stop();
  });
});

describe('overload', () => {
  it('should refuse jobs over MAX_QUEUED_JOBS with OVERLOADED and complete every accepted one', async () => {
    const tight = await startTestServer({ maxQueuedJobs: 2, maxConcurrentJobs: 1 });
    const many = Array.from({ length: 12 }, (_, i) => image(i));
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        gql(tight.graphqlUrl, ClassifyDocument, { input: { images: many, classes: ['a', 'b'] } }),
      ),
    );
    const accepted = results.flatMap((result) => (result.body.data?.classify ? [result.body.data.classify] : []));
    const refused = results.flatMap((result) => result.body.errors ?? []);
    expect(accepted.length).toBeGreaterThanOrEqual(2);
    expect(refused.length).toBeGreaterThan(0);
    expect(accepted.length + refused.length).toBe(8);
    for (const error of refused) {
      expect(error.extensions?.code).toBe('OVERLOADED');
      expect(error.message).toMatch(/MAX_QUEUED_JOBS=2/);
    }
    for (const job of accepted) expectCompleteShape(await untilFinished(tight.graphqlUrl, job.id), ['a', 'b'], 12);
    await tight.stop();
  });
});

describe('GraphQL over websocket (graphql-ws)', () => {
  it('should send QUEUED, RUNNING, COMPLETE in order, then complete', async () => {
    const serial = await startTestServer({ maxConcurrentJobs: 1 });
    // Jobs of distinct images ahead of it keep the watched job QUEUED while the client subscribes.
    let blocker: JobFields | undefined;
    for (let i = 0; i < 3; i += 1) {
      blocker = await classify(serial.graphqlUrl, { images: await distinctImages(64, i * 64), classes: ['a', 'b'] });
    }
    const job = await classify(serial.graphqlUrl, { image: image(1), classes: ['a', 'b', 'c'] });
    const result = await subscribe(serial.wsUrl, JobUpdatedDocument, { id: job.id });
    expect(result.error).toBeUndefined();
    expect(result.completed).toBe(true);
    const statuses = result.messages.map((message) => message.data?.jobUpdated.status);
    expect(statuses).toEqual(['QUEUED', 'RUNNING', 'COMPLETE']);
    const last = result.messages.at(-1)?.data?.jobUpdated;
    if (!last) throw new Error('no last message');
    expectCompleteShape(last, ['a', 'b', 'c'], 1);
    expect((await jobOf(serial.graphqlUrl, blocker?.id ?? ''))?.status).toBe('COMPLETE');
    await serial.stop();
  });

  it('should send the current state first, then changes, without a race on a fast job', async () => {
    const job = await classify(server.graphqlUrl, { image: image(2), classes: ['a', 'b'] });
    const result = await subscribe(server.wsUrl, JobUpdatedDocument, { id: job.id });
    const statuses = result.messages.map((message) => message.data?.jobUpdated.status ?? 'error');
    expect(result.completed).toBe(true);
    expect(statuses.at(-1)).toBe('COMPLETE');
    const order = ['QUEUED', 'RUNNING', 'COMPLETE'];
    const ranks = statuses.map((status) => order.indexOf(status));
    expect(ranks.every((rank, i) => rank >= 0 && (i === 0 || rank > (ranks[i - 1] ?? -1)))).toBe(true);
  });

  it('should send a finished job once and complete', async () => {
    const job = await untilFinished(
      server.graphqlUrl,
      (await classify(server.graphqlUrl, { image: image(0), classes: ['a', 'b'] })).id,
    );
    const result = await subscribe(server.wsUrl, JobUpdatedDocument, { id: job.id });
    expect(result.messages.map((message) => message.data?.jobUpdated.status)).toEqual(['COMPLETE']);
    expect(result.messages[0]?.data?.jobUpdated.result?.images[0]?.probabilities).toEqual(
      job.result?.images[0]?.probabilities,
    );
    expect(result.completed).toBe(true);
  });

  it('should answer an unknown job with NOT_FOUND', async () => {
    const result = await subscribe(server.wsUrl, JobUpdatedDocument, { id: 'no-such-job' });
    const errors =
      result.messages[0]?.errors ??
      (result.error as { message: string; extensions?: Record<string, unknown> }[] | undefined);
    expect(errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(errors?.[0]?.message).toMatch(/not found/);
  });

  it('should run a classify mutation over the websocket too', async () => {
    const result = await subscribe(server.wsUrl, ClassifyDocument, { input: { image: image(0), classes: ['a', 'b'] } });
    expect(result.messages[0]?.data?.classify.status).toBe('QUEUED');
    const bad = await subscribe(server.wsUrl, ClassifyDocument, { input: { classes: ['a'] } });
    expect(bad.messages[0]?.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'image' });
  });

  it('should stop listening when a client completes a subscription early', async () => {
    const serial = await startTestServer({ maxConcurrentJobs: 1 });
    for (let i = 0; i < 3; i += 1)
      await classify(serial.graphqlUrl, { images: await distinctImages(64, 1000 + i * 64), classes: ['a', 'b'] });
    const job = await classify(serial.graphqlUrl, { image: image(1), classes: ['a', 'b'] });
    const client = wsClient(serial.wsUrl);
    const iterator = client.iterate({
      query: 'subscription($id: ID!) { jobUpdated(id: $id) { status } }',
      variables: { id: job.id },
    });
    const first = await iterator.next();
    expect((first.value as { data: { jobUpdated: { status: string } } }).data.jobUpdated.status).toBe('QUEUED');
    expect(serial.server.jobs.stats().watchers).toBe(1);
    await iterator.return?.();
    await waitFor(() => (serial.server.jobs.stats().watchers === 0 ? true : undefined), 5000);
    expect(serial.server.jobs.events.listenerCount('jobUpdated')).toBeLessThanOrEqual(1);
    await client.dispose();
    await serial.stop();
  });
});
