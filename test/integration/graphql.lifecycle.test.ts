/**
 * The server's lifecycle: health, readiness and metrics; a default model that cannot load; ordered
 * shutdown in-process (drain, subscribers see the terminal state) and as a real process on SIGTERM.
 */
import { OPEN_CALLER } from '../../src/jobs/caller.js';
import { spawn, execFile } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/logger.js';
import { ClassifyDocument, JobDocument, JobUpdatedDocument } from '../generated/graphql.js';
import { buildServer, MAIN_JS, processEnv } from '../utils/processServer.js';
import { distinctImages, gql, startTestServer, subscribe, testConfig, tinyImages, waitFor } from '../utils/testServer.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let image: string;
beforeAll(async () => {
  [image] = (await tinyImages()) as [string];
});

describe('health, readiness and metrics', () => {
  it('should answer /health, /ready and /metrics with the documented contents', async () => {
    const { url, graphqlUrl } = await startTestServer();
    expect(await (await fetch(`${url}/health`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });

    const job = await gql(graphqlUrl, ClassifyDocument, { input: { images: [image, image], classes: ['a', 'b'] } });
    const id = job.body.data?.classify.id ?? '';
    await waitFor(async () => ((await gql(graphqlUrl, JobDocument, { id })).body.data?.job?.status === 'COMPLETE' ? true : undefined));

    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    for (const pattern of [
      /^clip_jobs_total\{status="queued",task="classification"\} [1-9]/m,
      /^clip_jobs_total\{status="complete",task="classification"\} [1-9]/m,
      /^clip_jobs_active\{status="running"\} 0$/m,
      /^clip_queued_jobs 0$/m,
      /^clip_queued_images 0$/m,
      /^clip_batch_size_bucket\{le="[\d.]+",model="[^"]+",kind="image"\} \d+/m,
      /^clip_inference_duration_seconds_count\{model="[^"]+",kind="image"\} [1-9]/m,
      /^clip_inference_duration_seconds_count\{model="[^"]+",kind="text"\} [1-9]/m,
      /^clip_job_duration_seconds_count\{status="complete",task="classification"\} [1-9]/m,
      /^clip_cache_lookups_total\{model="[^"]+",kind="image",result="(hit|miss)"\} [1-9]/m,
      /^clip_cache_hit_ratio\{kind="image"\} [\d.]+$/m,
      /^process_cpu_user_seconds_total /m,
      /^nodejs_heap_size_used_bytes /m,
    ]) {
      expect(text).toMatch(pattern);
    }
  });

  it('should report not ready with the reason, and reject start naming the model, when the default model cannot load', async () => {
    const missing = path.join(ROOT, 'test', '.models', 'does-not-exist');
    const server = createServer(testConfig({ clipModel: missing }), { logger: silentLogger() });
    try {
      await expect(server.start()).rejects.toThrow(/does-not-exist/);
      const port = (server.httpServer.address() as { port: number }).port;
      const ready = await fetch(`http://127.0.0.1:${port}/ready`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { ready: boolean; reason: string };
      expect(body.ready).toBe(false);
      expect(body.reason).toMatch(/failed to load/);
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    } finally {
      await server.stop();
    }
    expect(server.httpServer.listening).toBe(false);
  });
});

describe('shutdown', () => {
  it('should finish a job in flight, deliver its terminal state to subscribers, then stop (idempotently)', async () => {
    const test = await startTestServer({ maxConcurrentJobs: 1 });
    const first = await gql(test.graphqlUrl, ClassifyDocument, { input: { images: await distinctImages(64, 20_000), classes: ['a', 'b'] } });
    const second = await gql(test.graphqlUrl, ClassifyDocument, { input: { image, classes: ['a', 'b'] } });
    const ids = [first.body.data?.classify.id ?? '', second.body.data?.classify.id ?? ''];
    let stopping: Promise<void> | undefined;
    const subscription = subscribe(test.wsUrl, JobUpdatedDocument, { id: ids[1] ?? '' }, {
      onMessage: () => {
        stopping ??= test.server.stop();
      },
    });
    const result = await subscription;
    expect(result.completed).toBe(true);
    expect(result.messages.at(-1)?.data?.jobUpdated.status).toBe('COMPLETE');
    expect(stopping).toBeDefined();
    // A second stop awaits the first.
    await Promise.all([stopping, test.server.stop()]);
    for (const id of ids) expect((await test.server.jobs.get(OPEN_CALLER, id).catch(() => undefined))?.status ?? 'gone').not.toBe('running');
    await expect(fetch(`${test.url}/health`)).rejects.toThrow();
  });

  it('should fail jobs still unfinished at DRAIN_TIMEOUT_MS with SHUTTING_DOWN, and tell their subscribers', async () => {
    const test = await startTestServer({ maxConcurrentJobs: 1, drainTimeoutMs: 1 });
    await gql(test.graphqlUrl, ClassifyDocument, { input: { images: await distinctImages(64, 30_000), classes: ['a', 'b'] } });
    const queued = await gql(test.graphqlUrl, ClassifyDocument, { input: { image, classes: ['a', 'b'] } });
    const id = queued.body.data?.classify.id ?? '';
    let stopping: Promise<void> | undefined;
    const result = await subscribe(test.wsUrl, JobUpdatedDocument, { id }, {
      onMessage: () => {
        stopping ??= test.server.stop();
      },
    });
    await stopping;
    expect(result.messages.map((message) => message.data?.jobUpdated.status)).toEqual(['QUEUED', 'FAILED']);
    expect(result.messages.at(-1)?.data?.jobUpdated.error).toMatchObject({ code: 'SHUTTING_DOWN' });
  });
});

const execFileAsync = promisify(execFile);

describe('the process (node dist/src/main.js)', () => {
  beforeAll(() => buildServer(), 120_000);

  it('should drain on SIGTERM: refuse new jobs, finish the one in flight, deliver it to its subscriber, exit 0', async () => {
    const child = spawn(process.execPath, [MAIN_JS], {
      cwd: ROOT,
      env: processEnv({ MAX_CONCURRENT_JOBS: '1', MAX_BATCH_WAIT_MS: '2' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: { msg?: string; url?: string; status?: string; jobId?: string }[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const readyUrl = new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as (typeof logs)[number];
          logs.push(entry);
          if (entry.msg?.startsWith('clip-server ready') && entry.url !== undefined) resolve(entry.url);
        } catch {
          // Not a log line.
        }
      });
      void exited.then((code) => reject(new Error(`exited with ${code} before becoming ready`)));
    });
    try {
      const url = await readyUrl;
      const graphqlUrl = `${url}/graphql`;
      const wsUrl = `${url.replace('http', 'ws')}/graphql`;
      await gql(graphqlUrl, ClassifyDocument, { input: { images: await distinctImages(64, 40_000), classes: ['a', 'b'] } });
      const inFlight = await gql(graphqlUrl, ClassifyDocument, { input: { image, classes: ['a', 'b'] } });
      const id = inFlight.body.data?.classify.id ?? '';
      let refused: Promise<unknown> | undefined;
      const result = await subscribe(wsUrl, JobUpdatedDocument, { id }, {
        onMessage: () => {
          if (refused !== undefined) return;
          child.kill('SIGTERM');
          // Give the signal a moment to land, then try to submit during the drain.
          refused = new Promise((resolve) => setTimeout(resolve, 100)).then(() =>
            gql(graphqlUrl, ClassifyDocument, { input: { image, classes: ['a', 'b'] } }).catch((error: unknown) => error),
          );
        },
      });
      expect(result.completed).toBe(true);
      expect(result.messages.at(-1)?.data?.jobUpdated.status).toBe('COMPLETE');
      const late = (await refused) as { body?: { errors?: { extensions?: { code?: string } }[] } };
      // Refused with SHUTTING_DOWN while draining (or the connection was already closed if the drain was that quick).
      if (late.body !== undefined) expect(late.body.errors?.[0]?.extensions?.code).toBe('SHUTTING_DOWN');
      expect(await exited).toBe(0);
      expect(logs.some((entry) => entry.msg === 'shutting down')).toBe(true);
      expect(logs.some((entry) => entry.jobId === id && entry.status === 'complete')).toBe(true);
      expect(logs.some((entry) => entry.msg === 'stopped')).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('should exit 1 with a clear message when the default model cannot load', async () => {
    const missing = path.join(ROOT, 'test', '.models', 'no-such-model');
    const child = spawn(process.execPath, [MAIN_JS], {
      cwd: ROOT,
      env: processEnv({ CLIP_MODEL: missing }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(output).toMatch(/could not start/);
    expect(output).toMatch(/no-such-model/);
  });

  it('should exit 1 naming the variable for a bad setting', async () => {
    const { stderr, code } = await execFileAsync(process.execPath, [MAIN_JS], {
      cwd: ROOT,
      env: processEnv({ PORT: 'eighty' }),
    }).then(
      () => ({ stderr: '', code: 0 }),
      (error: { stderr: string; code: number }) => error,
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT: expected an integer between 0 and 65535, got "eighty"/);
  });
});
