/**
 * Shutdown (issue 5): SIGTERM/SIGINT to the server process with jobs queued and running. Accepted jobs
 * finish within the drain timeout and their graphql-ws subscribers receive the terminal state; jobs
 * submitted during the drain are refused (SHUTTING_DOWN, HTTP 503); the process exits 0. Jobs still
 * unfinished at DRAIN_TIMEOUT_MS fail with SHUTTING_DOWN, and their subscribers are told.
 */
import { createClient, type Client } from 'graphql-ws';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildServer, startProcessServer, type ProcessServer } from '../../utils/processServer.js';

const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id status } }';
const JOB_UPDATED =
  'subscription($id: ID!) { jobUpdated(id: $id) { id status error { code message } result { images { probabilities } } } }';
const REST_SINGLE = '/api/tasks/zero-shot-image-classification/tiny/jobs';
const REST_BATCHED = '/api/tasks/zero-shot-image-classification/batched/tiny/jobs';

/** `count` distinct `size`×`size` PNG data URLs: big enough that a few dozen keep a job busy for a while. */
async function images(count: number, offset: number, size = 160): Promise<string[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const pixels = Buffer.alloc(size * size * 3);
      const seed = index + offset;
      for (let i = 0; i < pixels.length; i += 1) pixels[i] = (i * 13 + seed * 101 + ((i * seed) % 17) * 5) % 256;
      const png = await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
        .png({ compressionLevel: 1 })
        .toBuffer();
      return `data:image/png;base64,${png.toString('base64')}`;
    }),
  );
}

async function post(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function submitGraphql(server: ProcessServer, input: Record<string, unknown>): Promise<string> {
  const response = await post(server.graphqlUrl, { query: CLASSIFY, variables: { input } });
  const id = (response.body.data as { classify?: { id?: string } } | undefined)?.classify?.id;
  if (id === undefined) throw new Error(`refused: ${JSON.stringify(response.body).slice(0, 300)}`);
  return id;
}

async function submitRest(server: ProcessServer, path: string, body: Record<string, unknown>): Promise<string> {
  const response = await post(`${server.url}${path}`, body);
  if (typeof response.body.id !== 'string') throw new Error(`refused: ${JSON.stringify(response.body).slice(0, 300)}`);
  return response.body.id;
}

interface Watched {
  id: string;
  statuses: string[];
  last?: { status: string; error?: { code: string } | null; result?: unknown };
  completed: Promise<void>;
  /** Resolves with the first message (the job's state when subscribed). */
  first: Promise<void>;
}

function watch(client: Client, id: string): Watched {
  const watched: Partial<Watched> & { id: string; statuses: string[] } = { id, statuses: [] };
  let markFirst: () => void = () => {};
  watched.first = new Promise<void>((resolve) => {
    markFirst = resolve;
  });
  watched.completed = new Promise<void>((resolve, reject) => {
    client.subscribe<{ jobUpdated: NonNullable<Watched['last']> }>(
      { query: JOB_UPDATED, variables: { id } },
      {
        next: (message) => {
          const job = message.data?.jobUpdated;
          if (job !== undefined) {
            watched.last = job;
            watched.statuses.push(job.status);
          }
          markFirst();
        },
        error: (error: unknown) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: resolve,
      },
    );
  });
  return watched as Watched;
}

function errorLogs(server: ProcessServer): string[] {
  return server.logs
    .filter((line) => line.level >= 50)
    .map((line) => `${line.msg ?? ''} ${JSON.stringify(line.err ?? '')}`);
}

describe('shutdown of the server process', () => {
  beforeAll(async () => {
    await buildServer();
  }, 180_000);

  it('should finish every accepted job on SIGTERM, tell each subscriber, refuse new jobs while draining, and exit 0', async () => {
    const server = await startProcessServer({ MAX_CONCURRENT_JOBS: '1', DRAIN_TIMEOUT_MS: '60000' });
    const client = createClient({
      url: server.wsUrl,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      onNonLazyError: () => {},
    });
    // One long job running, then queued ones behind it over both APIs.
    const [busy, ...queued] = await Promise.all([
      images(48, 1_000),
      ...Array.from({ length: 6 }, (_, i) => images(4, 2_000 + 10 * i, 96)),
    ]);
    const graphqlIds = [await submitGraphql(server, { images: busy, classes: ['a', 'b'] })];
    const restIds: string[] = [];
    for (const [index, group] of queued.entries()) {
      if (index % 2 === 0)
        graphqlIds.push(await submitGraphql(server, { images: group, classes: ['cat', 'dog', `thing ${index}`] }));
      else restIds.push(await submitRest(server, REST_BATCHED, { image: group, classes: ['cat', 'dog'] }));
    }
    const watched = graphqlIds.map((id) => watch(client, id));
    await Promise.all(watched.map((w) => w.first));
    const atSignal = watched.map((w) => w.statuses[0]);
    // The signal lands with work both running and queued.
    expect(atSignal).toContain('RUNNING');
    expect(atSignal).toContain('QUEUED');

    server.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 150));
    // While draining: alive, not ready, and refusing new work on every API.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const ready = await fetch(`${server.url}/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reason: string }).reason).toMatch(/shutting down/);
    const refusedGraphql = await post(server.graphqlUrl, {
      query: CLASSIFY,
      variables: { input: { image: queued[0]?.[0], classes: ['a', 'b'] } },
    });
    expect((refusedGraphql.body.errors as { extensions: { code: string } }[])[0]?.extensions.code).toBe(
      'SHUTTING_DOWN',
    );
    const refusedRest = await post(`${server.url}${REST_SINGLE}`, { image: queued[0]?.[0], classes: ['a', 'b'] });
    expect(refusedRest.status).toBe(503);
    expect((refusedRest.body.error as { code: string }).code).toBe('SHUTTING_DOWN');
    const stillRunning = watched.filter((w) => w.last?.status !== 'COMPLETE').length;
    expect(stillRunning).toBeGreaterThan(0);

    // Every subscriber hears its job finish; the process then exits cleanly.
    await Promise.all(watched.map((w) => w.completed));
    for (const w of watched) {
      expect(w.last?.status).toBe('COMPLETE');
      expect(w.last?.result).toBeTruthy();
    }
    expect(await server.exited).toBe(0);
    await client.dispose();
    // REST jobs have no subscriber: the job log says they completed before the process stopped.
    for (const id of [...graphqlIds, ...restIds])
      expect(server.logs.some((line) => line.jobId === id && line.status === 'complete')).toBe(true);
    expect(server.logs.some((line) => line.msg === 'stopped')).toBe(true);
    expect(errorLogs(server)).toEqual([]);
    expect(server.output()).not.toMatch(/unhandled|uncaught|Error:/i);
    console.log(
      `SIGTERM drain: ${graphqlIds.length + restIds.length} accepted jobs (${stillRunning} unfinished at the signal) all completed; exit 0`,
    );
  });

  it('should fail the jobs still unfinished at DRAIN_TIMEOUT_MS with SHUTTING_DOWN, tell their subscribers, and exit 0', async () => {
    const server = await startProcessServer({ MAX_CONCURRENT_JOBS: '1', DRAIN_TIMEOUT_MS: '200' });
    const client = createClient({
      url: server.wsUrl,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      onNonLazyError: () => {},
    });
    const groups = await Promise.all(Array.from({ length: 4 }, (_, i) => images(48, 5_000 + 100 * i)));
    const ids: string[] = [];
    for (const group of groups) ids.push(await submitGraphql(server, { images: group, classes: ['a', 'b'] }));
    const watched = ids.map((id) => watch(client, id));
    await Promise.all(watched.map((w) => w.first));
    const signalled = performance.now();
    server.child.kill('SIGTERM');
    await Promise.all(watched.map((w) => w.completed));
    const failed = watched.filter((w) => w.last?.status === 'FAILED');
    expect(failed.length).toBeGreaterThan(0);
    for (const w of watched) expect(['COMPLETE', 'FAILED']).toContain(w.last?.status);
    for (const w of failed) expect(w.last?.error?.code).toBe('SHUTTING_DOWN');
    expect(await server.exited).toBe(0);
    // Drain timeout + the subscriber flush + closing: well under the time the work itself would need.
    expect(performance.now() - signalled).toBeLessThan(10_000);
    await client.dispose();
    expect(server.output()).not.toMatch(/unhandled|uncaught/i);
  });

  it('should stop an idle server on SIGINT with exit 0, and exit 1 at once on a second signal during a drain', async () => {
    const idle = await startProcessServer();
    idle.child.kill('SIGINT');
    expect(await idle.exited).toBe(0);

    const busy = await startProcessServer({ MAX_CONCURRENT_JOBS: '1', DRAIN_TIMEOUT_MS: '60000' });
    for (let i = 0; i < 3; i += 1)
      await submitGraphql(busy, { images: await images(48, 9_000 + 100 * i), classes: ['a', 'b'] });
    busy.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = performance.now();
    busy.child.kill('SIGTERM');
    const code = await busy.exited;
    // Far sooner than the 60 s drain it abandons.
    expect(performance.now() - second).toBeLessThan(30_000);
    expect(busy.logs.some((line) => line.msg?.includes('second signal') === true)).toBe(true);
    // The inference workers are terminated before process.exit: exiting while one is inside onnxruntime-node
    // used to abort in native code (SIGABRT, "FATAL ERROR: Error::Error napi_define_properties").
    expect({ code, signal: busy.child.signalCode }).toEqual({ code: 1, signal: null });
  });
});
