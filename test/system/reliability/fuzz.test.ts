/**
 * Bad input (issue 5): hundreds of seeded hostile and odd cases (test/utils/fuzzCases.ts) through the real
 * GraphQL-over-HTTP, REST and graphql-ws endpoints of one in-process server, while another client's
 * "bystander" jobs run alongside. Must hold: no crash, no unhandled rejection, no error logged; every
 * refusal coded; odd-but-valid images classified; bystanders complete with the results they had before;
 * no stack trace or path in anything a client was sent. FUZZ_SEED replays another sequence.
 */
import { createClient, type Client } from 'graphql-ws';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ErrorCode } from '../../../src/errors.js';
import type { Job } from '../../../src/jobs/types.js';
import {
  generateFuzzCases,
  makeImageSamples,
  type FuzzCase,
  type FuzzCategory,
  type HttpFuzzCase,
  type WsFuzzCase,
} from '../../utils/fuzzCases.js';
import { distinctImages, gql } from '../../utils/testServer.js';
import {
  countCrashes,
  probabilityRows,
  expectClassification,
  leaksIn,
  metricValue,
  mib,
  MiB,
  sampleMemory,
  settledJob,
  startRecordedServer,
  type RecordedServer,
} from './support.js';

const SEED = Number(process.env.FUZZ_SEED ?? 5);
const CONCURRENCY = 6;

/** Codes a refused GraphQL request may carry (never INTERNAL_SERVER_ERROR, OVERLOADED or SHUTTING_DOWN here). */
const GRAPHQL_CODES = new Set([
  ErrorCode.BadUserInput,
  ErrorCode.NotFound,
  ErrorCode.PayloadTooLarge,
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
]);
const REST_CODES = new Set([ErrorCode.BadUserInput, ErrorCode.NotFound, ErrorCode.PayloadTooLarge]);
/** Why an accepted job may fail: its input could not be decoded after all. */
const JOB_FAILURE_CODES = new Set([ErrorCode.BadUserInput]);

const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id status } }';
const JOB_UPDATED =
  'subscription($id: ID!) { jobUpdated(id: $id) { id status error { code } result { images { probabilities } } } }';

/** What one case produced. */
interface Outcome {
  /** Why the case broke its expectation (empty when it held). */
  problems: string[];
  refused: boolean;
  /** The job it created, if any. */
  jobId?: string;
  /** Every body or message the server sent, for the leak scan. */
  sent: string[];
}

interface CaseReport {
  fuzzCase: FuzzCase;
  outcome: Outcome;
  job?: Job;
}

function codesOfGraphqlErrors(errors: unknown): string[] | null {
  if (!Array.isArray(errors) || errors.length === 0) return null;
  return errors.map((error: { extensions?: { code?: unknown } }) =>
    typeof error?.extensions?.code === 'string' ? error.extensions.code : '<none>',
  );
}

async function runHttp(server: RecordedServer, fuzzCase: HttpFuzzCase): Promise<Outcome> {
  const outcome: Outcome = { problems: [], refused: false, sent: [] };
  let response: Response;
  try {
    response = await fetch(`${server.url}${fuzzCase.path}`, {
      method: fuzzCase.method,
      headers: fuzzCase.headers,
      ...(fuzzCase.body === undefined ? {} : { body: fuzzCase.body }),
    });
  } catch (error) {
    outcome.problems.push(`request failed: ${(error as Error).message}`);
    return outcome;
  }
  const text = await response.text();
  outcome.sent.push(text);
  let body: Record<string, unknown> | null;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = null;
  }
  if (response.status >= 500) outcome.problems.push(`server error ${response.status}: ${text.slice(0, 200)}`);
  if (fuzzCase.transport === 'graphql') {
    const codes = codesOfGraphqlErrors(body?.errors);
    const id = (body?.data as { classify?: { id?: unknown } } | null | undefined)?.classify?.id;
    if (typeof id === 'string') outcome.jobId = id;
    if (codes !== null) {
      outcome.refused = true;
      const unknown = codes.filter((code) => !GRAPHQL_CODES.has(code));
      if (unknown.length > 0) outcome.problems.push(`unexpected codes ${unknown.join(', ')}: ${text.slice(0, 300)}`);
    } else if (response.status >= 400) {
      outcome.refused = true;
      outcome.problems.push(`HTTP ${response.status} without coded GraphQL errors: ${text.slice(0, 200)}`);
    }
  } else {
    const error = (body as { error?: { code?: unknown } } | null)?.error;
    const id = (body as { id?: unknown } | null)?.id;
    if (response.status >= 400) {
      outcome.refused = true;
      if (typeof error?.code !== 'string')
        outcome.problems.push(`HTTP ${response.status} without a JSON error.code: ${text.slice(0, 200)}`);
      else if (!REST_CODES.has(error.code as ErrorCode))
        outcome.problems.push(`unexpected code ${error.code}: ${text.slice(0, 200)}`);
    } else if (typeof id === 'string') {
      outcome.jobId = id;
    }
  }
  return outcome;
}

interface WsMessage {
  type?: string;
  id?: string;
  payload?: unknown;
}

function runWs(server: RecordedServer, fuzzCase: WsFuzzCase): Promise<Outcome> {
  const outcome: Outcome = { problems: [], refused: false, sent: [] };
  const protocols = fuzzCase.protocol === null ? [] : [fuzzCase.protocol ?? 'graphql-transport-ws'];
  const subscribeIds = new Set(
    fuzzCase.frames.flatMap((frame) => {
      if (typeof frame.data !== 'string') return [];
      try {
        const message = JSON.parse(frame.data) as WsMessage;
        return message.type === 'subscribe' && typeof message.id === 'string' ? [message.id] : [];
      } catch {
        return [];
      }
    }),
  );
  const expectation = fuzzCase.expect;
  return new Promise((resolve) => {
    const socket = new WebSocket(`${server.wsUrl}`, protocols);
    const finished = new Set<string>();
    let pinged = false;
    let closeCode: number | null = null;
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => {});
      if (socket.readyState === WebSocket.OPEN) socket.close(1000);
      switch (expectation.kind) {
        case 'ws-closes':
          if (closeCode === null || !expectation.codes.includes(closeCode))
            outcome.problems.push(`expected close ${expectation.codes.join('/')}, got ${closeCode ?? 'still open'}`);
          else outcome.refused = true;
          break;
        case 'ws-errors':
        case 'ws-stays-open':
          if (closeCode !== null) outcome.problems.push(`socket closed with ${closeCode}`);
          if (!pinged) outcome.problems.push('the socket did not answer a ping afterwards');
          if (expectation.kind === 'ws-errors') {
            outcome.refused = true;
            if (finished.size < subscribeIds.size)
              outcome.problems.push(`only ${finished.size} of ${subscribeIds.size} subscriptions answered`);
          }
          break;
        default:
          if (closeCode !== null) outcome.problems.push(`socket closed with ${closeCode}`);
          if (outcome.jobId === undefined && !outcome.refused) outcome.problems.push('no job and no error');
      }
      resolve(outcome);
    };
    const watch = (ms: number): void => {
      clearTimeout(timer);
      timer = setTimeout(done, ms);
    };
    const sendAll = (when: 'open' | 'ack'): void => {
      for (const frame of fuzzCase.frames) {
        if (frame.when === when) socket.send(frame.data, { binary: frame.binary === true });
      }
    };
    const maybePing = (): void => {
      if (subscribeIds.size > 0 && finished.size < subscribeIds.size) return;
      if (expectation.kind === 'ws-errors' || expectation.kind === 'ws-stays-open')
        socket.send(JSON.stringify({ type: 'ping' }));
      else done();
    };
    socket.on('open', () => {
      sendAll('open');
      watch(fuzzCase.watchMs ?? 1_500);
    });
    socket.on('message', (data) => {
      const text = String(data);
      outcome.sent.push(text);
      let message: WsMessage;
      try {
        message = JSON.parse(text) as WsMessage;
      } catch {
        outcome.problems.push(`not JSON: ${text.slice(0, 100)}`);
        return;
      }
      switch (message.type) {
        case 'connection_ack':
          sendAll('ack');
          if (subscribeIds.size === 0) setTimeout(maybePing, 100);
          return;
        case 'pong':
          pinged = true;
          if (expectation.kind === 'ws-errors' || expectation.kind === 'ws-stays-open') done();
          return;
        case 'error': {
          const codes = codesOfGraphqlErrors(message.payload) ?? ['<no errors>'];
          const unknown = codes.filter((code) => !GRAPHQL_CODES.has(code));
          if (unknown.length > 0)
            outcome.problems.push(`unexpected codes ${unknown.join(', ')}: ${text.slice(0, 200)}`);
          outcome.refused = true;
          finished.add(message.id ?? '');
          maybePing();
          return;
        }
        case 'next': {
          const payload = message.payload as { data?: { classify?: { id?: string } } | null; errors?: unknown };
          const codes = codesOfGraphqlErrors(payload.errors);
          if (codes !== null) {
            outcome.refused = true;
            const unknown = codes.filter((code) => !GRAPHQL_CODES.has(code));
            if (unknown.length > 0)
              outcome.problems.push(`unexpected codes ${unknown.join(', ')}: ${text.slice(0, 200)}`);
          }
          const id = payload.data?.classify?.id;
          if (typeof id === 'string') outcome.jobId = id;
          return;
        }
        case 'complete':
          finished.add(message.id ?? '');
          maybePing();
          return;
        default:
          return;
      }
    });
    socket.on('unexpected-response', (_request, response) => {
      outcome.problems.push(`upgrade refused with HTTP ${response.statusCode}`);
      done();
    });
    socket.on('close', (code, reason) => {
      closeCode = code;
      outcome.sent.push(String(reason));
      done();
    });
    socket.on('error', () => {
      // A close follows (or the upgrade was refused, reported above).
    });
  });
}

function checkJob(fuzzCase: FuzzCase, job: Job): string[] {
  const expectation = fuzzCase.expect;
  if (expectation.kind === 'completes') {
    if (job.status !== 'complete')
      return [
        `expected COMPLETE, got ${job.status}${job.status === 'failed' ? ` (${job.error.code}: ${job.error.message})` : ''}`,
      ];
    try {
      expectClassification(probabilityRows(job.result), expectation.images, expectation.classes);
    } catch (error) {
      return [`wrong result shape: ${(error as Error).message}`];
    }
    return [];
  }
  if (expectation.kind === 'settles' || expectation.kind === 'answers') {
    if (job.status === 'complete') return [];
    if (job.status === 'failed' && JOB_FAILURE_CODES.has(job.error.code)) return [];
    return [
      `expected COMPLETE or FAILED with ${[...JOB_FAILURE_CODES].join('/')}, got ${job.status}${job.status === 'failed' ? ` (${job.error.code}: ${job.error.message})` : ''}`,
    ];
  }
  return [`expected no job (${expectation.kind}), but job ${job.id} was created`];
}

async function runPool<T, R>(
  items: readonly T[],
  concurrency: number,
  run: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await run(items[index] as T, index);
      }
    }),
  );
  return results;
}

/** Another client, behaving well: its jobs must come out as if nobody else were there. */
interface Bystander {
  input: { images: string[]; classes: string[] };
  baseline: number[][];
}

async function runBystanderJob(
  server: RecordedServer,
  client: Client,
  bystander: Bystander,
  index: number,
): Promise<number[][]> {
  const { images, classes } = bystander.input;
  if (index % 2 === 1) {
    // REST client: submit, then poll the seed's job route.
    const response = await fetch(`${server.url}/api/tasks/zero-shot-image-classification/batched/tiny/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: images, classes }),
    });
    const { id } = (await response.json()) as { id: string };
    for (;;) {
      const state = (await (
        await fetch(`${server.url}/api/tasks/zero-shot-image-classification/batched/jobs/${id}`)
      ).json()) as {
        status: string;
        result?: { probabilities: number[] }[];
      };
      if (state.status === 'complete') return (state.result ?? []).map((row) => row.probabilities);
      if (state.status === 'failed') throw new Error(`bystander REST job ${id} failed`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  // GraphQL client: submit over HTTP, follow over its long-lived graphql-ws connection.
  const submitted = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
    input: { images, classes },
  });
  const id = submitted.body.data?.classify.id;
  if (id === undefined) throw new Error(`bystander job refused: ${JSON.stringify(submitted.body)}`);
  return new Promise((resolve, reject) => {
    let last: { status: string; result?: { images: { probabilities: number[] }[] } | null } | undefined;
    client.subscribe<{ jobUpdated: NonNullable<typeof last> }>(
      { query: JOB_UPDATED, variables: { id } },
      {
        next: (message) => {
          last = message.data?.jobUpdated ?? last;
        },
        error: reject,
        complete: () => {
          if (last?.status !== 'COMPLETE' || !last.result)
            reject(new Error(`bystander job ${id} ended ${last?.status}`));
          else resolve(last.result.images.map((image) => image.probabilities));
        },
      },
    );
  });
}

describe('bad input (fuzz)', () => {
  let server: RecordedServer;
  let cases: FuzzCase[];
  /** Listeners on the job events bus before any client came (metrics listens for good). */
  let listenersBefore = 0;

  beforeAll(async () => {
    // Small image and body limits keep the oversized cases cheap; everything else is the default.
    server = await startRecordedServer({ maxImageBytes: 256 * 1024, maxBodyBytes: MiB });
    const samples = await makeImageSamples();
    const { config } = server;
    cases = generateFuzzCases({
      seed: SEED,
      samples,
      modelName: 'tiny',
      maxBodyBytes: config.maxBodyBytes,
      maxImageBytes: config.maxImageBytes,
      maxImagesPerJob: config.maxImagesPerJob,
      maxClassesPerJob: config.maxClassesPerJob,
      maxClassLength: config.maxClassLength,
      maxQueryDepth: config.maxQueryDepth,
      maxAliases: config.maxAliases,
    });
  });

  it('should refuse every hostile case with a code, classify every odd valid image, and leave other clients unaffected', async () => {
    const crashes = countCrashes();
    listenersBefore = server.server.jobs.events.listenerCount('jobUpdated');
    const memory = sampleMemory(25);
    const started = performance.now();
    try {
      // The bystanders' expected results, computed before anything hostile happened.
      const bystanderImages = await distinctImages(8, 70_000);
      const bystanders: Bystander[] = [];
      for (let i = 0; i < 4; i += 1) {
        const input = {
          images: bystanderImages.slice(2 * i, 2 * i + 2),
          classes: [`cat ${i}`, `dog ${i}`, `bird ${i}`],
        };
        const first = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, { input });
        const job = await settledJob(server.server, first.body.data?.classify.id ?? '');
        if (job.status !== 'complete') throw new Error(`baseline job ${job.status}`);
        bystanders.push({ input, baseline: probabilityRows(job.result) });
      }
      const client = createClient({
        url: server.wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: () => {},
      });
      const bystanderRuns: Promise<number[][]>[] = [];
      const startBystander = (): void => {
        const index = bystanderRuns.length;
        bystanderRuns.push(runBystanderJob(server, client, bystanders[index % bystanders.length] as Bystander, index));
      };
      for (let i = 0; i < 8; i += 1) startBystander();

      const reports = await runPool(cases, CONCURRENCY, async (fuzzCase, index): Promise<CaseReport> => {
        // More bystanders join while the fuzzing runs.
        if (index % 25 === 0) startBystander();
        const outcome = fuzzCase.transport === 'ws' ? await runWs(server, fuzzCase) : await runHttp(server, fuzzCase);
        const { expect: expectation } = fuzzCase;
        if (expectation.kind === 'refused' && !outcome.refused)
          outcome.problems.push(
            `expected a refusal, got ${outcome.jobId === undefined ? 'an answer' : 'a job'}: ${outcome.sent[0]?.slice(0, 200) ?? ''}`,
          );
        if (expectation.kind === 'completes' && outcome.jobId === undefined)
          outcome.problems.push(`expected a job, got: ${outcome.sent.join(' | ').slice(0, 300)}`);
        if (outcome.jobId === undefined) return { fuzzCase, outcome };
        const job = await settledJob(server.server, outcome.jobId);
        outcome.problems.push(...checkJob(fuzzCase, job));
        if (job.status === 'failed') outcome.sent.push(JSON.stringify(job.error));
        return { fuzzCase, outcome, job };
      });

      const bystanderResults = await Promise.allSettled(bystanderRuns);
      await client.dispose();
      const elapsedMs = performance.now() - started;
      const samples = memory.stop();

      // Per category: what was tried and what came of it.
      const table = new Map<
        FuzzCategory,
        { tried: number; refused: number; complete: number; failed: number; problems: number }
      >();
      for (const { fuzzCase, outcome, job } of reports) {
        const row = table.get(fuzzCase.category) ?? { tried: 0, refused: 0, complete: 0, failed: 0, problems: 0 };
        row.tried += 1;
        if (outcome.refused) row.refused += 1;
        if (job?.status === 'complete') row.complete += 1;
        if (job?.status === 'failed') row.failed += 1;
        if (outcome.problems.length > 0) row.problems += 1;
        table.set(fuzzCase.category, row);
      }
      const byTransport = { graphql: 0, rest: 0, ws: 0 };
      for (const fuzzCase of cases) byTransport[fuzzCase.transport] += 1;
      const peakRss = Math.max(...samples.map((s) => s.rss));
      console.log(
        [
          `fuzz (seed ${SEED}): ${cases.length} cases in ${(elapsedMs / 1000).toFixed(1)} s (GraphQL HTTP ${byTransport.graphql}, REST ${byTransport.rest}, graphql-ws ${byTransport.ws}), ${bystanderRuns.length} bystander jobs`,
          ...[...table].map(
            ([category, row]) =>
              `  ${category.padEnd(22)} tried ${String(row.tried).padStart(3)}  refused ${String(row.refused).padStart(3)}  complete ${String(row.complete).padStart(3)}  failed ${String(row.failed).padStart(3)}  problems ${row.problems}`,
          ),
          `  memory: RSS ${mib(samples[0]?.rss ?? 0)} → peak ${mib(peakRss)}; heapUsed peak ${mib(Math.max(...samples.map((s) => s.heapUsed)))}`,
        ].join('\n'),
      );

      const problems = reports
        .filter((report) => report.outcome.problems.length > 0)
        .map(
          (report) => `${report.fuzzCase.category} / ${report.fuzzCase.name}: ${report.outcome.problems.join('; ')}`,
        );
      expect(problems).toEqual([]);
      expect(cases.length).toBeGreaterThanOrEqual(500);

      // Another client's jobs: all complete, with the results they had before the fuzzing.
      const failedBystanders = bystanderResults
        .filter((result) => result.status === 'rejected')
        .map((result) => String(result.reason));
      expect(failedBystanders).toEqual([]);
      bystanderResults.forEach((result, index) => {
        const { baseline, input } = bystanders[index % bystanders.length] as Bystander;
        const rows = (result as PromiseFulfilledResult<number[][]>).value;
        expectClassification(rows, input.images.length, input.classes.length);
        rows.forEach((row, i) => row.forEach((p, j) => expect(p).toBeCloseTo(baseline[i]?.[j] ?? NaN, 5)));
      });

      // Nothing a client was sent names a server path or shows a stack frame.
      const leaks = reports.flatMap((report) =>
        report.outcome.sent.flatMap((text) =>
          leaksIn(text).map((pattern) => `${report.fuzzCase.name}: ${pattern} in ${text.slice(0, 200)}`),
        ),
      );
      expect(leaks).toEqual([]);

      // Decompression bombs were refused from their headers: a decoded 20000×20000 image alone is 1.2 GB.
      expect(peakRss - (samples[0]?.rss ?? 0)).toBeLessThan(600 * MiB);
    } finally {
      memory.stop();
      crashes.dispose();
    }
    expect(crashes.rejections.map(String)).toEqual([]);
    expect(crashes.exceptions.map(String)).toEqual([]);
    expect(server.errorLogs().map((entry) => `${entry.msg}: ${entry.err?.message ?? ''}`)).toEqual([]);
  });

  it('should still be healthy, run a normal job on every API, and hold no leftover state afterwards', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    const [image] = await distinctImages(1, 80_000);
    const viaGraphql = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
      input: { image, classes: ['a', 'b'] },
    });
    const job = await settledJob(server.server, viaGraphql.body.data?.classify.id ?? '');
    expect(job.status).toBe('complete');
    const viaRest = await fetch(`${server.url}/api/legacy/tasks/zero-shot-image-classification/tiny/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image, classes: ['a', 'b'] }),
    });
    expect(viaRest.status).toBe(200);
    expectClassification([((await viaRest.json()) as { probabilities: number[] }).probabilities], 1, 2);

    const stats = server.server.jobs.stats();
    expect({
      queued: stats.queued,
      running: stats.running,
      pendingImages: stats.pendingImages,
      pendingImageBytes: stats.pendingImageBytes,
    }).toEqual({
      queued: 0,
      running: 0,
      pendingImages: 0,
      pendingImageBytes: 0,
    });
    // Every socket the fuzzing opened is gone, with its subscriptions and listeners.
    await expect.poll(() => metricValue(server.url, 'clip_websocket_connections'), { timeout: 5_000 }).toBe(0);
    expect(server.server.jobs.stats().watchers).toBe(0);
    expect(server.server.jobs.events.listenerCount('jobUpdated')).toBe(listenersBefore);
    expect(server.server.clip!.queuedImages()).toBe(0);
  });
});
