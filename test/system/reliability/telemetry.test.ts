/**
 * ONNX Runtime's telemetry stays off in every kind of process that loads it: the server (ROLE=all, and ROLE=worker
 * beside ROLE=api on Redis), the child process a SigLIP scale is measured in, the scripts (benchmark, test-model
 * generator) and vitest itself. Each runs with HOME pointing at an empty directory; afterwards the queue ONNX Runtime
 * keeps there for upload (an SQLite database) holds no event. The opt-in (ORT_TELEMETRY=true) is the control: the same
 * run then queues events, so the counting below does see them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildServer,
  MAIN_JS,
  processEnv,
  REPO_ROOT,
  startProcessServer,
  type ProcessServer,
} from '../../utils/processServer.js';
import { redisServerPath, startRedisServer } from '../../utils/redisServer.js';
import { HF_SIGLIP_TEST_MODEL_DIR, TINY_MODEL_DIR } from '../../utils/testModel.js';

const execFileAsync = promisify(execFile);
const homes: string[] = [];

afterAll(async () => {
  await Promise.all(homes.map((home) => rm(home, { recursive: true, force: true })));
});

async function emptyHome(): Promise<string> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'ort-home-'));
  homes.push(home);
  return home;
}

/** Where ONNX Runtime's Linux build keeps its device id and its upload queue, under HOME. */
function telemetryDir(home: string): string {
  return path.join(home, '.cache', 'Microsoft', 'DeveloperTools', '.onnxruntime');
}

/** Rows in every table of the upload queue (0 when ONNX Runtime never created it). */
function queuedEvents(home: string): number {
  const file = path.join(telemetryDir(home), 'onnxruntime.db');
  if (!existsSync(file)) return 0;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    return tables.reduce(
      (sum, { name }) =>
        sum + (db.prepare(`SELECT count(*) AS n FROM "${name.replace(/"/g, '""')}"`).get() as { n: number }).n,
      0,
    );
  } finally {
    db.close();
  }
}

async function pngDataUrl(seed: number): Promise<string> {
  const pixels = Buffer.alloc(16 * 16 * 3, seed * 37);
  return `data:image/png;base64,${(
    await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } })
      .png()
      .toBuffer()
  ).toString('base64')}`;
}

/** Runs one classification to its end, so sessions are created and run. */
async function classifyOnce(server: ProcessServer): Promise<void> {
  const post = async (
    query: string,
    variables: Record<string, unknown>,
  ): Promise<Record<string, { id: string; status: string } | null>> => {
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: Record<string, { id: string; status: string } | null> };
    if (body.data === undefined) throw new Error(`GraphQL refused: ${JSON.stringify(body).slice(0, 300)}`);
    return body.data;
  };
  const created = await post('mutation($input: ClassifyInput!) { classify(input: $input) { id status } }', {
    input: { image: await pngDataUrl(1), classes: ['a cat', 'a dog'] },
  });
  const id = created.classify?.id ?? '';
  await expect
    .poll(async () => (await post('query($id: ID!) { job(id: $id) { id status } }', { id })).job?.status, {
      timeout: 60_000,
      interval: 100,
    })
    .toBe('COMPLETE');
}

async function stopGracefully(server: ProcessServer): Promise<void> {
  server.child.kill('SIGTERM');
  expect(await server.exited).toBe(0);
}

/**
 * ONNX Runtime records nothing when the environment says it runs under CI (its Linux build checks CI, GITHUB_ACTIONS,
 * TF_BUILD and the like), so every process here runs without them: the tests must see what a user's machine sees,
 * on CI too.
 */
const CI_MARKERS = [
  'CI',
  'GITHUB_ACTIONS',
  'TF_BUILD',
  'GITLAB_CI',
  'CIRCLECI',
  'TRAVIS',
  'JENKINS_URL',
  'CODEBUILD_BUILD_ID',
  'BUILDKITE',
  'TEAMCITY_VERSION',
  'APPVEYOR',
  'BITBUCKET_BUILD_NUMBER',
];
const OUTSIDE_CI: Record<string, undefined> = Object.fromEntries(CI_MARKERS.map((name) => [name, undefined]));

function withoutCiMarkers(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !CI_MARKERS.includes(name)));
}

describe('ONNX Runtime telemetry', () => {
  it('should queue no event from a server (ROLE=all) that ran a job', async () => {
    const home = await emptyHome();
    const server = await startProcessServer({ HOME: home, ...OUTSIDE_CI });
    await classifyOnce(server);
    await stopGracefully(server);
    expect(queuedEvents(home)).toBe(0);
    // Nor a persistent device id (ONNX Runtime 1.30 writes none with telemetry off).
    expect(existsSync(path.join(telemetryDir(home), 'deviceid'))).toBe(false);
  });

  it('should queue events when ORT_TELEMETRY=true opts in', async () => {
    const home = await emptyHome();
    const server = await startProcessServer({ HOME: home, ORT_TELEMETRY: 'true', ...OUTSIDE_CI });
    await classifyOnce(server);
    await stopGracefully(server);
    expect(queuedEvents(home)).toBeGreaterThan(0);
  });

  it('should queue no event from the child process that measures a SigLIP scale', async () => {
    const home = await emptyHome();
    const server = await startProcessServer({ HOME: home, CLIP_MODEL: HF_SIGLIP_TEST_MODEL_DIR, ...OUTSIDE_CI });
    await stopGracefully(server);
    expect(queuedEvents(home)).toBe(0);
  });

  it.skipIf(redisServerPath() === null)('should queue no event from a worker and an API on Redis', async () => {
    const home = await emptyHome();
    const redis = await startRedisServer();
    try {
      const env = { HOME: home, REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'telemetry-test', ...OUTSIDE_CI };
      const [api, worker] = await Promise.all([
        startProcessServer({ ...env, ROLE: 'api' }),
        startProcessServer({ ...env, ROLE: 'worker' }),
      ]);
      await classifyOnce(api);
      await Promise.all([stopGracefully(api), stopGracefully(worker)]);
    } finally {
      await redis.dispose();
    }
    expect(queuedEvents(home)).toBe(0);
  });

  it('should queue no event from a script that imports ortTelemetry first (the benchmark, the test-model generator)', async () => {
    await buildServer();
    const home = await emptyHome();
    const { ORT_DISABLE_TELEMETRY: _inherited, ...env } = process.env;
    const hook = path.join(path.dirname(path.dirname(MAIN_JS)), 'scripts', 'ortTelemetry.js');
    const model = path.join(TINY_MODEL_DIR, 'onnx', 'text_model.onnx');
    const script = `await import(${JSON.stringify(hook)}); const ort = await import('onnxruntime-node'); await ort.InferenceSession.create(${JSON.stringify(model)});`;
    await execFileAsync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      env: withoutCiMarkers({ ...env, HOME: home }),
    });
    expect(queuedEvents(home)).toBe(0);
  });

  it('should queue no event from a vitest run', async () => {
    const home = await emptyHome();
    const { ORT_DISABLE_TELEMETRY: _inherited, ...env } = processEnv({ HOME: home });
    const vitest = path.join(REPO_ROOT, 'node_modules', 'vitest', 'vitest.mjs');
    await execFileAsync(process.execPath, [vitest, 'run', 'test/integration/clip/runtime/onnx.test.ts'], {
      cwd: REPO_ROOT,
      env: withoutCiMarkers({ ...env, NODE_ENV: 'test' }),
    });
    expect(queuedEvents(home)).toBe(0);
  }, 240_000);
});
