/**
 * A first start that explains itself (issue 11): when the default model cannot be had (hub unreachable, a
 * wrong id, offline with an empty cache) or its directory is broken, the server process prints one readable
 * paragraph (what it tried, from where, why it failed, the ways out), no stack trace unless LOG_LEVEL=debug,
 * and exits 1. Logs are JSON lines when stdout is not a terminal, pretty lines when it is (or LOG_FORMAT says so).
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAKE_TEST_MODEL_COMMAND } from '../../../src/startupFailure.js';
import { startFakeHub, type FakeHub } from '../../utils/fakeHub.js';
import {
  MAIN_JS,
  REPO_ROOT,
  buildServer,
  processEnv,
  spawnServer,
  type ProcessLogLine,
  type ProcessServer,
} from '../../utils/processServer.js';
import { refusedPort } from '../../utils/refusedPort.js';
import { TINY_MODEL_DIR } from '../../utils/testModel.js';

const STACK_FRAME = /\n\s+at .+:\d+:\d+\)?/;
const temporaryDirs: string[] = [];
afterAll(async () => {
  await Promise.all(temporaryDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function temporaryDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'clip-first-start-'));
  temporaryDirs.push(dir);
  return dir;
}

/** Runs the server to its exit; resolves with its exit code, its log lines and everything else it printed. */
async function runToExit(
  env: Record<string, string>,
): Promise<{ code: number | null; logs: ProcessLogLine[]; output: string; server: ProcessServer }> {
  const server = spawnServer(env);
  const code = await server.exited;
  // The exit can overtake the last 'data' events of the pipes.
  await new Promise((resolve) => setTimeout(resolve, 50));
  return { code, logs: server.logs, output: server.output(), server };
}

/** The one fatal line: the paragraph. */
function paragraphOf(logs: ProcessLogLine[]): string {
  const fatal = logs.filter((line) => line.level === 60);
  expect(fatal).toHaveLength(1);
  const text = fatal[0]!.msg ?? '';
  // One paragraph: no line breaks inside.
  expect(text).not.toMatch(/\n/);
  return text;
}

function expectWaysOut(paragraph: string): void {
  expect(paragraph).toContain('CLIP_MODEL');
  expect(paragraph).toContain(MAKE_TEST_MODEL_COMMAND);
}

function expectNoStackTrace(result: { logs: ProcessLogLine[]; output: string }): void {
  const everything = `${result.output}\n${result.logs.map((line) => JSON.stringify(line)).join('\n')}`;
  expect(everything).not.toMatch(STACK_FRAME);
  expect(everything).not.toContain('"stack"');
}

describe('the first start without a usable default model', () => {
  let hub: FakeHub;
  let deadHubUrl = '';

  beforeAll(async () => {
    await buildServer();
    // A hub that serves one repo, and an address where connections are refused.
    const repoDir = await temporaryDir();
    await cp(TINY_MODEL_DIR, repoDir, { recursive: true });
    hub = await startFakeHub({ repos: { 'test-org/tiny-clip': repoDir } });
    deadHubUrl = `http://127.0.0.1:${await refusedPort()}`;
  }, 180_000);

  afterAll(async () => {
    await hub?.close();
  });

  it('should explain an unreachable hub in one paragraph (what, from where, why, ways out) and exit 1', async () => {
    const cache = await temporaryDir();
    const result = await runToExit({
      CLIP_MODEL: 'clip-vit-base-patch32',
      HF_HUB_OFFLINE: '0',
      HF_ENDPOINT: deadHubUrl,
      MODEL_CACHE_DIR: cache,
    });
    expect(result.code).toBe(1);
    const paragraph = paragraphOf(result.logs);
    console.log(`unreachable hub:\n${paragraph}`);
    expect(paragraph).toContain('clip-vit-base-patch32');
    // What it tried to download, from where, and why.
    expect(paragraph).toContain(`${deadHubUrl}/Xenova/clip-vit-base-patch32/resolve/main/`);
    expect(paragraph).toMatch(/ECONNREFUSED|fetch failed|connect/i);
    expect(paragraph).toContain('HF_ENDPOINT');
    expectWaysOut(paragraph);
    expectNoStackTrace(result);
  }, 60_000);

  it('should explain a wrong model id (404 from the hub) and exit 1', async () => {
    const cache = await temporaryDir();
    const result = await runToExit({
      CLIP_MODEL: 'test-org/no-such-model',
      HF_HUB_OFFLINE: '0',
      HF_ENDPOINT: hub.url,
      MODEL_CACHE_DIR: cache,
    });
    expect(result.code).toBe(1);
    const paragraph = paragraphOf(result.logs);
    console.log(`wrong id:\n${paragraph}`);
    expect(paragraph).toContain('test-org/no-such-model');
    expect(paragraph).toContain(hub.url);
    expect(paragraph).toMatch(/not found/i);
    expectWaysOut(paragraph);
    expectNoStackTrace(result);
  }, 60_000);

  it('should explain HF_HUB_OFFLINE with an empty cache and exit 1', async () => {
    const cache = await temporaryDir();
    const result = await runToExit({
      CLIP_MODEL: 'clip-vit-base-patch32',
      HF_HUB_OFFLINE: '1',
      MODEL_CACHE_DIR: cache,
    });
    expect(result.code).toBe(1);
    const paragraph = paragraphOf(result.logs);
    console.log(`offline, empty cache:\n${paragraph}`);
    expect(paragraph).toContain('HF_HUB_OFFLINE');
    expect(paragraph).toContain(cache);
    expectWaysOut(paragraph);
    expectNoStackTrace(result);
  }, 60_000);

  it('should name the broken file of a model directory and what is wrong with it, and exit 1', async () => {
    const dir = await temporaryDir();
    await cp(TINY_MODEL_DIR, dir, { recursive: true });
    await writeFile(path.join(dir, 'preprocessor_config.json'), '{"crop_size": 224, "image_mean": [0.5, 0.5');
    const result = await runToExit({ CLIP_MODEL: dir });
    expect(result.code).toBe(1);
    const paragraph = paragraphOf(result.logs);
    console.log(`broken model directory:\n${paragraph}`);
    expect(paragraph).toContain(path.join(dir, 'preprocessor_config.json'));
    expect(paragraph).toMatch(/not valid JSON/);
    expectWaysOut(paragraph);
    expectNoStackTrace(result);
  }, 60_000);

  it('should flush the paragraph through the asynchronous pretty transport before exiting', async () => {
    const cache = await temporaryDir();
    const result = await runToExit({
      CLIP_MODEL: 'clip-vit-base-patch32',
      HF_HUB_OFFLINE: '1',
      MODEL_CACHE_DIR: cache,
      LOG_FORMAT: 'pretty',
    });
    expect(result.code).toBe(1);
    expect(result.logs).toEqual([]);
    expect(result.output).toMatch(
      /FATAL.*clip-server could not start: the default model "clip-vit-base-patch32" is not available\..*Ways out: .*--preset tiny/,
    );
    expect(result.output).not.toMatch(STACK_FRAME);
    // The line logged last, just before process.exit: there only if the logs were flushed first.
    expect(result.output).toMatch(/INFO.*stopped/);
  }, 60_000);

  it('should add the stack trace at LOG_LEVEL=debug', async () => {
    const cache = await temporaryDir();
    const result = await runToExit({
      CLIP_MODEL: 'clip-vit-base-patch32',
      HF_HUB_OFFLINE: '1',
      MODEL_CACHE_DIR: cache,
      LOG_LEVEL: 'debug',
    });
    expect(result.code).toBe(1);
    const fatal = result.logs.find((line) => line.level === 60) as { err?: { stack?: string } } | undefined;
    expect(fatal?.err?.stack).toMatch(STACK_FRAME);
  }, 60_000);
});

describe('log format selection', () => {
  beforeAll(async () => {
    await buildServer();
  }, 180_000);

  /** Starts the tiny model's server, waits until it printed `marker`, then stops it; resolves with its stdout. */
  async function stdoutUntil(env: Record<string, string>, marker: RegExp): Promise<string> {
    const child = spawn(process.execPath, [MAIN_JS], {
      cwd: REPO_ROOT,
      env: processEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let signalled = false;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (signalled || !marker.test(out)) return;
      signalled = true;
      child.kill('SIGTERM');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    expect(code).toBe(0);
    return out;
  }

  it('should write JSON lines when stdout is not a terminal (LOG_FORMAT=auto) and when LOG_FORMAT=json', async () => {
    for (const format of ['auto', 'json']) {
      const out = await stdoutUntil({ LOG_FORMAT: format }, /clip-server ready/);
      const lines = out.trim().split('\n');
      for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
      expect(
        lines.some((line) => (JSON.parse(line) as { msg?: string }).msg?.startsWith('clip-server ready') === true),
      ).toBe(true);
    }
  }, 120_000);

  it('should write human-readable lines with LOG_FORMAT=pretty, and flush them before exiting', async () => {
    const out = await stdoutUntil({ LOG_FORMAT: 'pretty' }, /clip-server ready/);
    console.log(`pretty output:\n${out}`);
    // Into a pipe: no colour codes.
    expect(out).not.toContain('\x1b[');
    const lines = out.trim().split('\n');
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line).toThrow();
    expect(out).toMatch(/\d\d:\d\d:\d\d\.\d{3}\] .*INFO.*clip-server ready at http:\/\/127\.0\.0\.1:\d+\/graphql/);
    expect(out).toMatch(/page for people: http:\/\/127\.0\.0\.1:\d+\//);
    expect(out).toMatch(/model loaded; warming up .*loadMs/);
    expect(out).toMatch(/model warmed up .*warmMs/);
    // Written by the transport's worker thread after SIGTERM: lost unless flushed before exiting.
    expect(out).toMatch(/INFO.*stopped/);
  }, 120_000);

  it('should pick pretty lines by itself when stdout is a terminal', async (context) => {
    // `script` (util-linux) gives the server a pseudo-terminal as stdout.
    const hasScript = await new Promise<boolean>((resolve) =>
      spawn('script', ['--version'], { stdio: 'ignore' })
        .once('exit', (code) => resolve(code === 0))
        .once('error', () => resolve(false)),
    );
    if (!hasScript) {
      console.log('skipped: `script` (util-linux) is not installed, so no pseudo-terminal can be given to the server');
      context.skip();
    }
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN_JS)}`;
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      cwd: REPO_ROOT,
      env: processEnv({ LOG_FORMAT: 'auto' }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    while (!/clip-server ready/.test(out) && child.exitCode === null)
      await new Promise((resolve) => setTimeout(resolve, 50));
    // Ctrl-C on the terminal: SIGINT to the foreground process group.
    child.stdin.write('\x03');
    await new Promise((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    // eslint-disable-next-line no-control-regex
    const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
    expect(plain).toMatch(/INFO.*clip-server ready at http:\/\/127\.0\.0\.1:\d+\/graphql/);
    expect(plain).not.toMatch(/^\{"level"/m);
  }, 120_000);
});
