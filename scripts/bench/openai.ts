/**
 * The OpenAI-compatible route against the GraphQL embedding route on one server: 16 clients, 8 images a job,
 * `POST /v1/embeddings` (synchronous: one request, the vectors in its answer) versus `embedImages` (mutation, then
 * the result over graphql-ws), alternating round by round. The work underneath is the same image-embedding job, so
 * the ratio of their images/s says what the OpenAI adapter costs (goal ≥ 0.95).
 */
import { median, percentile } from './stats.js';
import type { BenchImage } from './images.js';
import { runLoad, type BenchServer } from './server.js';

export interface OpenAiRow {
  rounds: number;
  graphql: { imagesPerSecond: number; p50Ms: number; samples: number[] };
  openai: { imagesPerSecond: number; p50Ms: number; samples: number[] };
  ratio: number;
}

export interface OpenAiRowOptions {
  rounds: number;
  /** Jobs per measured run. */
  jobs: number;
  /** The model name `/v1/embeddings` asks for. */
  model: string;
  nextImages: (count: number) => BenchImage[];
  log: (message: string) => void;
}

const CLIENTS = 16;
const IMAGES_PER_JOB = 8;

/** `clients` clients, each sending `/v1/embeddings` requests back to back until `jobs` have been answered. */
export async function runOpenAiLoad(
  server: BenchServer,
  clients: number,
  jobs: number,
  model: string,
  nextImages: (count: number) => BenchImage[],
): Promise<{ imagesPerSecond: number; p50Ms: number }> {
  const latencies: number[] = [];
  let next = 0;
  let images = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < jobs) {
        next += 1;
        const input = nextImages(IMAGES_PER_JOB).map((image) => image.dataUrl);
        const requestStarted = performance.now();
        const response = await fetch(`${server.url}/v1/embeddings`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model, input }),
        });
        const body = (await response.json()) as { data?: { embedding: number[] }[]; error?: unknown };
        if (response.status !== 200 || body.data?.length !== input.length)
          throw new Error(`/v1/embeddings answered ${response.status}: ${JSON.stringify(body.error)}`);
        latencies.push(performance.now() - requestStarted);
        images += input.length;
      }
    }),
  );
  return { imagesPerSecond: images / ((performance.now() - started) / 1000), p50Ms: percentile(latencies, 50) };
}

export async function benchOpenAiRow(server: BenchServer, options: OpenAiRowOptions): Promise<OpenAiRow> {
  const graphql = (jobs: number) =>
    runLoad(
      server,
      CLIENTS,
      jobs,
      () => ({ images: options.nextImages(IMAGES_PER_JOB), classes: [] }),
      'json',
      'embed-images',
    );
  const openai = (jobs: number) => runOpenAiLoad(server, CLIENTS, jobs, options.model, options.nextImages);
  await graphql(Math.min(8, options.jobs));
  await openai(Math.min(8, options.jobs));
  const samples = { graphql: [] as number[], openai: [] as number[] };
  const latencies = { graphql: [] as number[], openai: [] as number[] };
  for (let round = 1; round <= options.rounds; round += 1) {
    // Alternate which goes first, so neither always meets a warmer (or busier) machine.
    const order = round % 2 === 1 ? (['graphql', 'openai'] as const) : (['openai', 'graphql'] as const);
    for (const kind of order) {
      options.log(
        `round ${round}/${options.rounds}: ${CLIENTS} clients × ${IMAGES_PER_JOB}-image ${kind === 'graphql' ? 'GraphQL embedImages' : '/v1/embeddings'} jobs`,
      );
      const result = await (kind === 'graphql' ? graphql(options.jobs) : openai(options.jobs));
      samples[kind].push(result.imagesPerSecond);
      latencies[kind].push(result.p50Ms);
    }
  }
  const row = (kind: 'graphql' | 'openai') => ({
    imagesPerSecond: median(samples[kind]),
    p50Ms: median(latencies[kind]),
    samples: samples[kind],
  });
  const result = { rounds: options.rounds, graphql: row('graphql'), openai: row('openai'), ratio: 0 };
  result.ratio = result.openai.imagesPerSecond / result.graphql.imagesPerSecond;
  return result;
}

export function formatOpenAiRow(row: OpenAiRow): string {
  const fmt = (value: number, digits = 1): string => value.toFixed(digits);
  return [
    `| ${CLIENTS} clients, ${IMAGES_PER_JOB} images a request, base64 JSON, image cache off | images/s | p50 ms |`,
    '| --- | ---: | ---: |',
    `| GraphQL embedImages (mutation + graphql-ws, vectors received) | ${fmt(row.graphql.imagesPerSecond)} | ${fmt(row.graphql.p50Ms, 0)} |`,
    `| POST /v1/embeddings (vectors in the answer) | ${fmt(row.openai.imagesPerSecond)} | ${fmt(row.openai.p50Ms, 0)} |`,
    '',
    '| target | measured | wanted | met |',
    '| --- | ---: | --- | --- |',
    `| /v1/embeddings ÷ GraphQL embedImages, images/s at ${CLIENTS} clients | ${fmt(row.ratio, 3)} | ≥ 0.95 | ${row.ratio >= 0.95 ? 'yes' : 'no'} |`,
  ].join('\n');
}
