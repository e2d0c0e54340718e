/**
 * The process always ends; the suites that processExit.*.test.ts run, one file per role so they run in parallel.
 * After SIGTERM the server process is gone within DRAIN_TIMEOUT_MS + SHUTDOWN_GRACE_MS, and after a second SIGTERM
 * within SHUTDOWN_GRACE_MS (each plus, at most, SHUTDOWN_GRACE_MS for ONNX runs in flight when the deadline passes,
 * and a slack for the OS), whatever its clients did: websocket clients connected and silent (some not even answering
 * the close handshake), a client that half-sent a request, subscribers SIGKILLed mid-job, stdout and stderr piped
 * into a process that has exited, jobs running on a slow-by-design model (test/utils/slowModel.ts). Every case runs
 * with one signal and with a second signal during the drain, for every server role in ROLES: all (one process, in
 * memory), and the scale-out roles api and worker, each on one redis-server per test file and each beside a partner
 * process (the api's worker, which runs its jobs; the worker's API, through which its jobs arrive) that is never
 * signalled.
 *
 * A case means what the role really has (each case's `byRole` says it): a worker serves no websockets and no
 * GraphQL, only /health, /ready and /metrics, so its silent clients are idle keep-alive HTTP clients and
 * connections that never send or read, and its half-sent requests go to /metrics; an api loads no model, so
 * "jobs running on the slow model" means jobs its worker runs while the api holds their subscriptions.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  MAIN_JS,
  REPO_ROOT,
  buildServer,
  processEnv,
  startProcessServer,
  type ProcessServer,
} from '../../utils/processServer.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../../utils/redisServer.js';
import { ensureSlowModel } from '../../utils/slowModel.js';

export type RoleName = 'all' | 'api' | 'worker';

/** A server role as a command: node's arguments and its environment. */
export interface RoleUnderTest {
  role: RoleName;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  /**
   * The process started beside it, on the same Redis and key prefix, and never signalled: the api's worker runs
   * its jobs; the worker's API takes the jobs it runs. Roles with a partner need redis-server.
   */
  partner?: Readonly<Record<string, string>>;
  /** On this file's Redis (implied by a partner). */
  redis?: boolean;
}

/** The server commands these guarantees hold for; every case below runs against each. */
export const ROLES: readonly RoleUnderTest[] = [
  { role: 'all', args: [MAIN_JS], env: {} },
  { role: 'api', args: [MAIN_JS], env: { ROLE: 'api' }, partner: { ROLE: 'worker' } },
  { role: 'worker', args: [MAIN_JS], env: { ROLE: 'worker' }, partner: { ROLE: 'api' } },
];

/** The row of ROLES for `name`. */
export function roleNamed(name: RoleName): RoleUnderTest {
  const role = ROLES.find((candidate) => candidate.role === name);
  if (role === undefined) throw new Error(`no role ${name} in ROLES`);
  return role;
}

const REDIS = redisServerPath();
if (REDIS === null)
  console.log(
    'skipping the api and worker rows of the process-exit test: redis-server is not installed (apt-get install redis-server)',
  );

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
const JOB_UPDATED = 'subscription($id: ID!) { jobUpdated(id: $id) { status } }';
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
  const png = await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
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
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: JOB_STATUS, variables: { id } }),
  });
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
      if (!chunk.toString('latin1').startsWith('HTTP/1.1 101'))
        reject(new Error(`upgrade refused: ${chunk.toString('latin1').slice(0, 80)}`));
      else resolve();
      // From now on nothing is read: the server's close frame sits unanswered.
      socket.pause();
    });
    socket.once('error', reject);
  });
  return socket;
}

/**
 * A graphql-ws client that connected (acknowledged) and then stays silent; with `jobIds`, subscribed to each
 * job's updates (their states land in `states`), so the server holds a watcher per job.
 */
async function silentGraphqlWsClient(
  server: ProcessServer,
  jobIds: readonly string[] = [],
  states: string[] = [],
): Promise<Client> {
  let acknowledged: () => void = () => {};
  const connected = new Promise<void>((resolve) => {
    acknowledged = resolve;
  });
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    onNonLazyError: () => {},
    on: { connected: () => acknowledged() },
  });
  cleanups.push(() => void client.dispose());
  await connected;
  for (const id of jobIds) {
    client.subscribe<{ jobUpdated: { status: string } }>(
      { query: JOB_UPDATED, variables: { id } },
      {
        next: (message) => states.push(message.data?.jobUpdated.status ?? '?'),
        error: () => undefined,
        complete: () => undefined,
      },
    );
  }
  return client;
}

/** A TCP connection to the server's port, with its cleanup registered. */
async function connection(server: ProcessServer): Promise<net.Socket> {
  const { port } = new URL(server.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  cleanups.push(() => socket.destroy());
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return socket;
}

/**
 * Opens a TCP connection and sends part of a request to `route`: `headers` stops mid-header, `body` mid-body.
 * The GraphQL body is what an API reads; a worker refuses it (404) but only once the body would have arrived.
 */
async function halfSentRequest(
  server: ProcessServer,
  part: 'headers' | 'body',
  route = '/graphql',
): Promise<net.Socket> {
  const socket = await connection(server);
  const body = JSON.stringify({ query: '{ models { name } }' });
  socket.write(
    part === 'headers'
      ? `POST ${route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/js`
      : `POST ${route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 1000}\r\n\r\n${body.slice(0, 10)}`,
  );
  return socket;
}

/**
 * An HTTP/1.1 client that asked `route` and then keeps its keep-alive connection open, silent. With
 * `read: false` it never reads the answer either (its socket paused from the start).
 */
async function idleKeepAliveClient(server: ProcessServer, route: string, read = true): Promise<net.Socket> {
  const socket = await connection(server);
  if (!read) socket.pause();
  const answered = read ? new Promise<Buffer>((resolve) => socket.once('data', resolve)) : null;
  socket.write(`GET ${route} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
  if (answered !== null) expect((await answered).toString('latin1')).toMatch(/^HTTP\/1\.1 200/);
  return socket;
}

/** Submits `count` jobs of `images` distinct PNGs of `size` px through `front`, one after the other. */
async function submitJobs(
  front: ProcessServer,
  count: number,
  images: number,
  size: number,
  seed: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (let job = 0; job < count; job += 1)
    ids.push(
      await submit(
        front,
        await Promise.all(Array.from({ length: images }, (_, i) => pngDataUrl(seed + 100 * job + i, size))),
      ),
    );
  return ids;
}

/** Resolves with the exit code and how long after `since` the process was gone; SIGKILLs it and throws past `withinMs`. */
async function gone(
  server: ProcessServer,
  since: number,
  withinMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; afterMs: number }> {
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
async function signal(
  server: ProcessServer,
  signals: Signals,
  drainMs: number,
  graceMs: number,
): Promise<{ since: number; withinMs: number; delivered: Signals }> {
  const first = performance.now();
  server.child.kill('SIGTERM');
  if (signals === 1) return { since: first, withinMs: drainMs + 2 * graceMs + EXIT_SLACK_MS, delivered: 1 };
  await new Promise((resolve) => setTimeout(resolve, SECOND_SIGNAL_AFTER_MS));
  const second = performance.now();
  // A process that already finished its clean exit never gets the second signal: its 0 is then the right code.
  const delivered: Signals =
    server.child.exitCode === null && server.child.signalCode === null && server.child.kill('SIGTERM') ? 2 : 1;
  return { since: second, withinMs: 2 * graceMs + EXIT_SLACK_MS, delivered };
}

function deadlineLine(server: ProcessServer): { activeResources?: string[] } | undefined {
  return server.logs.find((line) => line.msg?.startsWith('shutdown deadline passed') === true) as
    { activeResources?: string[] } | undefined;
}

/**
 * Whether the stop had finished ('stopped', or 'worker stopped', logged) before the second signal was handled: the process was then
 * already in its clean exit (flushing its logs), which keeps its code 0; the signal can only cut short a stop in progress.
 */
function stoppedBeforeSecondSignal(server: ProcessServer): boolean {
  const stopped = server.logs.findIndex((line) => line.msg === 'stopped' || line.msg === 'worker stopped');
  const second = server.logs.findIndex((line) => line.msg?.startsWith('second signal while stopping') === true);
  return stopped >= 0 && (second < 0 || stopped < second);
}

/** What every ending must look like: gone in time, a clean code (never a crash), no stack traces. */
function expectCleanEnding(
  server: ProcessServer,
  ending: { code: number | null; signal: NodeJS.Signals | null },
  signals: Signals,
): void {
  expect(ending.signal).toBeNull();
  if (signals === 2) expect(ending.code).toBe(stoppedBeforeSecondSignal(server) ? 0 : 1);
  else expect([0, 1]).toContain(ending.code);
  // exit 1 after a single signal only ever comes from the deadline, which says why.
  if (signals === 1 && ending.code === 1) expect(deadlineLine(server)?.activeResources?.length ?? 0).toBeGreaterThan(0);
  expect(server.output()).not.toMatch(/Napi::Error|FATAL ERROR|Uncaught|unhandled/i);
}

/** The processes of one test. */
interface Run {
  /** The process under test: the only one signalled. */
  server: ProcessServer;
  /** Where jobs are submitted and followed: the server itself (all, api), or the worker's partner API. */
  front: ProcessServer;
  /** The api's worker or the worker's API; none for all. */
  partner: ProcessServer | undefined;
}

/** One case as it applies to one role. */
interface Situation {
  /** What the process under test goes through (the test's name). */
  name: string;
  /** It runs jobs of its own; otherwise the two-signal run adds work (`keepBusy`) so the second signal lands mid-stop. */
  busy?: boolean;
  /** Settings of the process under test and of its partner. */
  env?: Record<string, string>;
  /** On the slow model (both processes; an api only resolves its name), instead of the tiny one. */
  slow?: boolean;
  /** Puts the running processes into the situation under test. */
  arrange: (run: Run) => Promise<void>;
  /** The exit code after one signal: 0 when the stop can finish in time, 1 when the deadline must cut it. */
  oneSignalCode: 0 | 1;
  readyTimeoutMs?: number;
}

/** One of the cases, for every role: what it means there. */
type Case = Record<RoleName, Situation>;

const silentWebsockets: Situation = {
  name: 'websocket clients connected and silent (graphql-ws clients that answer the close handshake)',
  oneSignalCode: 0,
  arrange: async ({ server }) => {
    await Promise.all(Array.from({ length: 4 }, () => silentGraphqlWsClient(server)));
  },
};

const unresponsiveWebsockets: Situation = {
  name: 'websocket clients connected and silent, some not even answering the close handshake',
  oneSignalCode: 0,
  arrange: async ({ server }) => {
    await Promise.all([
      ...Array.from({ length: 2 }, () => silentGraphqlWsClient(server)),
      ...Array.from({ length: 3 }, () => unresponsiveWebsocket(server)),
    ]);
  },
};

const halfSentGraphqlRequest: Situation = {
  name: 'a client that half-sent a request (headers cut off; body cut off)',
  // Apollo gives requests in flight 10 s before cutting them: more than this test's deadline, which then ends them.
  oneSignalCode: 1,
  arrange: async ({ server }) => {
    await halfSentRequest(server, 'headers');
    await halfSentRequest(server, 'body');
    // Let the server read what was sent.
    await new Promise((resolve) => setTimeout(resolve, 200));
  },
};

/** Subscribers in a process of their own, on `front`, SIGKILLed once their jobs run (wherever they run). */
function killedSubscribers(name: string): Situation {
  return {
    name,
    // Its jobs may be done within the 300 ms before a second signal: the two-signal run adds a long one behind them.
    env: { MAX_CONCURRENT_JOBS: '1' },
    oneSignalCode: 0,
    arrange: async ({ front }) => {
      const child = spawn(
        process.execPath,
        [SUBSCRIBER_SCRIPT, JSON.stringify({ url: front.url, jobs: 3, imagesPerJob: 16, imageSize: 192 })],
        {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      cleanups.push(() => child.kill('SIGKILL'));
      const line = await new Promise<string>((resolve) =>
        child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString())),
      );
      const { states } = JSON.parse(line) as { states: string[] };
      expect(states).toContain('RUNNING');
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/** Jobs on the slow model, submitted through `front`, the first of them running. */
function slowJobs(name: string, subscribeOnServer: boolean): Situation {
  return {
    name,
    slow: true,
    // Small batches: one run in flight is what a second signal waits for. A longer grace: on a loaded 2-core
    // machine the runs in flight after the drain can take seconds, and this case is about a clean exit 0.
    env: { MAX_BATCH_SIZE: '2', MAX_CONCURRENT_JOBS: '2', SHUTDOWN_GRACE_MS: '8000' },
    busy: true,
    oneSignalCode: 0,
    readyTimeoutMs: 180_000,
    arrange: async ({ server, front }) => {
      const ids = await submitJobs(front, 3, 6, 224, 0);
      if (subscribeOnServer) await silentGraphqlWsClient(server, ids);
      await until(async () => (await statusOf(front, ids[0]!)) === 'RUNNING', 30_000, 'a job to run');
    },
  };
}

/**
 * The cases, per role. all and api serve the same HTTP and websocket API; only where jobs run differs
 * (api: in its partner worker, followed over Redis). A worker serves /health, /ready and /metrics and runs jobs
 * from the queue: its clients are HTTP clients of those routes, and its jobs come through its partner API.
 */
const CASES: Case[] = [
  {
    all: silentWebsockets,
    api: silentWebsockets,
    worker: {
      name: 'idle keep-alive HTTP clients of /health and /metrics (a worker serves no websockets)',
      oneSignalCode: 0,
      arrange: async ({ server }) => {
        await Promise.all(
          ['/health', '/health', '/metrics', '/metrics'].map((route) => idleKeepAliveClient(server, route)),
        );
      },
    },
  },
  {
    all: unresponsiveWebsockets,
    api: unresponsiveWebsockets,
    worker: {
      name: 'connections that never send a byte, and clients that asked for /metrics and never read the answer',
      oneSignalCode: 0,
      arrange: async ({ server }) => {
        await Promise.all([
          ...Array.from({ length: 3 }, () => connection(server)),
          ...Array.from({ length: 2 }, () => idleKeepAliveClient(server, '/metrics', false)),
        ]);
      },
    },
  },
  {
    all: halfSentGraphqlRequest,
    api: halfSentGraphqlRequest,
    worker: {
      name: 'a client that half-sent a request to its /metrics port (headers cut off; body cut off)',
      // A worker has no Apollo waiting for requests in flight: its stop closes every connection at once.
      oneSignalCode: 0,
      arrange: async ({ server }) => {
        await halfSentRequest(server, 'headers', '/metrics');
        await halfSentRequest(server, 'body', '/metrics');
        await new Promise((resolve) => setTimeout(resolve, 200));
      },
    },
  },
  {
    all: killedSubscribers('subscribers SIGKILLed while their jobs run'),
    api: killedSubscribers('subscribers SIGKILLed while their jobs run on its worker'),
    worker: killedSubscribers('subscribers (on its API) SIGKILLed while it runs their jobs from the queue'),
  },
  {
    all: slowJobs('jobs running on the slow model', false),
    // An api loads no model: what it holds of running jobs are their subscribers, which its stop lets go of.
    api: slowJobs('jobs running on the slow model in its worker, with their subscribers on the api', true),
    worker: slowJobs('jobs from the queue running on the slow model', false),
  },
];

/**
 * For the two-signal run of a case without jobs of its own: work that keeps the role's stop under way when the
 * second signal comes, 300 ms after the first. all and worker: two long jobs, the first running (their drain
 * waits for it; on a fast machine the first may be done, leaving the second running or queued). api: long jobs
 * on its worker with their subscribers on the api, whose stop waits (up to 2 s) for them to get their ends.
 */
async function keepBusy(role: RoleName, { server, front }: Run): Promise<void> {
  const ids = await submitJobs(front, role === 'api' ? 3 : 2, 48, 160, 500);
  if (role === 'api') await silentGraphqlWsClient(server, ids);
  await until(
    async () => ['RUNNING', 'COMPLETE'].includes((await statusOf(front, ids[0]!)) ?? ''),
    60_000,
    'the first long job to run',
  );
}

/** This test file's redis-server, for the roles on Redis. */
let redis: RedisServer | undefined;
function useRedis(): void {
  beforeAll(async () => {
    redis ??= await startRedisServer();
  });
  afterAll(async () => {
    await redis?.dispose();
    redis = undefined;
  });
}

/** The settings that put a role and its partner on this file's Redis, under a key prefix of their own (nothing left over from another test). */
let deployments = 0;
function redisEnv(role: RoleUnderTest): Record<string, string> {
  if (role.partner === undefined && role.redis !== true) return {};
  if (redis === undefined) throw new Error('redis-server is not running');
  deployments += 1;
  return { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `exit-${role.role}-${deployments}` };
}

/** Starts the process under test and, beside it, its partner. */
async function startRun(
  role: RoleUnderTest,
  env: Record<string, string>,
  readyTimeoutMs: number | undefined,
): Promise<Run> {
  const shared = { ...env, ...redisEnv(role) };
  const [server, partner] = await Promise.all([
    startProcessServer({ ...shared, ...role.env }, role.args, readyTimeoutMs),
    role.partner === undefined
      ? undefined
      : startProcessServer({ ...shared, ...role.partner }, [MAIN_JS], readyTimeoutMs),
  ]);
  return { server, partner, front: role.role === 'worker' && partner !== undefined ? partner : server };
}

/** The role's suite: every case with one signal and with two, and the dead pipes. */
export function describeProcessExit(role: RoleUnderTest): void {
  describe.each([role])('the $role server process ends after SIGTERM', () => {
    let slowModelDir = '';
    beforeAll(async () => {
      await buildServer();
      slowModelDir = await ensureSlowModel();
    }, 600_000);
    if (REDIS !== null && (role.partner !== undefined || role.redis === true)) useRedis();

    describe.skipIf(role.partner !== undefined && REDIS === null)(
      role.partner === undefined ? 'alone' : 'beside its partner, on Redis',
      () => {
        describe.each(CASES.map((testCase) => testCase[role.role]))('with $name', (situation) => {
          it.each([1, 2] as const)(
            'should be gone within the deadline after %i signal(s)',
            async (signals) => {
              const env = {
                ...deadlineEnv,
                ...(situation.slow === true ? { CLIP_MODEL: slowModelDir } : {}),
                ...situation.env,
              };
              const run = await startRun(role, env, situation.readyTimeoutMs);
              try {
                await situation.arrange(run);
                if (signals === 2 && situation.busy !== true) await keepBusy(role.role, run);
                const { since, withinMs, delivered } = await signal(
                  run.server,
                  signals,
                  Number(env.DRAIN_TIMEOUT_MS),
                  Number(env.SHUTDOWN_GRACE_MS),
                );
                const ending = await gone(run.server, since, withinMs);
                console.log(
                  `${role.role} / ${situation.name} / ${signals} signal(s): exit ${ending.code ?? ending.signal} after ${ending.afterMs} ms (limit ${withinMs - EXIT_SLACK_MS} + ${EXIT_SLACK_MS} ms slack)`,
                );
                expectCleanEnding(run.server, ending, delivered);
                if (signals === 1) expect(ending.code).toBe(situation.oneSignalCode);
                if (delivered === 2 && !stoppedBeforeSecondSignal(run.server))
                  expect(
                    run.server.logs.some((line) => line.msg?.startsWith('second signal while stopping') === true),
                  ).toBe(true);
                if (signals === 1 && situation.oneSignalCode === 1)
                  expect(deadlineLine(run.server)?.activeResources).toContain('TCPSocketWrap');
                // Only the process under test was signalled.
                expect(run.partner?.child.exitCode ?? null).toBeNull();
              } finally {
                run.partner?.child.kill('SIGKILL');
              }
            },
            240_000,
          );
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
          ] as const)(
            'should be gone within the deadline after %i signal(s) sent by the parent on its way out (%s logs)',
            async (signals, logFormat) => {
              const env = { ...deadlineEnv, MAX_CONCURRENT_JOBS: '2', ...redisEnv(role) };
              // The partner (the api's worker, running the jobs; the worker's API, taking them) is this test's child, not the parent's.
              const partner =
                role.partner === undefined ? undefined : await startProcessServer({ ...env, ...role.partner });
              try {
                const options = {
                  command: [process.execPath, ...role.args],
                  cwd: REPO_ROOT,
                  env: processEnv({ ...env, ...role.env, LOG_FORMAT: logFormat }),
                  signals,
                  // The parent signals and exits at once; a short pause lets the second signal arrive on its own.
                  signalGapMs: signals === 2 ? 30 : 0,
                  unknownSubscriptions: 10,
                  jobs: 6,
                  imagesPerJob: 16,
                  imageSize: 256,
                  readyTimeoutMs: 60_000,
                  // A worker serves no API: the parent's subscriptions and jobs go through the worker's partner.
                  ...(role.role === 'worker' && partner !== undefined ? { apiUrl: partner.url } : {}),
                };
                const parent = spawn(process.execPath, [ORPHANING_PARENT_SCRIPT, JSON.stringify(options)], {
                  cwd: REPO_ROOT,
                  stdio: ['ignore', 'pipe', 'inherit'],
                });
                let out = '';
                parent.stdout.on('data', (chunk: Buffer) => {
                  out += chunk.toString();
                });
                await new Promise((resolve) => parent.once('close', resolve));
                const since = performance.now();
                const report = JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
                  serverPid?: number;
                  states?: string[];
                  error?: string;
                };
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
                console.log(
                  `${role.role} / dead pipes / ${logFormat} / ${signals} signal(s): gone ${Math.round(performance.now() - since)} ms after the parent exited`,
                );
                expect(partner?.child.exitCode ?? null).toBeNull();
              } finally {
                partner?.child.kill('SIGKILL');
              }
            },
            120_000,
          );
        });
      },
    );
  });
}

/** ROLE=all with REDIS_URL: jobs in Redis, the worker in the same process. */
export const ALL_ON_REDIS: RoleUnderTest = { role: 'all', args: [MAIN_JS], env: {}, redis: true };

/**
 * Redis gone before the signal (stopped, then started again for the next test): nothing a role would record or
 * hand back can reach it, and nothing it waits for in Redis will answer. Every role on Redis still stops at once
 * and cleanly: exit 0, or 1 after a second signal. (An idle worker's graceful BullMQ close waited for Redis to
 * come back, so worker and all-on-Redis processes exited 1 at the hard deadline.) The two-signal run keeps the
 * role busy first: jobs running (all, worker) or subscribers waiting for their jobs' ends (api).
 */
export function describeRedisStopped(roles: readonly RoleUnderTest[]): void {
  if (REDIS !== null) useRedis();
  describe.skipIf(REDIS === null).each(roles)(
    'the $role server process on Redis ends after SIGTERM with Redis stopped before the signal',
    (role) => {
      beforeAll(() => buildServer(), 600_000);
      it.each([1, 2] as const)(
        'should be gone within the deadline after %i signal(s)',
        async (signals) => {
          const run = await startRun(role, deadlineEnv, undefined);
          try {
            if (signals === 2) await keepBusy(role.role, run);
            await redis!.stop();
            try {
              const { since, withinMs, delivered } = await signal(
                run.server,
                signals,
                DRAIN_TIMEOUT_MS,
                SHUTDOWN_GRACE_MS,
              );
              const ending = await gone(run.server, since, withinMs);
              console.log(
                `${role.role}${role.redis === true ? ' on Redis' : ''} / Redis stopped / ${signals} signal(s): exit ${ending.code ?? ending.signal} after ${ending.afterMs} ms`,
              );
              expectCleanEnding(run.server, ending, delivered);
              if (signals === 1) expect(ending.code).toBe(0);
              if (delivered === 2 && !stoppedBeforeSecondSignal(run.server))
                expect(
                  run.server.logs.some((line) => line.msg?.startsWith('second signal while stopping') === true),
                ).toBe(true);
            } finally {
              await redis!.restart();
            }
          } finally {
            run.partner?.child.kill('SIGKILL');
          }
        },
        120_000,
      );
    },
  );
}
