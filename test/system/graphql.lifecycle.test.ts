/**
 * The server's lifecycle as a real process (node dist/src/main.js): drain on SIGTERM, and exit 1 with a clear
 * message on a default model that cannot load or a bad setting. In-process: test/integration/graphql.lifecycle.test.ts.
 */
import { spawn, execFile } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClassifyDocument, JobUpdatedDocument } from '../generated/graphql.js';
import { buildServer, MAIN_JS, processEnv } from '../utils/processServer.js';
import { distinctImages, gql, subscribe, tinyImages } from '../utils/testServer.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let image: string;
beforeAll(async () => {
  [image] = (await tinyImages()) as [string];
});

const execFileAsync = promisify(execFile);

describe('the process (node dist/src/main.js)', () => {
  beforeAll(() => buildServer(), 120_000);

  it('should drain on SIGTERM: refuse new jobs, finish the one in flight, deliver it to its subscriber, exit 0', async () => {
    const child = spawn(process.execPath, [MAIN_JS], {
      cwd: ROOT,
      env: processEnv({ MAX_CONCURRENT_JOBS: '1', MAX_BATCH_WAIT_MS: '2' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: { msg?: string; url?: string; status?: string; jobId?: string }[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const readyUrl = new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as (typeof logs)[number];
          logs.push(entry);
          if (entry.msg?.startsWith('clip-server ready') && entry.url !== undefined) resolve(entry.url);
        } catch {
          // Not a log line.
        }
      });
      void exited.then((code) => reject(new Error(`exited with ${code} before becoming ready`)));
    });
    try {
      const url = await readyUrl;
      const graphqlUrl = `${url}/graphql`;
      const wsUrl = `${url.replace('http', 'ws')}/graphql`;
      await gql(graphqlUrl, ClassifyDocument, {
        input: { images: await distinctImages(64, 40_000), classes: ['a', 'b'] },
      });
      const inFlight = await gql(graphqlUrl, ClassifyDocument, { input: { image, classes: ['a', 'b'] } });
      const id = inFlight.body.data?.classify.id ?? '';
      let refused: Promise<unknown> | undefined;
      const result = await subscribe(
        wsUrl,
        JobUpdatedDocument,
        { id },
        {
          onMessage: () => {
            if (refused !== undefined) return;
            child.kill('SIGTERM');
            // Give the signal a moment to land, then try to submit during the drain.
            refused = new Promise((resolve) => setTimeout(resolve, 100)).then(() =>
              gql(graphqlUrl, ClassifyDocument, { input: { image, classes: ['a', 'b'] } }).catch(
                (error: unknown) => error,
              ),
            );
          },
        },
      );
      expect(result.completed).toBe(true);
      expect(result.messages.at(-1)?.data?.jobUpdated.status).toBe('COMPLETE');
      const late = (await refused) as { body?: { errors?: { extensions?: { code?: string } }[] } };
      // Refused with SHUTTING_DOWN while draining (or the connection was already closed if the drain was that quick).
      if (late.body !== undefined) expect(late.body.errors?.[0]?.extensions?.code).toBe('SHUTTING_DOWN');
      expect(await exited).toBe(0);
      expect(logs.some((entry) => entry.msg === 'shutting down')).toBe(true);
      expect(logs.some((entry) => entry.jobId === id && entry.status === 'complete')).toBe(true);
      expect(logs.some((entry) => entry.msg === 'stopped')).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('should exit 1 with a clear message when the default model cannot load', async () => {
    const missing = path.join(ROOT, 'test', '.models', 'no-such-model');
    const child = spawn(process.execPath, [MAIN_JS], {
      cwd: ROOT,
      env: processEnv({ CLIP_MODEL: missing }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(output).toMatch(/could not start/);
    expect(output).toMatch(/no-such-model/);
  });

  it('should exit 1 naming the variable for a bad setting', async () => {
    const { stderr, code } = await execFileAsync(process.execPath, [MAIN_JS], {
      cwd: ROOT,
      env: processEnv({ PORT: 'eighty' }),
    }).then(
      () => ({ stderr: '', code: 0 }),
      (error: { stderr: string; code: number }) => error,
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT: expected an integer between 0 and 65535, got "eighty"/);
  });
});
