// @ts-check
/**
 * The parent process of issue 13, as a script (plain JavaScript so it runs without a build step).
 *
 * It spawns the server in a process group of its own with stdout and stderr piped to itself, waits until
 * it is ready, opens one graphql-ws connection with subscriptions (some to unknown job ids, some to jobs
 * it submits and that are in flight), then sends SIGTERM to the server's process group and exits at once;
 * with `signals: 2` its exit handler sends a second SIGTERM. From then on the server writes to pipes
 * whose reader is gone. The script prints one JSON line to its own stdout before signalling:
 * `{ "serverPid": n, "url": "http://…", "inFlight": ["RUNNING", …] }`, then exits 0 (or 1 with an error line).
 *
 * Usage: node orphaningParent.mjs '<json options>' with options
 *   { command: string[], env: Record<string, string>, cwd: string,  signals: 1 | 2, signalGapMs?: number,
 *     unknownSubscriptions: number, jobs: number, imagesPerJob: number, imageSize: number, readyTimeoutMs: number,
 *     apiUrl?: string }
 * `apiUrl` is where jobs are submitted and subscribed to when the server is not an API itself (ROLE=worker: its
 * jobs come through an API of the same Redis); by default, the server's own URL.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createClient } from 'graphql-ws';
import sharp from 'sharp';
import WebSocket from 'ws';

const options = JSON.parse(process.argv[2] ?? '{}');
const JOB_UPDATED = 'subscription($id: ID!) { jobUpdated(id: $id) { id status } }';
const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id status } }';

/** @param {string} message */
function fail(message) {
  process.stdout.write(`${JSON.stringify({ error: message })}\n`);
  process.exit(1);
}

/** @param {number} seed @param {number} size */
async function pngDataUrl(seed, size) {
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < pixels.length; i += 1) pixels[i] = (i * 13 + seed * 101 + ((i * seed) % 17) * 5) % 256;
  const png = await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

const [command, ...args] = options.command;
const server = spawn(command, args, {
  cwd: options.cwd,
  env: options.env,
  stdio: ['ignore', 'pipe', 'pipe'],
  detached: true,
});
server.stderr.resume();
const url = await new Promise((resolve) => {
  const timer = setTimeout(
    () => fail(`the server was not ready after ${options.readyTimeoutMs} ms`),
    options.readyTimeoutMs,
  );
  server.once('exit', (code) => fail(`the server exited with ${code} before it was ready`));
  createInterface({ input: server.stdout }).on('line', (line) => {
    // Reads every line (a reader that stops reading would fill the pipe instead of closing it). The ready
    // line reads the same in JSON and in pretty logs; a worker's says so and names no /graphql.
    const ready = /clip-server ready (?:\(worker\) )?at (http:\/\/[^\s/"]+)/.exec(line);
    if (ready !== null) {
      clearTimeout(timer);
      resolve(ready[1]);
    }
  });
});

const apiUrl = options.apiUrl ?? url;
const client = createClient({
  url: `${apiUrl.replace(/^http/, 'ws')}/graphql`,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  lazy: false,
  onNonLazyError: () => {},
});
/** @type {Promise<string>[]} */
const firstStates = [];
/** @param {string} id */
function subscribe(id) {
  firstStates.push(
    new Promise((resolve) => {
      client.subscribe(
        { query: JOB_UPDATED, variables: { id } },
        {
          next: (message) => resolve(String(/** @type {any} */ (message.data)?.jobUpdated?.status ?? 'NONE')),
          error: () => resolve('ERROR'),
          complete: () => resolve('COMPLETE'),
        },
      );
    }),
  );
}
for (let i = 0; i < options.unknownSubscriptions; i += 1)
  subscribe(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
for (let job = 0; job < options.jobs; job += 1) {
  const images = await Promise.all(
    Array.from({ length: options.imagesPerJob }, (_, i) => pngDataUrl(job * 1000 + i, options.imageSize)),
  );
  const response = await fetch(`${apiUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: CLASSIFY, variables: { input: { images, classes: ['a cat', 'a dog'] } } }),
  });
  const body = /** @type {any} */ (await response.json());
  const id = body?.data?.classify?.id;
  if (typeof id !== 'string') fail(`classify refused: ${JSON.stringify(body).slice(0, 300)}`);
  subscribe(id);
}
const states = await Promise.all(firstStates);

const group = -(/** @type {number} */ (server.pid));
process.stdout.write(`${JSON.stringify({ serverPid: server.pid, url, states })}\n`);
if (options.signals >= 2) process.on('exit', () => process.kill(group, 'SIGTERM'));
process.kill(group, 'SIGTERM');
// A pause before exiting (default none) lets the first signal be handled on its own: two signals sent back to
// back may reach the server as one, since the kernel keeps at most one pending SIGTERM per process.
if (options.signalGapMs > 0) await new Promise((resolve) => setTimeout(resolve, options.signalGapMs));
process.exit(0);
