/**
 * The server's lifecycle in-process: health, readiness and metrics; a default model that cannot load; ordered
 * shutdown (drain, subscribers see the terminal state). As a real process on SIGTERM: test/system/graphql.lifecycle.test.ts.
 */
import { OPEN_CALLER } from '../../src/jobs/caller.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../src/roles/index.js';
import { silentLogger } from '../../src/logger.js';
import { ClassifyDocument, JobDocument, JobUpdatedDocument } from '../generated/graphql.js';
import {
  distinctImages,
  gql,
  startTestServer,
  subscribe,
  testConfig,
  tinyImages,
  waitFor,
} from '../utils/testServer.js';

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
    await waitFor(async () =>
      (await gql(graphqlUrl, JobDocument, { id })).body.data?.job?.status === 'COMPLETE' ? true : undefined,
    );

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
    const first = await gql(test.graphqlUrl, ClassifyDocument, {
      input: { images: await distinctImages(64, 20_000), classes: ['a', 'b'] },
    });
    const second = await gql(test.graphqlUrl, ClassifyDocument, { input: { image, classes: ['a', 'b'] } });
    const ids = [first.body.data?.classify.id ?? '', second.body.data?.classify.id ?? ''];
    let stopping: Promise<void> | undefined;
    const subscription = subscribe(
      test.wsUrl,
      JobUpdatedDocument,
      { id: ids[1] ?? '' },
      {
        onMessage: () => {
          stopping ??= test.server.stop();
        },
      },
    );
    const result = await subscription;
    expect(result.completed).toBe(true);
    expect(result.messages.at(-1)?.data?.jobUpdated.status).toBe('COMPLETE');
    expect(stopping).toBeDefined();
    // A second stop awaits the first.
    await Promise.all([stopping, test.server.stop()]);
    for (const id of ids)
      expect((await test.server.jobs.get(OPEN_CALLER, id).catch(() => undefined))?.status ?? 'gone').not.toBe(
        'running',
      );
    await expect(fetch(`${test.url}/health`)).rejects.toThrow();
  });

  it('should fail jobs still unfinished at DRAIN_TIMEOUT_MS with SHUTTING_DOWN, and tell their subscribers', async () => {
    const test = await startTestServer({ maxConcurrentJobs: 1, drainTimeoutMs: 1 });
    await gql(test.graphqlUrl, ClassifyDocument, {
      input: { images: await distinctImages(64, 30_000), classes: ['a', 'b'] },
    });
    const queued = await gql(test.graphqlUrl, ClassifyDocument, { input: { image, classes: ['a', 'b'] } });
    const id = queued.body.data?.classify.id ?? '';
    let stopping: Promise<void> | undefined;
    const result = await subscribe(
      test.wsUrl,
      JobUpdatedDocument,
      { id },
      {
        onMessage: () => {
          stopping ??= test.server.stop();
        },
      },
    );
    await stopping;
    expect(result.messages.map((message) => message.data?.jobUpdated.status)).toEqual(['QUEUED', 'FAILED']);
    expect(result.messages.at(-1)?.data?.jobUpdated.error).toMatchObject({ code: 'SHUTTING_DOWN' });
  });
});
