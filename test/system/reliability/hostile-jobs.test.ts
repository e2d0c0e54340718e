/**
 * Hostile requests inside the documented limits, on the real server:
 * - large finished jobs do not pile up until their TTL: the retention budget drops the oldest, and /metrics shows it;
 *   answers over many large jobs are refused with a code, before they are built;
 * - JSON bodies of millions of tiny values are refused by their structure before they are parsed, on REST and
 *   GraphQL, while a body that is one large base64 string still goes through;
 * - a JPEG whose header promises more pixels than its data holds fails its job with BAD_USER_INPUT, never
 *   classified as grey.
 * Event-loop delays are printed for the record, not asserted (benchmarks: `npm run bench -- --only json-body`).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import WebSocket from 'ws';
import { OPEN_CALLER } from '../../../src/jobs/index.js';
import { describe, expect, it } from 'vitest';
import { subscribe } from '../../utils/testServer.js';
import { forceGc, metricValue, MiB, mib, settledJob, startRecordedServer, type RecordedServer } from './support.js';

const TEXT_JOBS = '/api/tasks/text-embedding/batched/tiny/jobs';
const CLASSIFY_JOB = '/api/tasks/zero-shot-image-classification/tiny/jobs';

async function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
}

/** The code of a REST error body or of the first GraphQL error. */
function codeOf(body: Record<string, unknown>): string | undefined {
  const rest = (body.error as { code?: string } | undefined)?.code;
  return rest ?? (body.errors as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code;
}

/** Submits a text-embedding job over REST and waits for it to finish. */
async function runTextJob(server: RecordedServer, texts: readonly string[]): Promise<string> {
  const answer = await post(`${server.url}${TEXT_JOBS}`, JSON.stringify({ text: texts }));
  expect(answer.status).toBe(200);
  const id = answer.body.id as string;
  expect((await settledJob(server.server, id)).status).toBe('complete');
  return id;
}

/** The longest event-loop stall while `run` goes on, in ms (printed, never asserted). */
async function loopStallMs<T>(run: () => Promise<T>): Promise<{ value: T; stallMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  try {
    const value = await run();
    return { value, stallMs: histogram.max / 1e6 };
  } finally {
    histogram.disable();
  }
}

function heapAfterGc(): number {
  forceGc();
  forceGc();
  return process.memoryUsage().heapUsed;
}

describe('finished jobs and answers are bounded', () => {
  /** 40 jobs of 200 texts of 10,000 characters: ~2 MB each, 80 MB kept for the TTL without a budget. */
  const JOBS = 40;
  const TEXTS = Array.from({ length: 200 }, (_, i) => `${i} ${'lorem ipsum '.repeat(900)}`.slice(0, 10_000));
  const RETAINED = 8 * MiB;

  it('should drop the oldest finished jobs past MAX_RETAINED_JOB_BYTES, keep the heap near the budget, and show it in /metrics', async () => {
    const server = await startRecordedServer({ maxRetainedJobBytes: RETAINED, textCacheSize: 256 });
    // The first job fills the embedding cache (every job has the same texts, so the others only hit it).
    const first = await runTextJob(server, TEXTS);
    const before = heapAfterGc();
    const ids: string[] = [first];
    for (let i = 1; i < JOBS; i += 1) ids.push(await runTextJob(server, TEXTS));
    const growth = heapAfterGc() - before;
    console.log(`heap after ${JOBS} jobs of ~2 MB: +${mib(growth)} (budget ${mib(RETAINED)})`);

    // Without a budget each job keeps its ~2 MB of texts for the whole TTL: 78 MB more.
    expect(growth).toBeLessThan(RETAINED + 16 * MiB);
    const retainedBytes = await metricValue(server.url, 'clip_retained_job_bytes');
    expect(retainedBytes).toBeGreaterThan(0);
    expect(retainedBytes).toBeLessThanOrEqual(RETAINED);
    expect(await metricValue(server.url, 'clip_jobs_evicted_total')).toBeGreaterThanOrEqual(JOBS - 5);
    // The first jobs read as unknown, as if expired; the last one is there.
    const oldest = await fetch(`${server.url}/api/tasks/text-embedding/batched/jobs/${first}`);
    expect(oldest.status).toBe(404);
    expect((await server.server.jobs.get(OPEN_CALLER, ids[JOBS - 1] as string))?.status).toBe('complete');
    expect(server.errorLogs()).toEqual([]);
  });

  it('should refuse answers over many large jobs with a code, by complexity or by MAX_RESPONSE_BYTES, never a huge answer or a 500', async () => {
    const server = await startRecordedServer({ maxResponseBytes: 2 * MiB });
    for (let i = 0; i < 6; i += 1) await runTextJob(server, TEXTS);
    const page = (alias: string, first: number): string => `${alias}: jobs(first: ${first}) { nodes { id texts } }`;

    // Three full pages of texts: each job's texts now count toward the cost, so the document is refused unrun.
    const aliases = await post(
      server.graphqlUrl,
      JSON.stringify({ query: `{ ${page('a0', 100)} ${page('a1', 100)} ${page('a2', 100)} }` }),
    );
    expect(aliases.status).toBe(400);
    expect(codeOf(aliases.body)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(JSON.stringify(aliases.body)).toMatch(/MAX_QUERY_COMPLEXITY/);

    // Within the cost limit, but 6 jobs × 2 MB of texts: refused as it runs, with one error and no data.
    const small = await post(server.graphqlUrl, JSON.stringify({ query: `{ ${page('a0', 20)} }` }));
    expect(small.status).toBe(400);
    expect(codeOf(small.body)).toBe('RESPONSE_TOO_LARGE');
    expect(small.body.data).toBeUndefined();
    expect(JSON.stringify(small.body).length).toBeLessThan(1000);
    expect(JSON.stringify(small.body)).toMatch(/MAX_RESPONSE_BYTES/);

    // The same over the websocket: one error, no data.
    const overWs = await subscribe(server.wsUrl, `{ ${page('a0', 20)} }`);
    expect(overWs.messages).toHaveLength(1);
    expect(overWs.messages[0]?.data).toBeUndefined();
    expect(overWs.messages[0]?.errors?.[0]?.extensions?.code).toBe('RESPONSE_TOO_LARGE');

    // What fits is answered: ids only, and one job's texts.
    const ids = await post(server.graphqlUrl, JSON.stringify({ query: '{ jobs(first: 20) { nodes { id } } }' }));
    expect(ids.status).toBe(200);
    const one = await post(server.graphqlUrl, JSON.stringify({ query: '{ jobs(first: 1) { nodes { texts } } }' }));
    expect((one.body as { data: { jobs: { nodes: { texts: string[] }[] } } }).data.jobs.nodes[0]?.texts).toHaveLength(
      TEXTS.length,
    );
    expect(server.errorLogs()).toEqual([]);
  });
});

describe('JSON bodies are refused by structure before they are parsed', () => {
  /** `{"image":"x","classes":[{},{},…]}` of about `megabytes`: inside MAX_BODY_BYTES, millions of values. */
  const tinyValues = (megabytes: number): string =>
    `{"image":"x","classes":[${'{},'.repeat(Math.floor((megabytes * 1e6) / 3))}{}]}`;
  const nested = (levels: number): string => `{"image":"x","classes":${'['.repeat(levels)}${']'.repeat(levels)}}`;

  it('should answer 413 naming MAX_JSON_VALUES or MAX_JSON_DEPTH on REST and GraphQL (websocket: 4400), and let one large base64 string through', async () => {
    const server = await startRecordedServer();
    const rest = `${server.url}${CLASSIFY_JOB}`;

    const values = await loopStallMs(() => post(rest, tinyValues(20)));
    console.log(`REST, 20 MB of {}: ${values.value.status} after a loop stall of ${values.stallMs.toFixed(0)} ms`);
    expect(values.value.status).toBe(413);
    expect(values.value.body).toMatchObject({
      error: { code: 'PAYLOAD_TOO_LARGE', message: expect.stringContaining('MAX_JSON_VALUES') },
    });

    const deep = await post(rest, nested(100_000));
    expect(deep.status).toBe(413);
    expect(deep.body).toMatchObject({
      error: { code: 'PAYLOAD_TOO_LARGE', message: expect.stringContaining('MAX_JSON_DEPTH') },
    });

    const variables = `{"query":"{ models { name } }","variables":{"x":[${'[],'.repeat(5_000_000)}[]]}}`;
    const graphql = await loopStallMs(() => post(server.graphqlUrl, variables));
    console.log(
      `GraphQL, 15 MB of [] in variables: ${graphql.value.status} after a loop stall of ${graphql.stallMs.toFixed(0)} ms`,
    );
    expect(graphql.value.status).toBe(413);
    expect(codeOf(graphql.value.body)).toBe('PAYLOAD_TOO_LARGE');
    expect(JSON.stringify(graphql.value.body)).toMatch(/MAX_JSON_VALUES/);

    // The same over the websocket: the connection is closed as a bad request before graphql-ws parses the message.
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => {
      const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
      socket.on('message', () =>
        socket.send(
          `{"type":"subscribe","id":"1","payload":{"query":"{ models { name } }","variables":{"x":[${'[],'.repeat(1_000_000)}[]]}}}`,
        ),
      );
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
      socket.on('error', () => undefined);
    });
    expect(closed).toEqual({
      code: 4400,
      reason: `Message has more than ${server.config.maxJsonValues} JSON values (MAX_JSON_VALUES)`,
    });

    // One 40 MB base64 string is one value: it reaches the image checks (not an image: 422), not the structure limit.
    const base64 = await loopStallMs(() =>
      post(rest, JSON.stringify({ image: 'A'.repeat(40_000_000), classes: ['a', 'b'] })),
    );
    console.log(
      `REST, one 40 MB base64 string: ${base64.value.status} after a loop stall of ${base64.stallMs.toFixed(0)} ms`,
    );
    expect(base64.value.status).toBe(422);
    expect(codeOf(base64.value.body)).toBe('BAD_USER_INPUT');
    expect(server.errorLogs()).toEqual([]);
  });
});

describe('strict decoding', () => {
  it('should fail the job of a JPEG whose header promises 6000×6000 pixels over 8×8 of data with BAD_USER_INPUT, not classify grey', async () => {
    const server = await startRecordedServer();
    const pixels = Buffer.alloc(8 * 8 * 3).map((_, i) => (i * 37) % 256);
    const jpeg = Buffer.from(
      await sharp(pixels, { raw: { width: 8, height: 8, channels: 3 } })
        .jpeg()
        .toBuffer(),
    );
    const frame = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    jpeg.writeUInt16BE(6000, frame + 5);
    jpeg.writeUInt16BE(6000, frame + 7);
    expect(jpeg.length).toBeLessThan(400);

    for (const [path, body] of [
      [CLASSIFY_JOB, { image: `data:image/jpeg;base64,${jpeg.toString('base64')}`, classes: ['a cat', 'a dog'] }],
      ['/api/tasks/image-embedding/tiny/jobs', { image: jpeg.toString('base64') }],
    ] as const) {
      const answer = await post(`${server.url}${path}`, JSON.stringify(body));
      // Refused at once, or accepted and then failed: never complete.
      if (answer.status !== 200) {
        expect(codeOf(answer.body)).toBe('BAD_USER_INPUT');
        continue;
      }
      const job = await settledJob(server.server, answer.body.id as string);
      expect(job.status).toBe('failed');
      expect(job.status === 'failed' && job.error).toMatchObject({
        code: 'BAD_USER_INPUT',
        message: expect.stringMatching(/could not be decoded/),
      });
    }
  });
});
