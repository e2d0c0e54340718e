/**
 * The server as a real process (`node <build>/src/main.js`), for what only a process can show: exit codes,
 * signals, startup failures and what it prints. `buildServer()` makes sure it is compiled (test/utils/serverBuild.ts:
 * once per run, in the system tier's globalSetup); `startProcessServer()` spawns it
 * with the given environment and resolves once it logs that it is ready. Every process a test file
 * starts is killed in that file's afterAll.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { afterAll, inject } from 'vitest';
import { compileServer, MAIN_JS, REPO_ROOT } from './serverBuild.js';
import { TINY_MODEL_DIR } from './testModel.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The system tier's globalSetup compiled the server for this run (test/setup/server.ts). */
    serverBuilt: boolean;
  }
}

let built: Promise<void> | null = null;

export { MAIN_JS, REPO_ROOT };

/** Compiles the server (test/utils/serverBuild.ts) unless this run's globalSetup already did; once per test file. */
export function buildServer(): Promise<void> {
  built ??= inject('serverBuilt') === true ? Promise.resolve() : compileServer();
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
  /**
   * Resolves with the exit code (null when killed by a signal) once stdout and stderr are closed too, so `logs` and
   * `output()` then hold everything the process wrote ('exit' can come before the last lines are read).
   */
  exited: Promise<number | null>;
}

const children = new Set<ChildProcessByStdio<null, Readable, Readable>>();
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * The environment every test process gets: the tiny model, any free port, offline, quick batching. An override whose
 * value is `undefined` removes that variable.
 */
export function processEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  // vitest's own opt-out (vitest.config.ts) is not inherited: the server must turn ONNX Runtime's telemetry off itself.
  const { ORT_DISABLE_TELEMETRY: _vitestOptOut, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = {
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
  return Object.fromEntries(
    Object.entries(env).filter(([name]) => !(name in overrides && overrides[name] === undefined)),
  );
}

/** Spawns the built server (`args`: node's arguments, the entry point first); does not wait for it (see `untilReady`). */
export function spawnServer(
  env: Record<string, string | undefined> = {},
  args: readonly string[] = [MAIN_JS],
): ProcessServer {
  const child = spawn(process.execPath, [...args], {
    cwd: REPO_ROOT,
    env: processEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
    child.once('close', (code) => {
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
    const ready = server.logs.find(
      (line) => line.msg?.startsWith('clip-server ready') === true && typeof line.url === 'string',
    );
    if (ready !== undefined) {
      const url = ready.url as string;
      return Object.assign(server, {
        url,
        graphqlUrl: `${url}/graphql`,
        wsUrl: `${url.replace(/^http/, 'ws')}/graphql`,
      });
    }
    if (exitCode !== undefined)
      throw new Error(`the server exited with ${exitCode} before becoming ready:\n${server.output()}`);
    if (Date.now() > deadline) throw new Error(`the server was not ready after ${timeoutMs} ms:\n${server.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Builds (once), spawns and waits for readiness. */
export async function startProcessServer(
  env: Record<string, string> = {},
  args: readonly string[] = [MAIN_JS],
  readyTimeoutMs?: number,
): Promise<ProcessServer> {
  await buildServer();
  return untilReady(spawnServer(env, args), readyTimeoutMs);
}
