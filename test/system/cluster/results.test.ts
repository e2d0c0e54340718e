/**
 * Results over Redis equal the in-memory backend's (issue 9), through real servers: the same images, classes
 * and texts through a ROLE=api + ROLE=worker pair, and through ROLE=all with REDIS_URL, give the probabilities
 * and the image and text embeddings that ROLE=all in memory gives, to 1e-5. Every deployment gets all jobs at
 * once, so its worker (MAX_CONCURRENT_JOBS=4) fills batches with images of several jobs; each batches them its
 * own way, which must not change a number. One redis-server; the two Redis deployments under prefixes of their own.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcessServer, type ProcessServer } from '../../utils/processServer.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../../utils/redisServer.js';
import { distinctImages, gql, tinyImages, waitFor } from '../../utils/testServer.js';

const REDIS = redisServerPath();
if (REDIS === null)
  console.log('skipping the Redis results test: redis-server is not installed (apt-get install redis-server)');

const TOLERANCE = 1e-5;
const JOB =
  'query($id: ID!) { job(id: $id) { status error { code message } result { images { probabilities } } embeddings { vectors } } }';

/** What one deployment answered for the job set, in submission order. */
interface Answers {
  probabilities: number[][][];
  imageVectors: number[][];
  textVectors: number[][];
}

interface JobAnswer {
  status: string;
  error: { code: string; message: string } | null;
  result: { images: { probabilities: number[] }[] } | null;
  embeddings: { vectors: number[][] } | null;
}

let redis: RedisServer;
let images: string[];
const deployments: { name: string; front: ProcessServer }[] = [];

/** Creates a job with `mutation` on `front` and resolves with its completed state. */
async function runJob(
  front: ProcessServer,
  mutation: 'classify' | 'embedImages' | 'embedTexts',
  input: Record<string, unknown>,
): Promise<JobAnswer> {
  const inputType = { classify: 'ClassifyInput', embedImages: 'EmbedImagesInput', embedTexts: 'EmbedTextsInput' }[
    mutation
  ];
  const created = await gql<Record<string, { id: string }>>(
    front.url,
    `mutation($input: ${inputType}!) { ${mutation}(input: $input) { id } }`,
    { input },
  );
  const id = created.body.data?.[mutation]?.id;
  if (id === undefined) throw new Error(`${mutation} refused: ${JSON.stringify(created.body).slice(0, 300)}`);
  const job = await waitFor(
    async () => {
      const answer = (await gql<{ job: JobAnswer | null }>(front.url, JOB, { id })).body.data?.job;
      return answer !== undefined && answer !== null && answer.status !== 'QUEUED' && answer.status !== 'RUNNING'
        ? answer
        : undefined;
    },
    60_000,
    50,
  );
  expect(job, `job ${id} on ${front.url}`).toMatchObject({ status: 'COMPLETE', error: null });
  return job;
}

/** The job set: classifications over overlapping image subsets (one with a prompt template), one image-embedding and one text-embedding job. */
async function answersOf(front: ProcessServer): Promise<Answers> {
  const [a, b, c, d, imageJob, textJob] = await Promise.all([
    runJob(front, 'classify', { images: images.slice(0, 5), classes: ['a cat', 'a dog', 'a car'] }),
    runJob(front, 'classify', {
      images: images.slice(3, 9),
      classes: ['red', 'green', 'blue', 'grey'],
      config: { promptTemplate: 'a photo of something {}.' },
    }),
    runJob(front, 'classify', { images: images.slice(6), classes: ['stripes', 'dots'] }),
    runJob(front, 'classify', { images, classes: ['a cat', 'a dog', 'a bird', 'a fish', 'a horse'] }),
    runJob(front, 'embedImages', { images }),
    runJob(front, 'embedTexts', { texts: ['a photo of a cat', 'a dog', 'stripes', 'a photo of a cat'] }),
  ]);
  return {
    probabilities: [a, b, c, d].map((job) => (job.result?.images ?? []).map((image) => image.probabilities)),
    imageVectors: imageJob.embeddings?.vectors ?? [],
    textVectors: textJob.embeddings?.vectors ?? [],
  };
}

/** Every number of `actual` within TOLERANCE of `expected`, shapes equal; names the first that is not. */
function expectClose(actual: unknown, expected: unknown, where: string): void {
  if (typeof expected === 'number') {
    expect(typeof actual, where).toBe('number');
    expect(Math.abs((actual as number) - expected), `${where}: ${String(actual)} vs ${expected}`).toBeLessThanOrEqual(
      TOLERANCE,
    );
    return;
  }
  expect(Array.isArray(actual), where).toBe(true);
  const rows = expected as unknown[];
  expect((actual as unknown[]).length, `${where}: length`).toBe(rows.length);
  rows.forEach((row, index) => expectClose((actual as unknown[])[index], row, `${where}[${index}]`));
}

describe.skipIf(REDIS === null)('results over Redis', () => {
  beforeAll(async () => {
    redis = await startRedisServer();
    images = [...(await distinctImages(8, 4242)), ...(await tinyImages())];
    const onRedis = (prefix: string): Record<string, string> => ({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix });
    const [memory, api, , all] = await Promise.all([
      startProcessServer({ MAX_CONCURRENT_JOBS: '4' }),
      startProcessServer({ ...onRedis('pair'), ROLE: 'api' }),
      startProcessServer({ ...onRedis('pair'), ROLE: 'worker', MAX_CONCURRENT_JOBS: '4' }, undefined, 120_000),
      startProcessServer({ ...onRedis('all'), MAX_CONCURRENT_JOBS: '4' }),
    ]);
    deployments.push(
      { name: 'in memory (ROLE=all)', front: memory },
      { name: 'ROLE=api + ROLE=worker', front: api },
      { name: 'ROLE=all with REDIS_URL', front: all },
    );
  }, 240_000);

  afterAll(async () => {
    await redis?.dispose();
  });

  it('should give the in-memory backend’s probabilities and embeddings, to 1e-5, on ROLE=api + ROLE=worker and on ROLE=all with REDIS_URL', async () => {
    const [memory, ...overRedis] = await Promise.all(
      deployments.map(async ({ name, front }) => ({ name, answers: await answersOf(front) })),
    );
    const reference = memory!.answers;
    // The reference is a real answer: one row per image, distributions over the classes, unit vectors.
    expect(reference.probabilities.map((job) => job.length)).toEqual([5, 6, images.length - 6, images.length]);
    for (const row of reference.probabilities.flat()) expect(row.reduce((sum, p) => sum + p, 0)).toBeCloseTo(1, 5);
    expect(reference.imageVectors).toHaveLength(images.length);
    expect(reference.textVectors).toHaveLength(4);
    for (const vector of [...reference.imageVectors, ...reference.textVectors])
      expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
    // Duplicated text, same vector: the reference is deterministic within a job too.
    expectClose(reference.textVectors[3], reference.textVectors[0], 'reference text 3 vs text 0');
    // The Redis deployments did keep their jobs in Redis (6 each), under their own prefixes.
    const client = new Redis(redis.url);
    try {
      for (const prefix of ['pair', 'all']) expect(await client.keys(`${prefix}:job:*`), prefix).toHaveLength(6);
    } finally {
      client.disconnect();
    }
    for (const { name, answers } of overRedis) {
      expectClose(answers.probabilities, reference.probabilities, `${name}: probabilities`);
      expectClose(answers.imageVectors, reference.imageVectors, `${name}: image embeddings`);
      expectClose(answers.textVectors, reference.textVectors, `${name}: text embeddings`);
    }
  }, 120_000);
});
