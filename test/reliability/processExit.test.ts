/**
 * The process always ends (issue 13): after SIGTERM the server process is gone within DRAIN_TIMEOUT_MS +
 * SHUTDOWN_GRACE_MS, and after a second SIGTERM within SHUTDOWN_GRACE_MS (each plus, at most, SHUTDOWN_GRACE_MS
 * for ONNX runs in flight when the deadline passes, and a slack for the OS), whatever its clients did: websocket
 * clients connected and silent (some not even answering the close handshake), a client that half-sent a
 * request, subscribers SIGKILLed mid-job, stdout and stderr piped into a process that has exited, jobs
 * running on the ViT-B/32-shaped model. Every case runs with one signal and with a second signal during the
 * drain, for every server role in ROLES (the scale-out roles, api and worker, add a row each).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { MAIN_JS, REPO_ROOT, buildServer, processEnv, startProcessServer, type ProcessServer } from '../utils/processServer.js';
import { ensureVitModel } from '../utils/vitModel.js';

/** A server role as a command: node's arguments and its environment. */
interface RoleUnderTest {
  role: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
}

/**
 * The server commands these guarantees hold for. The scale-out roles (a later issue) add
 * `{ role: 'api', … }` and `{ role: 'worker', … }` here; every case below then runs against them too.
 */
export const ROLES: readonly RoleUnderTest[] = [{ role: 'all', args: [MAIN_JS], env: {} }];

const DRAIN_TIMEOUT_MS = 2_000;
const SHUTDOWN_GRACE_MS = 3_000;
/**
 * What the OS and Node need to tear a process down once it decided to exit (log flush, worker threads,
 * sessions), on a loaded 2-core machine. Not part of the server's promise; a hang is minutes, not seconds.
 */
const EXIT_SLACK_MS = 5_000;
/** Pause between the first and the second signal: long enough for the first to be handled on its own. */
const SECOND_SIGNAL_AFTER_MS = 300;

const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id status } }';
const JOB_STATUS = 'query($id: ID!) { job(id: $id) { status } }';
const SUBSCRIBER_SCRIPT = path.join(REPO_ROOT, 'test', 'utils', 'subscriberProcess.mjs');
const ORPHANING_PARENT_SCRIPT = path.join(REPO_ROOT, 'test', 'utils', 'orphaningParent.mjs');

const deadlineEnv = { DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS), SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS) };
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function pngDataUrl(seed: number, size: number): Promise<string> {
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < pixels.length; i += 1) pixels[i] = (i * 11 + seed * 97 + ((i * seed) % 19) * 7) % 256;
  const png = await sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

async function submit(server: ProcessServer, images: string[]): Promise<string> {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: CLASSIFY, variables: { input: { images, classes: ['a cat', 'a dog'] } } }),
  });
  const body = (await response.json()) as { data?: { classify?: { id?: string } } };
  const id = body.data?.classify?.id;
  if (id === undefined) throw new Error(`classify refused: ${JSON.stringify(body).slice(0, 300)}`);
  return id;
}

async function statusOf(server: ProcessServer, id: string): Promise<string | undefined> {
  const response = await fetch(server.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: JOB_STATUS, variables: { id } }) });
  return ((await response.json()) as { data?: { job?: { status?: string } } }).data?.job?.status;
}

async function until(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A websocket that completed the upgrade and then neither sends nor reads: not even the close handshake. */
async function unresponsiveWebsocket(server: ProcessServer): Promise<net.Socket> {
  const { port } = new URL(server.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  cleanups.push(() => socket.destroy());
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => {
      socket.write(
        'GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n',
      );
    });
    socket.once('data', (chunk: Buffer) => {
      if (!chunk.toString('latin1').startsWith('HTTP/1.1 101')) reject(new Error(`upgrade refused: ${chunk.toString('latin1').slice(0, 80)}`));
      else resolve();
      // From now on nothing is read: the server's close frame sits unanswered.
      socket.pause();
    });
    socket.once('error', reject);
  });
  return socket;
}

/** A graphql-ws client that connected (acknowledged) and then stays silent. */
async function silentGraphqlWsClient(server: ProcessServer): Promise<Client> {
  let acknowledged: () => void = () => {};
  const connected = new Promise<void>((resolve) => {
    acknowledged = resolve;
  });
  const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: () => {}, on: { connected: () => acknowledged() } });
  cleanups.push(() => void client.dispose());
  await connected;
  return client;
}

/** Opens a TCP connection and sends part of a request: `headers` stops mid-header, `body` mid-body. */
async function halfSentRequest(server: ProcessServer, part: 'headers' | 'body'): Promise<net.Socket> {
  const { port } = new URL(server.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  cleanups.push(() => socket.destroy());
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const body = JSON.stringify({ query: '{ models { name } }' });
  socket.write(
    part === 'headers'
      ? 'POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/js'
      : `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 1000}\r\n\r\n${body.slice(0, 10)}`,
  );
  return socket;
}

/** Resolves with the exit code and how long after `since` the process was gone; SIGKILLs it and throws past `withinMs`. */
async function gone(server: ProcessServer, since: number, withinMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; afterMs: number }> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    server.exited.then((code) => ({ code })),
    new Promise<'alive'>((resolve) => {
      timer = setTimeout(() => resolve('alive'), Math.max(0, since + withinMs - performance.now()));
    }),
  ]);
  clearTimeout(timer);
  if (outcome === 'alive') {
    server.child.kill('SIGKILL');
    throw new Error(`the server was still alive ${withinMs} ms after the signal:\n${server.output().slice(-2000)}`);
  }
  return { code: outcome.code, signal: server.child.signalCode, afterMs: Math.round(performance.now() - since) };
}

type Signals = 1 | 2;

/**
 * Sends one or two SIGTERMs; resolves with when the process's deadline started and how long it has: the
 * deadline, plus at most SHUTDOWN_GRACE_MS for ONNX runs in flight when it passes, plus EXIT_SLACK_MS.
 */
async function signal(server: ProcessServer, signals: Signals, drainMs: number, graceMs: number): Promise<{ since: number; withinMs: number }> {
  const first = performance.now();
  server.child.kill('SIGTERM');
  if (signals === 1) return { since: first, withinMs: drainMs + 2 * graceMs + EXIT_SLACK_MS };
  await new Promise((resolve) => setTimeout(resolve, SECOND_SIGNAL_AFTER_MS));
  const second = performance.now();
  server.child.kill('SIGTERM');
  return { since: second, withinMs: 2 * graceMs + EXIT_SLACK_MS };
}

function deadlineLine(server: ProcessServer): { activeResources?: string[] } | undefined {
  return server.logs.find((line) => line.msg?.startsWith('shutdown deadline passed') === true) as { activeResources?: string[] } | undefined;
}

/** What every ending must look like: gone in time, a clean code (never a crash), no stack traces. */
function expectCleanEnding(server: ProcessServer, ending: { code: number | null; signal: NodeJS.Signals | null }, signals: Signals): void {
  expect(ending.signal).toBeNull();
  if (signals === 2) expect(ending.code).toBe(1);
  else expect([0, 1]).toContain(ending.code);
  // exit 1 after a single signal only ever comes from the deadline, which says why.
  if (signals === 1 && ending.code === 1) expect(deadlineLine(server)?.activeResources?.length ?? 0).toBeGreaterThan(0);
  expect(server.output()).not.toMatch(/Napi::Error|FATAL ERROR|Uncaught|unhandled/i);
}

interface Case {
  name: string;
  /** The case runs jobs of its own; otherwise the two-signal run adds one so the second signal lands mid-drain. */
  busy?: boolean;
  env?: Record<string, string>;
  /** Puts the running server into the situation under test. */
  arrange: (server: ProcessServer) => Promise<void>;
  /** The exit code after one signal: 0 when the stop can finish in time, 1 when the deadline must cut it. */
  oneSignalCode: 0 | 1;
  readyTimeoutMs?: number;
}

const CASES: Case[] = [
  {
    name: 'websocket clients connected and silent (graphql-ws clients that answer the close handshake)',
    oneSignalCode: 0,
    arrange: async (server) => {
      await Promise.all(Array.from({ length: 4 }, () => silentGraphqlWsClient(server)));
    },
  },
  {
    name: 'websocket clients connected and silent, some not even answering the close handshake',
    oneSignalCode: 0,
    arrange: async (server) => {
      await Promise.all([...Array.from({ length: 2 }, () => silentGraphqlWsClient(server)), ...Array.from({ length: 3 }, () => unresponsiveWebsocket(server))]);
    },
  },
  {
    name: 'a client that half-sent a request (headers cut off; body cut off)',
    // Apollo gives requests in flight 10 s before cutting them: more than this test's deadline, which then ends them.
    oneSignalCode: 1,
    arrange: async (server) => {
      await halfSentRequest(server, 'headers');
      await halfSentRequest(server, 'body');
      // Let the server read what was sent.
      await new Promise((resolve) => setTimeout(resolve, 200));
    },
  },
  {
    name: 'subscribers SIGKILLed while their jobs run',
    // Its jobs may be done within the 300 ms before a second signal: the two-signal run adds a long one behind them.
    env: { MAX_CONCURRENT_JOBS: '1' },
    oneSignalCode: 0,
    arrange: async (server) => {
      const child = spawn(process.execPath, [SUBSCRIBER_SCRIPT, JSON.stringify({ url: server.url, jobs: 3, imagesPerJob: 16, imageSize: 192 })], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      cleanups.push(() => child.kill('SIGKILL'));
      const line = await new Promise<string>((resolve) => child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString())));
      const { states } = JSON.parse(line) as { states: string[] };
      expect(states).toContain('RUNNING');
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  },
  {
    name: 'jobs running on the ViT-B/32-shaped model',
    // Small batches: one run in flight is what a second signal waits for. A longer grace: on a loaded 2-core
    // machine the runs in flight after the drain can take seconds, and this case is about a clean exit 0.
    env: { MAX_BATCH_SIZE: '2', MAX_CONCURRENT_JOBS: '2', SHUTDOWN_GRACE_MS: '8000' },
    busy: true,
    oneSignalCode: 0,
    readyTimeoutMs: 180_000,
    arrange: async (server) => {
      const ids: string[] = [];
      for (let job = 0; job < 3; job += 1) ids.push(await submit(server, await Promise.all(Array.from({ length: 6 }, (_, i) => pngDataUrl(job * 10 + i, 224)))));
      await until(async () => (await statusOf(server, ids[0]!)) === 'RUNNING', 30_000, 'a job to run');
    },
  },
];

describe.each(ROLES)('the $role server process ends after SIGTERM', (role) => {
  let vitModelDir = '';
  beforeAll(async () => {
    await buildServer();
    vitModelDir = await ensureVitModel();
  }, 600_000);

  describe.each(CASES)('with $name', (testCase) => {
    it.each([1, 2] as const)('should be gone within the deadline after %i signal(s)', async (signals) => {
      const vit: Record<string, string> = testCase.name.includes('ViT') ? { CLIP_MODEL: vitModelDir } : {};
      const server = await startProcessServer({ ...role.env, ...deadlineEnv, ...vit, ...testCase.env }, role.args, testCase.readyTimeoutMs);
      await testCase.arrange(server);
      if (signals === 2 && testCase.busy !== true) {
        // Two long jobs, so a second signal 300 ms after the first interrupts a drain under way. Waiting for the
        // first to start (or even finish, on a fast machine) leaves the second running or queued.
        const ids: string[] = [];
        for (let job = 0; job < 2; job += 1) ids.push(await submit(server, await Promise.all(Array.from({ length: 48 }, (_, i) => pngDataUrl(500 + 100 * job + i, 160)))));
        await until(async () => ['RUNNING', 'COMPLETE'].includes((await statusOf(server, ids[0]!)) ?? ''), 60_000, 'the first long job to run');
      }
      const env = { ...deadlineEnv, ...testCase.env };
      const { since, withinMs } = await signal(server, signals, Number(env.DRAIN_TIMEOUT_MS), Number(env.SHUTDOWN_GRACE_MS));
      const ending = await gone(server, since, withinMs);
      console.log(`${role.role} / ${testCase.name} / ${signals} signal(s): exit ${ending.code ?? ending.signal} after ${ending.afterMs} ms (limit ${withinMs - EXIT_SLACK_MS} + ${EXIT_SLACK_MS} ms slack)`);
      expectCleanEnding(server, ending, signals);
      if (signals === 1) expect(ending.code).toBe(testCase.oneSignalCode);
      if (signals === 2) expect(server.logs.some((line) => line.msg?.startsWith('second signal while stopping') === true)).toBe(true);
      if (signals === 1 && testCase.oneSignalCode === 1) expect(deadlineLine(server)?.activeResources).toContain('TCPSocketWrap');
    }, 240_000);
  });

  describe('with stdout and stderr piped into a process that has exited', () => {
    function alive(pid: number): boolean {
      try {
        // A zombie is gone for our purpose: it has exited and only waits for its (new) parent to reap it.
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    }

    it.each([
      [1, 'json'],
      [2, 'json'],
      [1, 'pretty'],
      [2, 'pretty'],
    ] as const)('should be gone within the deadline after %i signal(s) sent by the parent on its way out (%s logs)', async (signals, logFormat) => {
      const options = {
        command: [process.execPath, ...role.args],
        cwd: REPO_ROOT,
        env: processEnv({ ...role.env, ...deadlineEnv, MAX_CONCURRENT_JOBS: '2', LOG_FORMAT: logFormat }),
        signals,
        // The parent signals and exits at once; a short pause lets the second signal arrive on its own.
        signalGapMs: signals === 2 ? 30 : 0,
        unknownSubscriptions: 10,
        jobs: 6,
        imagesPerJob: 16,
        imageSize: 256,
        readyTimeoutMs: 60_000,
      };
      const parent = spawn(process.execPath, [ORPHANING_PARENT_SCRIPT, JSON.stringify(options)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      parent.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      await new Promise((resolve) => parent.once('close', resolve));
      const since = performance.now();
      const report = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { serverPid?: number; states?: string[]; error?: string };
      expect(report.error).toBeUndefined();
      const pid = report.serverPid!;
      cleanups.push(() => {
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      });
      expect(report.states).toContain('RUNNING');
      const withinMs = DRAIN_TIMEOUT_MS + 2 * SHUTDOWN_GRACE_MS + EXIT_SLACK_MS;
      await until(() => !alive(pid), withinMs, `server ${pid} to exit`).catch((error: unknown) => {
        process.kill(pid, 'SIGKILL');
        throw error;
      });
      console.log(`${role.role} / dead pipes / ${logFormat} / ${signals} signal(s): gone ${Math.round(performance.now() - since)} ms after the parent exited`);
    }, 120_000);
  });
});
