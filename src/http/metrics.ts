/**
 * Prometheus metrics (the only prom-client importer). Each server gets its own Registry, so several
 * servers in one process (tests) do not collide. Counters and histograms are fed by the services'
 * events; gauges are read from the services at scrape time.
 *
 * Two scopes, said in every help text: the job gauges a cluster's user reads (queued and running jobs, pending
 * images and bytes) are cluster-wide on Redis (every process shows the same numbers, refreshed every second: read one,
 * or take the max); job counters and histograms count what this process stored (sum them over processes, and each
 * change counts once); batchers, caches, watchers and websockets are this process's.
 */
import type { EventEmitter } from 'node:events';
import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { onnxCpuSeconds, onnxThreadCount, onnxThreadCpu, type ClipEvents } from '../clip/index.js';
import { ownerLabel, type Job, type JobStats, type RetentionStats } from '../jobs/index.js';
import type { Logger } from '../logger.js';

export interface MetricsSources {
  /** The inference service of this process; absent on ROLE=api, which runs no model (its batcher gauges read 0). */
  clip?: { readonly events: EventEmitter<ClipEvents>; queuedImages(): number } | undefined;
  jobs: { onStored(listener: (job: Job) => void): () => void; stats(): JobStats; retention(): Promise<RetentionStats> };
  /** Open websocket connections. */
  websocketConnections?: () => number;
  logger: Logger;
}

export interface Metrics {
  readonly registry: Registry;
  /** GET /metrics. */
  handler: RequestHandler;
  /** Detaches from the services' events. Idempotent. */
  dispose(): void;
}

const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const { clip, jobs } = sources;

  const jobsTotal = new Counter({
    name: 'clip_jobs_total',
    help: 'Job state changes this process stored, by status and task (a job counts once per status it passes; queued = submitted here). Per process: sum over processes for a cluster.',
    labelNames: ['status', 'task'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'clip_jobs_active',
    help: 'Unfinished jobs by status (queued, running), cluster-wide with Redis (the same on every process, refreshed every second).',
    labelNames: ['status'] as const,
    registers: [registry],
    collect() {
      const stats = jobs.stats();
      this.set({ status: 'queued' }, stats.queued);
      this.set({ status: 'running' }, stats.running);
    },
  });
  new Gauge({
    name: 'clip_queued_jobs',
    help: 'Jobs waiting for a worker (queue depth, in jobs), cluster-wide with Redis.',
    registers: [registry],
    collect() {
      this.set(jobs.stats().queued);
    },
  });
  new Gauge({
    name: 'clip_queued_images',
    help: "Images waiting in this process's inference batchers (per process; 0 on an API).",
    registers: [registry],
    collect() {
      this.set(clip?.queuedImages() ?? 0);
    },
  });
  new Gauge({
    name: 'clip_pending_images',
    help: 'Images held by unfinished jobs (queued or running), cluster-wide with Redis.',
    registers: [registry],
    collect() {
      this.set(jobs.stats().pendingImages);
    },
  });
  new Gauge({
    name: 'clip_pending_image_bytes',
    help: 'Encoded image bytes held by unfinished jobs (MAX_PENDING_IMAGE_BYTES bounds it), cluster-wide with Redis.',
    registers: [registry],
    collect() {
      this.set(jobs.stats().pendingImageBytes);
    },
  });
  // Read at scrape time; with Redis unreachable the last values stay (a scrape must not fail with it).
  const retention = (): Promise<RetentionStats | undefined> => jobs.retention().catch(() => undefined);
  new Gauge({
    name: 'clip_retained_job_bytes',
    help: 'Bytes held by finished jobs (inputs and results) against MAX_RETAINED_JOB_BYTES: estimated heap in memory, stored JSON with Redis (cluster-wide).',
    registers: [registry],
    async collect() {
      const stats = await retention();
      if (stats !== undefined) this.set(stats.bytes);
    },
  });
  new Gauge({
    name: 'clip_retained_jobs',
    help: 'Finished jobs held until their TTL or the retention budget (MAX_RETAINED_JOB_BYTES) drops them; cluster-wide with Redis.',
    registers: [registry],
    async collect() {
      const stats = await retention();
      if (stats !== undefined) this.set(stats.jobs);
    },
  });
  let evictedSeen = 0;
  new Counter({
    name: 'clip_jobs_evicted_total',
    help: 'Finished jobs this process dropped before their TTL to stay within MAX_RETAINED_JOB_BYTES (they read as unknown, as if expired). Per process: sum over processes for a cluster.',
    registers: [registry],
    async collect() {
      const stats = await retention();
      if (stats === undefined || stats.evicted <= evictedSeen) return;
      this.inc(stats.evicted - evictedSeen);
      evictedSeen = stats.evicted;
    },
  });
  new Gauge({
    name: 'clip_jobs_in_progress_by_key',
    help: 'Unfinished jobs (queued or running) per API key, cluster-wide with Redis; `key` is a prefix of the keyed hash of the key (never the key itself). MAX_QUEUED_JOBS_PER_KEY bounds it.',
    labelNames: ['key'] as const,
    registers: [registry],
    collect() {
      // Keys whose jobs all finished leave the metric, rather than staying at 0 for the life of the process.
      this.reset();
      for (const [owner, counts] of Object.entries(jobs.stats().owners))
        this.set({ key: ownerLabel(owner) }, counts.jobs);
    },
  });
  new Gauge({
    name: 'clip_job_watchers',
    help: 'Open job subscriptions on this process.',
    registers: [registry],
    collect() {
      this.set(jobs.stats().watchers);
    },
  });
  // The server's CPU split: process_cpu_seconds_total minus this is what it spends outside inference.
  new Gauge({
    name: 'clip_onnxruntime_cpu_seconds',
    help: "CPU time used so far by ONNX Runtime's threads (each session's worker thread and its intra-op pool), in seconds (Linux; 0 elsewhere).",
    registers: [registry],
    collect() {
      this.set(onnxCpuSeconds());
    },
  });
  new Gauge({
    name: 'clip_onnxruntime_thread_cpu_seconds',
    help: 'CPU time of each ONNX Runtime thread, by thread id (as in /proc/<pid>/task/<tid>), in seconds (Linux).',
    labelNames: ['tid'] as const,
    registers: [registry],
    collect() {
      for (const { tid, seconds } of onnxThreadCpu()) this.set({ tid: String(tid) }, seconds);
    },
  });
  new Gauge({
    name: 'clip_onnxruntime_threads',
    help: "ONNX Runtime threads counted in clip_onnxruntime_cpu_seconds (each session's worker thread plus its intra-op pool threads).",
    registers: [registry],
    collect() {
      this.set(onnxThreadCount());
    },
  });
  if (sources.websocketConnections !== undefined) {
    const connections = sources.websocketConnections;
    new Gauge({
      name: 'clip_websocket_connections',
      help: 'Open GraphQL websocket connections on this process.',
      registers: [registry],
      collect() {
        this.set(connections());
      },
    });
  }
  const jobDuration = new Histogram({
    name: 'clip_job_duration_seconds',
    help: 'End-to-end job latency, from submission to a terminal status, by task; observed by the process that stored the terminal status.',
    labelNames: ['status', 'task'] as const,
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'clip_batch_size',
    help: 'Inputs per model run (images or prompts).',
    labelNames: ['model', 'kind'] as const,
    buckets: BATCH_SIZE_BUCKETS,
    registers: [registry],
  });
  const inferenceDuration = new Histogram({
    name: 'clip_inference_duration_seconds',
    help: 'Duration of one model run (a batch).',
    labelNames: ['model', 'kind'] as const,
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  const cacheLookups = new Counter({
    name: 'clip_cache_lookups_total',
    help: 'Embedding cache lookups by model, kind (text, image) and result (hit, miss).',
    labelNames: ['model', 'kind', 'result'] as const,
    registers: [registry],
  });
  const cacheCounts = new Map<string, { hits: number; misses: number }>();
  new Gauge({
    name: 'clip_cache_hit_ratio',
    help: 'Embedding cache hits / lookups since start, by kind (text, image).',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      for (const [kind, { hits, misses }] of cacheCounts)
        this.set({ kind }, hits + misses === 0 ? 0 : hits / (hits + misses));
    },
  });

  // What this process stored, not what its bus heard: on Redis every process hears every job's changes.
  const offJobUpdated = jobs.onStored((job) => {
    jobsTotal.inc({ status: job.status, task: job.task });
    if (job.status === 'complete' || job.status === 'failed' || job.status === 'cancelled') {
      jobDuration.observe(
        { status: job.status, task: job.task },
        (job.finishedAt.getTime() - job.createdAt.getTime()) / 1000,
      );
    }
  });
  const onBatch = (event: ClipEvents['batchCompleted'][0]): void => {
    batchSize.observe({ model: event.model, kind: event.kind }, event.size);
    inferenceDuration.observe({ model: event.model, kind: event.kind }, event.durationMs / 1000);
  };
  const onCacheLookup = (event: ClipEvents['cacheLookup'][0]): void => {
    cacheLookups.inc({ model: event.model, kind: event.kind, result: event.hit ? 'hit' : 'miss' });
    const counts = cacheCounts.get(event.kind) ?? { hits: 0, misses: 0 };
    if (event.hit) counts.hits += 1;
    else counts.misses += 1;
    cacheCounts.set(event.kind, counts);
  };
  clip?.events.on('batchCompleted', onBatch);
  clip?.events.on('cacheLookup', onCacheLookup);

  let disposed = false;
  return {
    registry,
    handler: (_req, res) => {
      registry.metrics().then(
        (text) => {
          res.setHeader('Content-Type', registry.contentType);
          res.setHeader('Cache-Control', 'no-store');
          res.send(text);
        },
        (error: unknown) => {
          sources.logger.error({ err: error }, 'collecting metrics failed');
          res.status(500).json({ error: 'collecting metrics failed' });
        },
      );
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      offJobUpdated();
      clip?.events.off('batchCompleted', onBatch);
      clip?.events.off('cacheLookup', onCacheLookup);
    },
  };
}
