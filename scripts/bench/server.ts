/**
 * The server as a user meets it: a child process started like `npm start` would, driven by clients that
 * send the `classify` (or `embedImages`) mutation over HTTP (images as base64 JSON or as file uploads) and
 * wait for the terminal state, result included, on a graphql-ws subscription.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { freePort } from '../redisServer.js';
import { percentile } from './stats.js';

export interface BenchServer {
  url: string;
  wsUrl: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts `node dist/src/main.js` with `env` on a free loopback port and waits until /ready says 200. */
export async function startServer(
  root: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
  timeoutMs = 180_000,
): Promise<BenchServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, path.join(root, 'dist', 'src', 'main.js')], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server was not ready within ${timeoutMs} ms: ${stderr}`);
    }
    const ready = await fetch(`${url}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Peak resident memory of a process (VmHWM), in MiB. */
export function peakRssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** CPU time a process has used so far (user + system, all its threads), in ms, from /proc/<pid>/stat. */
export function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may contain spaces): utime is the 12th, stime the 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  // USER_HZ is 100 on every Linux architecture Node supports.
  return ticks * 10;
}

/** A metric's value from the server's Prometheus text. */
export async function scrapeMetric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : Number.NaN;
}

/** What a load sends: classification jobs, or image-embedding jobs (the same images, no classes). */
export type LoadKind = 'classify' | 'embed-images';

const MUTATIONS: Record<LoadKind, { field: string; query: string }> = {
  classify: {
    field: 'classify',
    query: `mutation Classify($input: ClassifyInput!) { classify(input: $input) { id status } }`,
  },
  'embed-images': {
    field: 'embedImages',
    query: `mutation EmbedImages($input: EmbedImagesInput!) { embedImages(input: $input) { id status } }`,
  },
};
// Each watcher takes its job's whole result, as a client would: probabilities, or every vector.
const WATCH = `subscription Watch($id: ID!) {
  jobUpdated(id: $id) { id status error { code message } result { images { probabilities } } embeddings { vectors } }
}`;

interface JobUpdate {
  id: string;
  status: string;
  error: { code: string; message: string } | null;
  result: { images: { probabilities: number[] }[] } | null;
  embeddings: { vectors: number[][] } | null;
}

/** How a job's images travel: base64 data URLs in the JSON body, or file uploads (GraphQL multipart request). */
export type ImageTransport = 'json' | 'multipart';

export interface JobInput {
  /** Data URLs (JSON) and their bytes (multipart). */
  images: { dataUrl: string; jpeg: Buffer }[];
  /** The classes of a classification job (ignored by embedding jobs). */
  classes: string[];
  /** A stored classifier instead of `classes`. */
  classifier?: string;
}

async function submit(url: string, kind: LoadKind, job: JobInput, transport: ImageTransport): Promise<string> {
  const { field, query } = MUTATIONS[kind];
  const withClasses = (input: Record<string, unknown>) =>
    kind !== 'classify'
      ? input
      : job.classifier === undefined
        ? { ...input, classes: job.classes }
        : { ...input, classifier: job.classifier };
  let response: Response;
  if (transport === 'json') {
    const input = withClasses(
      job.images.length === 1 ? { image: job.images[0]!.dataUrl } : { images: job.images.map((i) => i.dataUrl) },
    );
    response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables: { input } }),
    });
  } else {
    const form = new FormData();
    form.append(
      'operations',
      JSON.stringify({ query, variables: { input: withClasses({ files: job.images.map(() => null) }) } }),
    );
    form.append(
      'map',
      JSON.stringify(Object.fromEntries(job.images.map((_, i) => [String(i), [`variables.input.files.${i}`]]))),
    );
    job.images.forEach((image, i) =>
      form.append(String(i), new Blob([image.jpeg], { type: 'image/jpeg' }), `${i}.jpg`),
    );
    response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'apollo-require-preflight': 'true' },
      body: form,
    });
  }
  const body = (await response.json()) as { data?: Record<string, { id: string }>; errors?: { message: string }[] };
  const id = body.data?.[field]?.id;
  if (id === undefined) throw new Error(`${field} failed: ${JSON.stringify(body.errors)}`);
  return id;
}

function waitForTerminal(client: Client, id: string): Promise<JobUpdate> {
  return new Promise((resolve, reject) => {
    let last: JobUpdate | null = null;
    client.subscribe<{ jobUpdated: JobUpdate }>(
      { query: WATCH, variables: { id } },
      {
        next: (message) => {
          if (message.data) last = message.data.jobUpdated;
        },
        error: reject,
        complete: () => (last ? resolve(last) : reject(new Error(`subscription for ${id} completed with no update`))),
      },
    );
  });
}

export interface LoadResult {
  jobs: number;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Server CPU time (all threads) during the run divided by the jobs, in ms. */
  serverCpuMsPerJob: number;
}

/**
 * `clients` concurrent clients, each with its own websocket, send jobs back to back until `jobs` have
 * completed; `makeInput(i)` builds job i. Every job must complete with one probability row (or, for
 * `embed-images`, one vector) per image.
 */
export async function runLoad(
  server: BenchServer,
  clients: number,
  jobs: number,
  makeInput: (i: number) => JobInput,
  transport: ImageTransport = 'json',
  kind: LoadKind = 'classify',
): Promise<LoadResult> {
  const wsClients = Array.from({ length: clients }, () =>
    createClient({ url: server.wsUrl, webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 }),
  );
  const latencies: number[] = [];
  let next = 0;
  let images = 0;
  const started = performance.now();
  const cpuStarted = cpuMs(server.pid);
  try {
    await Promise.all(
      wsClients.map(async (client) => {
        while (next < jobs) {
          const i = next++;
          const input = makeInput(i);
          const jobStarted = performance.now();
          const id = await submit(server.url, kind, input, transport);
          const final = await waitForTerminal(client, id);
          const results = kind === 'classify' ? final.result?.images.length : final.embeddings?.vectors.length;
          if (final.status !== 'COMPLETE' || results !== input.images.length) {
            throw new Error(`job ${id} ended ${final.status}: ${JSON.stringify(final.error)}`);
          }
          latencies.push(performance.now() - jobStarted);
          images += input.images.length;
        }
      }),
    );
  } finally {
    for (const client of wsClients) await client.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  const serverCpuMsPerJob = (cpuMs(server.pid) - cpuStarted) / jobs;
  return {
    serverCpuMsPerJob,
    jobs,
    images,
    seconds,
    imagesPerSecond: images / seconds,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    p99Ms: percentile(latencies, 99),
  };
}
