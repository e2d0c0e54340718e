/**
 * Long run (issue 5): thousands of jobs through GraphQL (HTTP and websocket) and REST with heap and RSS
 * sampled. After warm-up, memory must not grow beyond a stated bound; the embedding caches stay within
 * their capacities; jobs expire by TTL. 2,000 jobs in `npm test`; SOAK_JOBS=50000 (say) for a long run.
 */
import { OPEN_CALLER } from '../../../src/jobs/caller.js';
import { createClient } from 'graphql-ws';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Server } from '../../../src/roles/index.js';
import { distinctImages, gql } from '../../utils/testServer.js';
import {
  countCrashes,
  probabilityRows,
  expectClassification,
  forceGc,
  mib,
  MiB,
  settledJob,
  startRecordedServer,
} from './support.js';

const JOBS = Number(process.env.SOAK_JOBS ?? 2_000);
const CLIENTS = 12;
const TTL_SECONDS = 3;
const TEXT_CACHE = 64;
const IMAGE_CACHE = 32;
/** Allowed growth of the GC'd heap from the early to the late part of the run. */
const HEAP_GROWTH_BOUND = 8 * MiB;
/** Allowed growth of RSS over the same span (allocator and ONNX Runtime arenas make it noisier). */
const RSS_GROWTH_BOUND = 128 * MiB;
const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id } }';

interface Checkpoint {
  jobsDone: number;
  heapUsed: number;
  rss: number;
  liveJobs: number;
  textCache: number;
  imageCache: number;
}

async function liveJobs(server: Server): Promise<number> {
  let count = 0;
  let after: string | undefined;
  for (;;) {
    const page = await server.jobs.list(OPEN_CALLER, { first: 100, after });
    count += page.jobs.length;
    if (!page.hasNextPage || page.endCursor === null) return count;
    after = page.endCursor;
  }
}

describe('soak', () => {
  it(
    `should run ${JOBS} jobs with bounded memory and caches, and forget them after the TTL`,
    async () => {
      const server = await startRecordedServer({
        jobTtlSeconds: TTL_SECONDS,
        textCacheSize: TEXT_CACHE,
        imageCacheSize: IMAGE_CACHE,
      });
      const crashes = countCrashes();
      const images = await distinctImages(48, 90_000);
      const wsClient = createClient({
        url: server.wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: () => {},
      });
      const checkpoints: Checkpoint[] = [];
      let maxTextCache = 0;
      let maxImageCache = 0;
      const ids: string[] = [];
      let next = 0;
      let done = 0;
      const every = Math.max(50, Math.floor(JOBS / 20));
      const started = performance.now();

      const submit = async (index: number): Promise<{ id: string; images: number; classes: number }> => {
        const jobImages =
          index % 3 === 0
            ? [images[index % 48] as string, images[(index * 7) % 48] as string]
            : [images[index % 48] as string];
        // Two classes nobody used before (text-cache churn) and one shared by every job (cache hits).
        const classes = [`thing ${index}`, `object ${index}`, 'cat'];
        switch (index % 10) {
          case 7:
          case 8: {
            const route = jobImages.length > 1 ? 'batched/tiny' : 'tiny';
            const response = await fetch(`${server.url}/api/tasks/zero-shot-image-classification/${route}/jobs`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ image: jobImages.length > 1 ? jobImages : jobImages[0], classes }),
            });
            const body = (await response.json()) as { id?: string };
            if (body.id === undefined) throw new Error(`REST job ${index} refused: ${JSON.stringify(body)}`);
            return { id: body.id, images: jobImages.length, classes: classes.length };
          }
          case 9: {
            const input = jobImages.length > 1 ? { images: jobImages, classes } : { image: jobImages[0], classes };
            const id = await new Promise<string>((resolve, reject) => {
              let got: string | undefined;
              wsClient.subscribe<{ classify: { id: string } }>(
                { query: CLASSIFY, variables: { input } },
                {
                  next: (message) => (got = message.data?.classify.id),
                  error: reject,
                  complete: () => (got === undefined ? reject(new Error('no id')) : resolve(got)),
                },
              );
            });
            return { id, images: jobImages.length, classes: classes.length };
          }
          default: {
            const input = jobImages.length > 1 ? { images: jobImages, classes } : { image: jobImages[0], classes };
            const response = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, { input });
            const id = response.body.data?.classify.id;
            if (id === undefined) throw new Error(`GraphQL job ${index} refused: ${JSON.stringify(response.body)}`);
            return { id, images: jobImages.length, classes: classes.length };
          }
        }
      };

      try {
        await Promise.all(
          Array.from({ length: CLIENTS }, async () => {
            while (next < JOBS) {
              const index = next++;
              const submitted = await submit(index);
              const job = await settledJob(server.server, submitted.id);
              if (job.status !== 'complete') throw new Error(`job ${index} ${job.status}`);
              expectClassification(probabilityRows(job.result), submitted.images, submitted.classes);
              ids.push(job.id);
              done += 1;
              for (const size of server.server.clip!.cacheSizes()) {
                maxTextCache = Math.max(maxTextCache, size.text);
                maxImageCache = Math.max(maxImageCache, size.image);
              }
              if (done % every === 0) {
                forceGc();
                const { heapUsed, rss } = process.memoryUsage();
                const [cache] = server.server.clip!.cacheSizes();
                checkpoints.push({
                  jobsDone: done,
                  heapUsed,
                  rss,
                  liveJobs: await liveJobs(server.server),
                  textCache: cache?.text ?? 0,
                  imageCache: cache?.image ?? 0,
                });
              }
            }
          }),
        );
      } finally {
        await wsClient.dispose();
        crashes.dispose();
      }
      const elapsedS = (performance.now() - started) / 1000;

      // Warm-up: the first quarter (caches fill, JIT settles, the store reaches its TTL-bounded size).
      const afterWarmUp = checkpoints.filter((c) => c.jobsDone > JOBS / 4);
      const half = Math.floor(afterWarmUp.length / 2);
      const early = afterWarmUp.slice(0, half);
      const late = afterWarmUp.slice(half);
      const peak = (rows: Checkpoint[], key: 'heapUsed' | 'rss'): number => Math.max(...rows.map((row) => row[key]));
      const heapGrowth = peak(late, 'heapUsed') - peak(early, 'heapUsed');
      const rssGrowth = peak(late, 'rss') - peak(early, 'rss');
      console.log(
        [
          `soak: ${JOBS} jobs (${CLIENTS} clients; GraphQL HTTP 70%, REST 20%, graphql-ws 10%) in ${elapsedS.toFixed(1)} s (${Math.round(JOBS / elapsedS)} jobs/s); TTL ${TTL_SECONDS} s; caches text ${TEXT_CACHE} / image ${IMAGE_CACHE}`,
          `  heap after GC: early peak ${mib(peak(early, 'heapUsed'))}, late peak ${mib(peak(late, 'heapUsed'))} (growth ${mib(heapGrowth)}, bound ${mib(HEAP_GROWTH_BOUND)})`,
          `  RSS: early peak ${mib(peak(early, 'rss'))}, late peak ${mib(peak(late, 'rss'))} (growth ${mib(rssGrowth)}, bound ${mib(RSS_GROWTH_BOUND)})`,
          `  live jobs in the store at checkpoints: ${checkpoints.map((c) => c.liveJobs).join(', ')}; largest caches seen: text ${maxTextCache}, image ${maxImageCache}`,
        ].join('\n'),
      );
      expect(done).toBe(JOBS);
      expect(afterWarmUp.length).toBeGreaterThanOrEqual(4);
      expect(heapGrowth).toBeLessThan(HEAP_GROWTH_BOUND);
      expect(rssGrowth).toBeLessThan(RSS_GROWTH_BOUND);
      // The caches never hold more than their capacity, though far more distinct prompts and images went through.
      expect(maxTextCache).toBeLessThanOrEqual(TEXT_CACHE);
      expect(maxImageCache).toBeLessThanOrEqual(IMAGE_CACHE);
      expect(maxTextCache).toBe(TEXT_CACHE);
      // The store holds only what the TTL allows, not every job ever run.
      expect(Math.max(...checkpoints.map((c) => c.liveJobs))).toBeLessThan(JOBS);

      // After the TTL every job is gone, on every API.
      await new Promise((resolve) => setTimeout(resolve, TTL_SECONDS * 1000 + 500));
      expect(await liveJobs(server.server)).toBe(0);
      const listed = await gql<{ jobs: { nodes: unknown[] } }>(
        server.graphqlUrl,
        '{ jobs(first: 100) { nodes { id } } }',
      );
      expect(listed.body.data?.jobs.nodes).toEqual([]);
      const last = ids.at(-1) ?? '';
      expect(
        (await gql<{ job: unknown }>(server.graphqlUrl, 'query($id: ID!) { job(id: $id) { id } }', { id: last })).body
          .data?.job,
      ).toBeNull();
      expect((await fetch(`${server.url}/api/tasks/zero-shot-image-classification/jobs/${ids[0] ?? ''}`)).status).toBe(
        404,
      );

      const stats = server.server.jobs.stats();
      expect([stats.queued, stats.running, stats.pendingImages, stats.watchers]).toEqual([0, 0, 0, 0]);
      expect(crashes.rejections).toEqual([]);
      expect(server.errorLogs()).toEqual([]);
    },
    Math.max(120_000, JOBS * 40),
  );
});
