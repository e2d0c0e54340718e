/**
 * Models as runtime resources through the real server on the tiny generated model: FES's model calls replayed with
 * FES's exact shapes (start, status, stop, a job on a stopped model, status again), lazy and failed loads seen by
 * jobs, GraphQL's startModel / stopModel, readiness, and who may start and stop models.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_MODEL_DIR } from '../utils/testModel.js';
import { gql, startTestServer, tinyImages, waitFor, type TestServer } from '../utils/testServer.js';

const TASK = 'zero-shot-image-classification';

interface Answer {
  status: number;
  text: string;
  body: unknown;
}

async function api(
  target: TestServer,
  method: 'GET' | 'POST',
  route: string,
  body?: unknown,
  key?: string,
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (key !== undefined) headers['x-api-key'] = key;
  const response = await fetch(`${target.url}/api${route}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, text, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

async function statusOf(
  target: TestServer,
  model: string,
): Promise<{ status: string; jobs: { id: string; status: string }[] }> {
  const answer = await api(target, 'GET', `/models/${model}/status`);
  expect(answer.status).toBe(200);
  const body = answer.body as { status: string; jobs: { id: string; status: string }[] };
  // FES's ModelStatus: exactly these keys, each job exactly {id, status}.
  expect(Object.keys(body).sort()).toEqual(['jobs', 'status']);
  expect(['uninitialized', 'starting', 'loading', 'running', 'stopped', 'failed']).toContain(body.status);
  for (const job of body.jobs) {
    expect(Object.keys(job).sort()).toEqual(['id', 'status']);
    expect(['starting', 'running', 'complete', 'failed']).toContain(job.status);
  }
  return body;
}

function untilStatus(
  target: TestServer,
  model: string,
  wanted: string,
): Promise<{ status: string; jobs: { id: string; status: string }[] }> {
  return waitFor(async () => {
    const status = await statusOf(target, model);
    return status.status === wanted ? status : undefined;
  }, 60_000);
}

async function pollJob(target: TestServer, id: string): Promise<Record<string, unknown>> {
  return waitFor(async () => {
    const body = (await api(target, 'GET', `/tasks/${TASK}/jobs/${id}`)).body as Record<string, unknown>;
    return body.status === 'complete' || body.status === 'failed' ? body : undefined;
  }, 60_000);
}

const MODELS_QUERY = 'query { models { name status ready load sessionBytes error } }';

describe('model control without API keys (FES)', () => {
  let server: TestServer;
  let images: string[];
  let emptyDir: string;

  beforeAll(async () => {
    images = await tinyImages();
    emptyDir = await mkdtemp(path.join(os.tmpdir(), 'lifecycle-empty-'));
    server = await startTestServer({
      clipModels: [
        { name: 'open_clip_extra', source: TINY_MODEL_DIR },
        { name: 'lazy', source: `${TINY_MODEL_DIR};load=lazy` },
        { name: 'broken', source: `${emptyDir};load=lazy` },
      ],
    });
  });
  afterAll(async () => {
    await server?.stop();
    await rm(emptyDir, { recursive: true, force: true });
  });

  it("should replay FES's model calls with FES's shapes: start, status, stop, a job on the stopped model, status again", async () => {
    await untilStatus(server, 'open-clip-extra', 'running');
    // start: 200 with an empty body, idempotent on a running model.
    const start = await api(server, 'POST', '/models/open-clip-extra/start');
    expect(start).toMatchObject({ status: 200, text: '' });
    expect(await statusOf(server, 'open_clip_extra')).toEqual({ status: 'running', jobs: [] });

    const stop = await api(server, 'POST', '/models/open-clip-extra/stop');
    expect(stop).toMatchObject({ status: 200, text: '' });
    expect(await untilStatus(server, 'open-clip-extra', 'stopped')).toEqual({ status: 'stopped', jobs: [] });
    expect(await api(server, 'POST', '/models/open_clip_extra/stop')).toMatchObject({ status: 200, text: '' });

    // A job on the stopped model starts it; the job waits ("starting", our QUEUED) while the model loads.
    const submitted = await api(server, 'POST', `/tasks/${TASK}/open-clip-extra/jobs`, {
      image: images[0],
      classes: ['a', 'b'],
    });
    expect(submitted.status).toBe(200);
    const { id } = submitted.body as { id: string; status: string };
    expect(submitted.body).toEqual({ id, status: 'starting' });
    const whileLoading = await statusOf(server, 'open-clip-extra');
    expect(whileLoading.jobs).toEqual([{ id, status: 'starting' }]);
    expect(['stopped', 'starting', 'loading', 'running']).toContain(whileLoading.status);

    const done = await pollJob(server, id);
    expect(done.status).toBe('complete');
    expect(await statusOf(server, 'open-clip-extra')).toEqual({ status: 'running', jobs: [] });
  });

  it('should answer 404 with our JSON error for an unknown model on every model route (FES answers 500)', async () => {
    for (const [method, route] of [
      ['POST', '/models/nope/start'],
      ['POST', '/models/nope/stop'],
      ['GET', '/models/nope/status'],
    ] as const) {
      const answer = await api(server, method, route);
      expect(answer.status).toBe(404);
      expect(answer.body).toEqual({
        error: { code: 'NOT_FOUND', message: 'Unknown model "nope"' },
        detail: 'Unknown model "nope"',
      });
    }
  });

  it('should load a lazy model on its first job and show it in models', async () => {
    const before = await gql<{ models: { name: string; status: string; load: string; sessionBytes: number | null }[] }>(
      server.url,
      MODELS_QUERY,
    );
    expect(before.body.data!.models.find((m) => m.name === 'lazy')).toMatchObject({
      status: 'UNINITIALIZED',
      load: 'LAZY',
      sessionBytes: null,
    });
    expect(await statusOf(server, 'lazy')).toEqual({ status: 'uninitialized', jobs: [] });
    const submitted = await api(server, 'POST', `/tasks/${TASK}/lazy/jobs`, { image: images[0], classes: ['a', 'b'] });
    const done = await pollJob(server, (submitted.body as { id: string }).id);
    expect(done.status).toBe('complete');
    const after = await gql<{ models: { name: string; status: string; sessionBytes: number | null }[] }>(
      server.url,
      MODELS_QUERY,
    );
    const lazy = after.body.data!.models.find((m) => m.name === 'lazy')!;
    expect(lazy.status).toBe('READY');
    expect(lazy.sessionBytes).toBeGreaterThan(0);
  });

  it('should fail a job on a model that cannot load with MODEL_UNAVAILABLE and the reason', async () => {
    const submitted = await api(server, 'POST', `/tasks/${TASK}/broken/jobs`, {
      image: images[0],
      classes: ['a', 'b'],
    });
    const done = await pollJob(server, (submitted.body as { id: string }).id);
    expect(done).toMatchObject({
      status: 'failed',
      error: { code: 'MODEL_UNAVAILABLE', message: expect.stringMatching(/^The model broken is not available: .+/) },
    });
    expect(await statusOf(server, 'broken')).toEqual({ status: 'failed', jobs: [] });
  });

  it('should start and stop through GraphQL, and stay ready while a non-default model is stopped', async () => {
    const stopped = await gql<{ stopModel: { name: string; status: string } }>(
      server.url,
      'mutation { stopModel(name: "open-clip-extra") { name status } }',
    );
    expect(stopped.body.errors).toBeUndefined();
    expect(stopped.body.data!.stopModel.name).toBe('open_clip_extra');
    expect(['STOPPING', 'STOPPED']).toContain(stopped.body.data!.stopModel.status);
    await untilStatus(server, 'open-clip-extra', 'stopped');
    const ready = await fetch(`${server.url}/ready`);
    expect(ready.status).toBe(200);

    const startedModel = await gql<{ startModel: { status: string } }>(
      server.url,
      'mutation { startModel(name: "open_clip_extra") { status } }',
    );
    expect(['STARTING', 'LOADING', 'READY']).toContain(startedModel.body.data!.startModel.status);
    await untilStatus(server, 'open-clip-extra', 'running');

    const unknown = await gql(server.url, 'mutation { startModel(name: "nope") { status } }');
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('who may start and stop models', () => {
  it('should refuse model control to everyone when API_KEYS is set without ADMIN_API_KEYS, naming the setting; status stays readable', async () => {
    const server = await startTestServer({ apiKeys: ['user-key'] });
    const start = await api(server, 'POST', '/models/tiny/start', undefined, 'user-key');
    expect(start.status).toBe(403);
    expect(start.body).toMatchObject({
      error: { code: 'FORBIDDEN', message: expect.stringContaining('ADMIN_API_KEYS') },
    });
    expect((await api(server, 'POST', '/models/tiny/stop', undefined, 'user-key')).status).toBe(403);
    expect((await api(server, 'GET', '/models/tiny/status', undefined, 'user-key')).status).toBe(200);
    expect((await api(server, 'GET', '/models/tiny/status')).status).toBe(401);
    const mutation = await gql(
      server.url,
      'mutation { stopModel(name: "tiny") { status } }',
      {},
      { 'x-api-key': 'user-key' },
    );
    expect(mutation.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    await server.stop();
  });

  it('should let only ADMIN_API_KEYS start and stop models when both are set', async () => {
    const server = await startTestServer({
      apiKeys: ['user-key'],
      adminApiKeys: ['admin-key'],
      clipModels: [{ name: 'extra', source: TINY_MODEL_DIR }],
    });
    const refused = await api(server, 'POST', '/models/extra/stop', undefined, 'user-key');
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: { code: 'FORBIDDEN' } });
    expect((await api(server, 'POST', '/models/extra/stop', undefined, 'wrong')).status).toBe(401);
    expect(await api(server, 'POST', '/models/extra/stop', undefined, 'admin-key')).toMatchObject({
      status: 200,
      text: '',
    });
    const viaGraphql = await gql<{ startModel: { status: string } }>(
      server.url,
      'mutation { startModel(name: "extra") { status } }',
      {},
      { authorization: 'Bearer admin-key' },
    );
    expect(viaGraphql.body.errors).toBeUndefined();
    // The admin key is an API key as well: status and jobs accept it.
    expect((await api(server, 'GET', '/models/extra/status', undefined, 'admin-key')).status).toBe(200);
    await server.stop();
  });
});

describe('MODEL_IDLE_STOP_SECONDS', () => {
  it('should stop models idle that long, stay ready, and start one again for its next job', async () => {
    const server = await startTestServer({
      modelIdleStopSeconds: 1,
      clipModels: [{ name: 'extra', source: TINY_MODEL_DIR }],
    });
    expect(await untilStatus(server, 'extra', 'stopped')).toEqual({ status: 'stopped', jobs: [] });
    await untilStatus(server, 'tiny', 'stopped');
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    const [image] = await tinyImages();
    const submitted = await api(server, 'POST', `/tasks/${TASK}/extra/jobs`, { image, classes: ['a', 'b'] });
    expect((await pollJob(server, (submitted.body as { id: string }).id)).status).toBe('complete');
    await server.stop();
  });
});
