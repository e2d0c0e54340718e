/**
 * Faults (issue 5): a default model that is missing, truncated or corrupt stops the start with an error
 * naming the file (in-process, and as a process: exit 1); an extra model that fails never takes the
 * default down and its jobs fail with a code; an inference error fails only its job; clients that
 * vanish mid-subscription or mid-upload leave nothing behind.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ClipTokenizer } from '../../../src/clip/text/clipBpe.js';
import { createServer } from '../../../src/roles/index.js';
import { silentLogger } from '../../../src/logger.js';
import { craftPng } from '../../utils/fuzzCases.js';
import { buildServer, spawnServer } from '../../utils/processServer.js';
import { TINY_MODEL_DIR } from '../../utils/testModel.js';
import { distinctImages, gql, testConfig, waitFor } from '../../utils/testServer.js';
import { countCrashes, metricValue, settledJob, startRecordedServer, type RecordedServer } from './support.js';

const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id status } }';
const MODELS = '{ models { name source status ready error } }';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'clip-faults-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/**
 * A copy of the tiny model in which `damage` rewrites some files; the untouched files are symlinks.
 * Returns its directory.
 */
async function damagedModel(
  name: string,
  damage: Record<string, (original: Buffer) => Buffer | null>,
): Promise<string> {
  const dir = path.join(scratch, name);
  await mkdir(path.join(dir, 'onnx'), { recursive: true });
  for (const sub of ['', 'onnx']) {
    for (const entry of await readdir(path.join(TINY_MODEL_DIR, sub), { withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const relative = path.join(sub, entry.name);
      const change = damage[relative];
      if (change === undefined) {
        await symlink(path.join(TINY_MODEL_DIR, relative), path.join(dir, relative));
        continue;
      }
      const changed = change(await readFile(path.join(TINY_MODEL_DIR, relative)));
      if (changed !== null) await writeFile(path.join(dir, relative), changed);
    }
  }
  return dir;
}

const half = (bytes: Buffer): Buffer => bytes.subarray(0, Math.floor(bytes.length / 2));
const garbage = (bytes: Buffer): Buffer =>
  Buffer.from(Array.from({ length: Math.min(bytes.length, 4096) }, (_, i) => (i * 7919) % 251));
const remove = (): null => null;

/** Each way to break the default model, and the file its error must name. */
const BROKEN_MODELS: [name: string, damage: Record<string, (original: Buffer) => Buffer | null>, names: RegExp][] = [
  ['truncated text tower', { 'onnx/text_model.onnx': half }, /text_model\.onnx/],
  ['truncated vision tower', { 'onnx/vision_model.onnx': half }, /vision_model\.onnx/],
  ['garbage vision tower', { 'onnx/vision_model.onnx': garbage }, /vision_model\.onnx/],
  ['empty text tower', { 'onnx/text_model.onnx': () => Buffer.alloc(0) }, /text_model\.onnx/],
  [
    'no ONNX files',
    { 'onnx/text_model.onnx': remove, 'onnx/vision_model.onnx': remove, 'onnx/model.onnx': remove },
    /onnx/,
  ],
  ['config.json not JSON', { 'config.json': (bytes) => bytes.subarray(0, 20) }, /config\.json/],
  [
    'preprocessor_config.json not JSON',
    { 'preprocessor_config.json': () => Buffer.from('{"crop_size": ') },
    /preprocessor_config\.json/,
  ],
  [
    'preprocessor_config.json with wrong types',
    { 'preprocessor_config.json': () => Buffer.from('{"crop_size": "huge", "image_mean": 5}') },
    /preprocessor_config\.json/,
  ],
  ['tokenizer.json corrupt', { 'tokenizer.json': garbage }, /tokenizer\.json/],
  ['tokenizer.json missing', { 'tokenizer.json': remove }, /tokenizer\.json/],
];

describe('a default model that cannot load', () => {
  it.each(BROKEN_MODELS)('should refuse to start with an error naming the file: %s', async (name, damage, names) => {
    const dir = await damagedModel(name.replace(/\W+/g, '-'), damage);
    const server = createServer(testConfig({ clipModel: dir }), { logger: silentLogger() });
    try {
      const error = await server.start().then(
        () => null,
        (reason: unknown) => reason as Error,
      );
      expect(error).toBeInstanceOf(Error);
      expect(error?.message).toMatch(names);
      // The server stays up only to say why it is not ready.
      const port = (server.httpServer.address() as { port: number }).port;
      const ready = await fetch(`http://127.0.0.1:${port}/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { reason: string }).reason).toMatch(names);
    } finally {
      await server.stop();
    }
  });

  it('should exit 1 naming the file when the process starts on a missing, truncated or corrupt model', async () => {
    await buildServer();
    const cases: [string, string, RegExp][] = [
      ['missing', path.join(scratch, 'no-such-model'), /no-such-model/],
      ['truncated', await damagedModel('process-truncated', { 'onnx/text_model.onnx': half }), /text_model\.onnx/],
      [
        'invalid JSON',
        await damagedModel('process-json', { 'config.json': (bytes) => bytes.subarray(0, 20) }),
        /config\.json/,
      ],
    ];
    const results = await Promise.all(
      cases.map(async ([label, dir, names]) => {
        const server = spawnServer({ CLIP_MODEL: dir });
        const code = await server.exited;
        const fatal = server.logs.find((line) => line.level === 60);
        return { label, code, names, message: fatal?.msg ?? '', output: server.output() };
      }),
    );
    for (const { label, code, names, message, output } of results) {
      expect(code, label).toBe(1);
      expect(message, label).toMatch(/clip-server could not start/);
      expect(message, label).toMatch(names);
      expect(output, label).not.toMatch(/unhandled|uncaught/i);
    }
  });
});

/** The tiny model with its text tower's sequence length fixed: prompts of any other token count fail inside ONNX Runtime. */
async function fragileModel(): Promise<{ dir: string; fitting: string }> {
  const tokenizer = await ClipTokenizer.fromFile(path.join(TINY_MODEL_DIR, 'tokenizer.json'), { contextLength: 77 });
  // The warm-up prompt's length, so the model loads; "warm up" sent with the template "{}" fits too.
  const length = tokenizer.encode('warm up').length;
  const { onnx } = onnxProto;
  const dir = await damagedModel('fragile', {
    'onnx/text_model.onnx': (bytes) => {
      const model = onnx.ModelProto.decode(bytes);
      for (const input of model.graph?.input ?? []) {
        const dims = input.type?.tensorType?.shape?.dim;
        if (dims?.[1] !== undefined) dims[1] = { dimValue: length };
      }
      return Buffer.from(onnx.ModelProto.encode(model).finish());
    },
  });
  return { dir, fitting: 'warm up' };
}

describe('an extra model that fails', () => {
  let server: RecordedServer;
  let fittingClass: string;

  beforeAll(async () => {
    const broken = await damagedModel('extra-broken', { 'onnx/vision_model.onnx': half });
    const second = await damagedModel('extra-second', {});
    const fragile = await fragileModel();
    fittingClass = fragile.fitting;
    server = await startRecordedServer({
      clipModels: [
        { name: 'broken', source: broken },
        { name: 'second', source: second },
        { name: 'fragile', source: fragile.dir },
      ],
    });
    // Extra models load in the background; wait until each has settled.
    await waitFor(async () => {
      const models = (await gql<{ models: { status: string }[] }>(server.graphqlUrl, MODELS)).body.data?.models ?? [];
      return models.every((model) => model.status !== 'LOADING') ? true : undefined;
    }, 30_000);
  });

  it('should report it FAILED naming the file, without server paths, while the others serve', async () => {
    const models =
      (
        await gql<{ models: { name: string; source: string; status: string; ready: boolean; error: string | null }[] }>(
          server.graphqlUrl,
          MODELS,
        )
      ).body.data?.models ?? [];
    const byName = Object.fromEntries(models.map((model) => [model.name, model]));
    expect(byName.tiny?.ready).toBe(true);
    expect(byName.second?.ready).toBe(true);
    expect(byName.fragile?.ready).toBe(true);
    expect(byName.broken?.status).toBe('FAILED');
    expect(byName.broken?.error).toMatch(/vision_model\.onnx/);
    // What clients see names files, never the server's directories.
    for (const model of models) {
      expect(`${model.source} ${model.error ?? ''}`).not.toContain(scratch);
      expect(`${model.source} ${model.error ?? ''}`).not.toContain(TINY_MODEL_DIR);
    }
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
  });

  it('should fail (or refuse) its jobs with MODEL_UNAVAILABLE on every API, and keep running the other models', async () => {
    const [image] = await distinctImages(1, 60_000);
    const outcomes: string[] = [];
    const graphql = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
      input: { image, classes: ['a', 'b'], model: 'broken' },
    });
    const rest = await fetch(`${server.url}/api/tasks/zero-shot-image-classification/broken/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image, classes: ['a', 'b'] }),
    });
    const restBody = (await rest.json()) as { id?: string; error?: { code: string } };
    for (const id of [graphql.body.data?.classify.id, restBody.id]) {
      if (id === undefined) continue;
      const job = await settledJob(server.server, id);
      expect(job.status).toBe('failed');
      if (job.status === 'failed') {
        expect(job.error.code).toBe('MODEL_UNAVAILABLE');
        expect(job.error.message).toMatch(/broken/);
        expect(job.error.message).not.toContain(scratch);
        outcomes.push(`FAILED ${job.error.code}: ${job.error.message}`);
      }
    }
    if (graphql.body.errors !== undefined) outcomes.push(`refused ${String(graphql.body.errors[0]?.extensions?.code)}`);
    if (restBody.error !== undefined) outcomes.push(`refused ${restBody.error.code} (HTTP ${rest.status})`);
    expect(outcomes).toHaveLength(2);
    for (const model of ['tiny', 'second']) {
      const ok = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
        input: { image, classes: ['a', 'b'], model },
      });
      expect((await settledJob(server.server, ok.body.data?.classify.id ?? '')).status).toBe('complete');
    }
    console.log(`broken extra model: ${outcomes.join('; ')}`);
  });

  it('should fail a job whose inference errors with INFERENCE_FAILED, and keep serving (that model too)', async () => {
    const crashes = countCrashes();
    const [image] = await distinctImages(1, 61_000);
    try {
      const failing = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
        input: { image, classes: ['cat', 'dog'], model: 'fragile' },
      });
      const job = await settledJob(server.server, failing.body.data?.classify.id ?? '');
      expect(job.status).toBe('failed');
      if (job.status === 'failed') {
        expect(job.error.code).toBe('INFERENCE_FAILED');
        expect(job.error.message).toMatch(/Inference failed on fragile/);
      }
      // The same model still answers what it can run, and the default never noticed.
      const fitting = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
        input: { image, classes: [fittingClass], model: 'fragile', config: { promptTemplate: '{}' } },
      });
      expect((await settledJob(server.server, fitting.body.data?.classify.id ?? '')).status).toBe('complete');
      const other = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
        input: { image, classes: ['cat', 'dog'] },
      });
      expect((await settledJob(server.server, other.body.data?.classify.id ?? '')).status).toBe('complete');
      // The failed job's REST view carries the reason too.
      const rest = (await (
        await fetch(`${server.url}/api/tasks/zero-shot-image-classification/jobs/${job.id}`)
      ).json()) as { status: string; error?: { code: string } };
      expect(rest).toMatchObject({ status: 'failed', error: { code: 'INFERENCE_FAILED' } });
    } finally {
      crashes.dispose();
    }
    expect(crashes.rejections).toEqual([]);
  });

  it('should fail a job whose image passes the header check but cannot be decoded with BAD_USER_INPUT', async () => {
    // A valid PNG header (64×64) with only the first rows of pixel data.
    const image = `data:image/png;base64,${craftPng(64, 64).toString('base64')}`;
    const submitted = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
      input: { image, classes: ['a', 'b'] },
    });
    const job = await settledJob(server.server, submitted.body.data?.classify.id ?? '');
    expect(job.status).toBe('failed');
    if (job.status === 'failed') {
      expect(job.error.code).toBe('BAD_USER_INPUT');
      expect(job.error.message).toMatch(/could not be decoded/);
    }
    // The broken model's load failure is the one error this server logs.
    expect(server.errorLogs().filter((entry) => entry.msg !== 'model failed to load')).toEqual([]);
  });
});

describe('clients that vanish', () => {
  let server: RecordedServer;
  beforeAll(async () => {
    server = await startRecordedServer({ maxConcurrentJobs: 1 });
  });

  /** A raw graphql-ws socket subscribed to a job; resolves once the first state arrived. */
  function subscribedSocket(id: string): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
      socket.on('message', (data) => {
        const message = JSON.parse(String(data)) as { type: string };
        if (message.type === 'connection_ack') {
          socket.send(
            JSON.stringify({
              type: 'subscribe',
              id: 's',
              payload: { query: 'subscription($id: ID!) { jobUpdated(id: $id) { status } }', variables: { id } },
            }),
          );
        } else if (message.type === 'next') resolve(socket);
      });
      socket.on('error', reject);
    });
  }

  it('should release every subscription and listener when clients disconnect mid-subscription, however they leave', async () => {
    const listenersBefore = server.server.jobs.events.listenerCount('jobUpdated');
    const blocker = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
      input: { images: await distinctImages(64, 62_000), classes: ['a', 'b'] },
    });
    const target = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
      input: { images: await distinctImages(2, 62_100), classes: ['a', 'b'] },
    });
    const id = target.body.data?.classify.id ?? '';
    const sockets = await Promise.all(Array.from({ length: 15 }, () => subscribedSocket(id)));
    expect(server.server.jobs.stats().watchers).toBe(15);
    expect(server.server.jobs.events.listenerCount('jobUpdated')).toBe(listenersBefore + 15);
    sockets.forEach((socket, index) => {
      if (index % 3 === 0)
        socket.terminate(); // the network drops: no close frame
      else if (index % 3 === 1)
        socket.close(1000); // a clean goodbye
      else {
        socket.send(JSON.stringify({ type: 'complete', id: 's' })); // unsubscribes, then leaves
        socket.close(4000, 'bye');
      }
    });
    // A socket that goes away while its subscribe is still being prepared.
    const hasty = new WebSocket(server.wsUrl, 'graphql-transport-ws');
    hasty.on('open', () => hasty.send(JSON.stringify({ type: 'connection_init' })));
    hasty.on('message', () => {
      hasty.send(
        JSON.stringify({
          type: 'subscribe',
          id: 'h',
          payload: { query: 'subscription($id: ID!) { jobUpdated(id: $id) { status } }', variables: { id } },
        }),
      );
      hasty.terminate();
    });
    hasty.on('error', () => {});
    await expect.poll(() => server.server.jobs.stats().watchers, { timeout: 5_000 }).toBe(0);
    expect(server.server.jobs.events.listenerCount('jobUpdated')).toBe(listenersBefore);
    await expect.poll(() => metricValue(server.url, 'clip_websocket_connections'), { timeout: 5_000 }).toBe(0);
    // Nobody listens any more, but the accepted jobs still finish.
    expect((await settledJob(server.server, blocker.body.data?.classify.id ?? '')).status).toBe('complete');
    expect((await settledJob(server.server, id)).status).toBe('complete');
  });

  it('should create no job from an upload aborted mid-body, over GraphQL or REST', async () => {
    const before = server.server.jobs.stats().totals.queued;
    const [image] = await distinctImages(1, 63_000);
    const graphqlBody = JSON.stringify({
      query: CLASSIFY,
      variables: { input: { image: `${image ?? ''}${'A'.repeat(400_000)}`, classes: ['a', 'b'] } },
    });
    const restBody = JSON.stringify({ image: `${image ?? ''}${'A'.repeat(400_000)}`, classes: ['a', 'b'] });
    const port = Number(new URL(server.url).port);
    const abortAfterHalf = (pathname: string, body: string): Promise<void> =>
      new Promise((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.write(
            `POST ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
          );
          socket.write(body.slice(0, Math.floor(body.length / 2)), () => setTimeout(() => socket.destroy(), 50));
        });
        socket.on('close', () => resolve());
        socket.on('error', () => resolve());
      });
    await Promise.all([
      abortAfterHalf('/graphql', graphqlBody),
      abortAfterHalf('/api/tasks/zero-shot-image-classification/tiny/jobs', restBody),
      abortAfterHalf('/api/tasks/zero-shot-image-classification/batched/tiny/jobs', restBody),
      abortAfterHalf('/graphql', graphqlBody),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.server.jobs.stats().totals.queued).toBe(before);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect(server.errorLogs()).toEqual([]);
  });

  it('should keep and finish a job whose client left right after submitting it (websocket and the legacy REST route)', async () => {
    const before = server.server.jobs.stats().totals;
    const [image] = await distinctImages(1, 64_000);
    await new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
      socket.on('message', () => {
        socket.send(
          JSON.stringify({
            type: 'subscribe',
            id: '1',
            payload: { query: CLASSIFY, variables: { input: { image, classes: ['a', 'b'] } } },
          }),
        );
        socket.terminate();
        resolve();
      });
      socket.on('error', reject);
    });
    const legacy = new AbortController();
    const waiting = fetch(`${server.url}/api/legacy/tasks/zero-shot-image-classification/tiny/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image, classes: ['c', 'd'] }),
      signal: legacy.signal,
    }).catch(() => undefined);
    await expect.poll(() => server.server.jobs.stats().totals.queued, { timeout: 5_000 }).toBe(before.queued + 2);
    legacy.abort();
    await waiting;
    await expect.poll(() => server.server.jobs.stats().totals.complete, { timeout: 10_000 }).toBe(before.complete + 2);
    expect(server.server.jobs.stats().watchers).toBe(0);
    expect(server.errorLogs()).toEqual([]);
  });
});
