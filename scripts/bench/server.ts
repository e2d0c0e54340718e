/**
 * The server as a user meets it: a child process started like `npm start` would, driven by clients that
 * send the `classify` (or `embedImages`) mutation over HTTP and wait for the terminal state, result included,
 * on a graphql-ws subscription.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { percentile } from './stats.js';

export interface BenchServer {
  url: string;
  wsUrl: string;
  pid: number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `node dist/src/main.js` with `env` on a free loopback port and waits until /ready says 200. */
export async function startServer(root: string, env: Record<string, string>, nodeArgs: string[] = [], timeoutMs = 180_000): Promise<BenchServer> {
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
    const ready = await fetch(`${url}/ready`).then((r) => r.status === 200, () => false);
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

/** A metric's value from the server's Prometheus text. */
export async function scrapeMetric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : Number.NaN;
}

/** What a load sends: classification jobs, or image-embedding jobs (the same images, no classes). */
export type LoadKind = 'classify' | 'embed-images';

const MUTATIONS: Record<LoadKind, { field: string; query: string }> = {
  classify: { field: 'classify', query: `mutation Classify($input: ClassifyInput!) { classify(input: $input) { id status } }` },
  'embed-images': { field: 'embedImages', query: `mutation EmbedImages($input: EmbedImagesInput!) { embedImages(input: $input) { id status } }` },
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

async function submit(url: string, kind: LoadKind, input: Record<string, unknown>): Promise<string> {
  const { field, query } = MUTATIONS[kind];
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables: { input } }),
  });
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
  makeInput: (i: number) => { images: string[]; classes: string[] },
  kind: LoadKind = 'classify',
): Promise<LoadResult> {
  const wsClients = Array.from({ length: clients }, () =>
    createClient({ url: server.wsUrl, webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 }),
  );
  const latencies: number[] = [];
  let next = 0;
  let images = 0;
  const started = performance.now();
  try {
    await Promise.all(
      wsClients.map(async (client) => {
        while (next < jobs) {
          const i = next++;
          const input = makeInput(i);
          const jobStarted = performance.now();
          const sent = input.images.length === 1 ? { image: input.images[0] } : { images: input.images };
          const id = await submit(server.url, kind, kind === 'classify' ? { ...sent, classes: input.classes } : sent);
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
    await Promise.all(wsClients.map((c) => c.dispose()));
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    jobs,
    images,
    seconds,
    imagesPerSecond: images / seconds,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    p99Ms: percentile(latencies, 99),
  };
}
