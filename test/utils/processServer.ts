/**
 * The server as a real process (`node <build>/src/main.js`), for what only a process can show: exit codes,
 * signals, startup failures and what it prints. `buildServer()` compiles once per run into its own
 * directory (under a lock, since several test files may ask at once); `startProcessServer()` spawns it
 * with the given environment and resolves once it logs that it is ready. Every process a test file
 * starts is killed in that file's afterAll.
 */
import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll } from 'vitest';
import { withDirLock } from './dirLock.js';
import { TINY_MODEL_DIR } from './testModel.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD_DIR = path.join(ROOT, 'dist', '.reliability-build');
const LOCK_DIR = `${BUILD_DIR}.lock`;
/** A lock older than this belongs to a run that died (a build takes seconds). */
const STALE_LOCK_MS = 180_000;

/** The repository root (the server processes' working directory). */
export const REPO_ROOT = ROOT;

/** The compiled entry point. */
export const MAIN_JS = path.join(BUILD_DIR, 'src', 'main.js');

const execFileAsync = promisify(execFile);
let built: Promise<void> | null = null;

function withLock<T>(body: () => Promise<T>): Promise<T> {
  return withDirLock(LOCK_DIR, { staleMs: STALE_LOCK_MS, pollMs: 100 }, body);
}

/**
 * Compiles src/ into dist/.reliability-build (incremental: fast when nothing changed). Its own directory and
 * build info, so it neither races nor confuses `npm run build` or other tests' builds.
 */
export function buildServer(): Promise<void> {
  built ??= withLock(async () => {
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await execFileAsync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', BUILD_DIR, '--tsBuildInfoFile', path.join(BUILD_DIR, '.tsbuildinfo')], { cwd: ROOT }).catch(
      (error: Error & { stdout?: string }) => {
        // Type errors elsewhere do not stop tsc from emitting; only a missing entry point is fatal.
        if (!existsSync(MAIN_JS)) throw new Error(`build failed: ${error.stdout ?? String(error)}`);
      },
    );
  });
  return built;
}

/** One line the server logged (pino JSON on stdout). */
export interface ProcessLogLine {
  level: number;
  msg?: string;
  url?: string;
  jobId?: string;
  status?: string;
  [key: string]: unknown;
}

export interface ProcessServer {
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** `http://127.0.0.1:<port>` once ready. */
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  /** Parsed stdout lines so far. */
  logs: ProcessLogLine[];
  /** Everything written to stdout that was not a log line, and everything on stderr. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

const children = new Set<ChildProcessByStdio<null, Readable, Readable>>();
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** The environment every test process gets: the tiny model, any free port, offline, quick batching. */
export function processEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  // vitest's own opt-out (vitest.config.ts) is not inherited: the server must turn ONNX Runtime's telemetry off itself.
  const { ORT_DISABLE_TELEMETRY: _vitestOptOut, ...inherited } = process.env;
  return {
    ...inherited,
    // As users run it: vitest sets NODE_ENV=test, under which Apollo (for one) behaves differently on SIGTERM.
    NODE_ENV: 'production',
    PORT: '0',
    HOST: '127.0.0.1',
    CLIP_MODEL: TINY_MODEL_DIR,
    HF_HUB_OFFLINE: '1',
    DOWNLOAD_PROGRESS: '0',
    LOG_LEVEL: 'info',
    ORT_INTRA_OP_THREADS: '1',
    PREPROCESS_CONCURRENCY: '1',
    ...overrides,
  };
}

/** Spawns the built server (`args`: node's arguments, the entry point first); does not wait for it (see `untilReady`). */
export function spawnServer(env: Record<string, string> = {}, args: readonly string[] = [MAIN_JS]): ProcessServer {
  const child = spawn(process.execPath, [...args], { cwd: ROOT, env: processEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const logs: ProcessLogLine[] = [];
  let other = '';
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as ProcessLogLine);
    } catch {
      other += `${line}\n`;
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    other += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    });
  });
  return { child, url: '', graphqlUrl: '', wsUrl: '', logs, output: () => other, exited };
}

/** Resolves once the server logged `clip-server ready` (filling in its URLs); rejects if it exits first. */
export async function untilReady(server: ProcessServer, timeoutMs = 60_000): Promise<ProcessServer> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void server.exited.then((code) => {
    exitCode = code;
  });
  for (;;) {
    const ready = server.logs.find((line) => line.msg?.startsWith('clip-server ready') === true && typeof line.url === 'string');
    if (ready !== undefined) {
      const url = ready.url as string;
      return Object.assign(server, { url, graphqlUrl: `${url}/graphql`, wsUrl: `${url.replace(/^http/, 'ws')}/graphql` });
    }
    if (exitCode !== undefined) throw new Error(`the server exited with ${exitCode} before becoming ready:\n${server.output()}`);
    if (Date.now() > deadline) throw new Error(`the server was not ready after ${timeoutMs} ms:\n${server.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Builds (once), spawns and waits for readiness. */
export async function startProcessServer(env: Record<string, string> = {}, args: readonly string[] = [MAIN_JS], readyTimeoutMs?: number): Promise<ProcessServer> {
  await buildServer();
  return untilReady(spawnServer(env, args), readyTimeoutMs);
}
