/**
 * Helpers shared by the reliability tests (issue 5): an in-process server whose error logs are recorded,
 * counters of unhandled rejections and uncaught exceptions, memory sampling, Prometheus scraping and
 * job-shape checks.
 */
import { OPEN_CALLER } from '../../../src/jobs/caller.js';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { afterAll, expect } from 'vitest';
import type { Config } from '../../../src/config.js';
import { createServer, type Server } from '../../../src/roles/index.js';
import type { Job, JobResult } from '../../../src/jobs/types.js';
import { testConfig } from '../../utils/testServer.js';

export interface LogEntry {
  level: number;
  msg?: string;
  err?: { message?: string; stack?: string };
  [key: string]: unknown;
}

export interface RecordedServer {
  server: Server;
  config: Config;
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  /** Log lines at warn (40) or above, in order. */
  logs: LogEntry[];
  /** Lines at error (50) or above. */
  errorLogs(): LogEntry[];
  stop(): Promise<void>;
}

const running = new Set<RecordedServer>();
afterAll(async () => {
  await Promise.all([...running].map((server) => server.stop()));
});

/** Starts the real server on the tiny model (testConfig + overrides) with its warn+ logs recorded. */
export async function startRecordedServer(overrides: Partial<Config> = {}): Promise<RecordedServer> {
  const config = testConfig(overrides);
  const logs: LogEntry[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogEntry) });
  const server = createServer(config, { logger });
  const handle: RecordedServer = {
    server,
    config,
    url: '',
    graphqlUrl: '',
    wsUrl: '',
    logs,
    errorLogs: () => logs.filter((entry) => entry.level >= 50),
    stop: async () => {
      running.delete(handle);
      await server.stop();
    },
  };
  running.add(handle);
  const { url, port } = await server.start();
  Object.assign(handle, { url, graphqlUrl: `${url}/graphql`, wsUrl: `ws://127.0.0.1:${port}/graphql` });
  return handle;
}

/** Counts unhandled rejections and uncaught exceptions in this process while installed. */
export function countCrashes(): { rejections: unknown[]; exceptions: unknown[]; dispose(): void } {
  const rejections: unknown[] = [];
  const exceptions: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  const onException = (error: unknown): void => void exceptions.push(error);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return {
    rejections,
    exceptions,
    dispose: () => {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    },
  };
}

let gcFunction: (() => void) | null | undefined;

/** A full garbage collection, when it can be had (`--expose-gc`, or enabled at run time); else false. */
export function forceGc(): boolean {
  if (gcFunction === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (typeof exposed === 'function') gcFunction = exposed;
    else {
      try {
        v8.setFlagsFromString('--expose-gc');
        gcFunction = runInNewContext('gc') as () => void;
      } catch {
        gcFunction = null;
      }
    }
  }
  if (gcFunction === null) return false;
  gcFunction();
  return true;
}

export interface MemorySample {
  atMs: number;
  heapUsed: number;
  rss: number;
}

/** Samples heapUsed and RSS every `intervalMs` until stopped. */
export function sampleMemory(intervalMs = 50): { samples: MemorySample[]; stop(): MemorySample[] } {
  const started = performance.now();
  const samples: MemorySample[] = [];
  const take = (): void => {
    const { heapUsed, rss } = process.memoryUsage();
    samples.push({ atMs: performance.now() - started, heapUsed, rss });
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    samples,
    stop: () => {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

export const MiB = 1024 * 1024;

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

export { metricValue } from '../../utils/metrics.js';

/** Resolves with the job once it is COMPLETE, FAILED or CANCELLED (read in-process), or throws after `timeoutMs`. */
export async function settledJob(server: Server, id: string, timeoutMs = 30_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await server.jobs.get(OPEN_CALLER, id);
    if (job !== undefined && (job.status === 'complete' || job.status === 'failed' || job.status === 'cancelled'))
      return job;
    if (Date.now() > deadline)
      throw new Error(`job ${id} not finished after ${timeoutMs} ms (${job?.status ?? 'gone'})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** One probability row per image, one probability per class, each row a distribution. */
/** A classification result's probability rows, one per image; throws for another task's result. */
export function probabilityRows(result: JobResult): number[][] {
  if (result.task !== 'classification') throw new Error(`expected a classification result, got ${result.task}`);
  return result.images.map((image) => image.probabilities);
}

export function expectClassification(rows: readonly (readonly number[])[], images: number, classes: number): void {
  expect(rows).toHaveLength(images);
  for (const row of rows) {
    expect(row).toHaveLength(classes);
    for (const p of row) expect(Number.isFinite(p) && p >= 0 && p <= 1).toBe(true);
    expect(row.reduce((sum, p) => sum + p, 0)).toBeCloseTo(1, 4);
  }
}

/**
 * What must never reach a client: server paths, dependency paths, stack frames, source locations.
 * (The fuzz inputs never contain these strings, so an echo of user input cannot trip it.)
 */
export const LEAK_PATTERNS: readonly RegExp[] = [
  /\/work\//,
  /\/home\//,
  /\/tmp\//,
  /node_modules/,
  /\n\s+at /,
  /\bat \S+ \(\S+:\d+:\d+\)/,
  /\.ts:\d+/,
  /\.js:\d+/,
  /stacktrace/i,
];

export function leaksIn(text: string): string[] {
  return LEAK_PATTERNS.filter((pattern) => pattern.test(text)).map(String);
}
