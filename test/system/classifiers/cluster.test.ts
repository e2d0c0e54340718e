/**
 * Stored classifiers in the worker role, as processes on a real redis-server: an API (ROLE=api, no model) and two
 * workers (ROLE=worker). The API creates a classifier and one worker builds it (the other waits for its result); the
 * build's progress and its READY reach the API's classifierUpdated through Redis; classify(classifier) on the API
 * gives the probabilities of the same classes and templates inline (within 1e-5); restarted workers find the
 * classifier READY and score with it without running the text model (their text batches counted on /metrics).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectBuildFollowedToReady } from '../../utils/classifierBuild.js';
import { metricValue } from '../../utils/metrics.js';
import { startProcessServer, type ProcessServer } from '../../utils/processServer.js';
import { redisServerPath, startRedisServer, type RedisServer } from '../../utils/redisServer.js';
import { distinctImages, gql, subscribe, waitFor } from '../../utils/testServer.js';

const REDIS = redisServerPath();
if (REDIS === null)
  console.log('skipping the classifier cluster test: redis-server is not installed (apt-get install redis-server)');

const CLASSIFIER_FIELDS = 'id status builtPrompts totalPrompts model error { code message }';
const JOB_FIELDS = 'id status classes classifier error { code message } result { images { probabilities } }';
const CLASSES = Array.from({ length: 150 }, (_, i) => `thing number ${i}`);
const TEMPLATES = ['a photo of a {}.', 'a sketch of a {}.', 'a close-up of a {}.', '{}'];

interface ClassifierState {
  id: string;
  status: string;
  builtPrompts: number;
  totalPrompts: number;
  model: string;
  error: { code: string; message: string } | null;
}

interface JobState {
  id: string;
  status: string;
  classes: string[];
  classifier: string | null;
  error: { code: string } | null;
  result: { images: { probabilities: number[] }[] } | null;
}

let redis: RedisServer;
let env: Record<string, string>;
let api: ProcessServer;
let workers: ProcessServer[] = [];
let images: string[];

function startWorker(): Promise<ProcessServer> {
  return startProcessServer({ ...env, ROLE: 'worker' }, undefined, 120_000);
}

/** Submits a classification on the API and follows it to its end over graphql-ws. */
async function classify(input: Record<string, unknown>): Promise<JobState> {
  const { body } = await gql<{ classify: JobState }>(
    api.url,
    'mutation ($input: ClassifyInput!) { classify(input: $input) { id status } }',
    { input },
  );
  expect(body.errors).toBeUndefined();
  const followed = await subscribe<{ jobUpdated: JobState }>(
    api.wsUrl,
    `subscription ($id: ID!) { jobUpdated(id: $id) { ${JOB_FIELDS} } }`,
    { id: body.data!.classify.id },
    { timeoutMs: 60_000 },
  );
  expect(followed.error).toBeUndefined();
  return followed.messages.at(-1)!.data!.jobUpdated;
}

async function classifierState(id: string): Promise<ClassifierState | null> {
  const { body } = await gql<{ classifier: ClassifierState | null }>(
    api.url,
    `query ($id: ID!) { classifier(id: $id) { ${CLASSIFIER_FIELDS} } }`,
    { id },
  );
  expect(body.errors).toBeUndefined();
  return body.data!.classifier;
}

function expectClose(actual: number[][], expected: number[][]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((row, i) => row.forEach((value, j) => expect(Math.abs(value - expected[i]![j]!)).toBeLessThan(1e-5)));
}

const probabilitiesOf = (job: JobState): number[][] => job.result!.images.map((image) => image.probabilities);

describe.skipIf(REDIS === null)('classifiers on an API and two workers over Redis', () => {
  beforeAll(async () => {
    redis = await startRedisServer();
    env = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'classifiers-cluster',
      MAX_TEXT_BATCH_SIZE: '8',
      LOG_LEVEL: 'info',
    };
    const started = await Promise.all([
      startProcessServer({ ...env, ROLE: 'api' }, undefined, 120_000),
      startWorker(),
      startWorker(),
    ]);
    api = started[0];
    workers = started.slice(1);
    images = await distinctImages(3, 4200);
  }, 240_000);

  afterAll(async () => {
    for (const server of [api, ...workers]) server?.child.kill('SIGKILL');
    await redis?.dispose();
  });

  it('should build on one worker, with its progress seen by the API, and equal the same classes and templates inline', async () => {
    const { body } = await gql<{ createClassifier: ClassifierState }>(
      api.url,
      `mutation ($input: CreateClassifierInput!) { createClassifier(input: $input) { ${CLASSIFIER_FIELDS} } }`,
      { input: { classes: CLASSES, prompt: { templates: TEMPLATES } } },
    );
    expect(body.errors).toBeUndefined();
    const created = body.data!.createClassifier;
    expect(created).toMatchObject({ status: 'BUILDING', totalPrompts: 600, model: 'tiny' });
    await expectBuildFollowedToReady(api.wsUrl, created.id, 600, 90_000);
    // The worker's log line travels on its own pipe, beside the READY the API pushed: wait for it to be read.
    const builds = (): unknown[] =>
      workers.flatMap((worker) =>
        worker.logs.filter((line) => line.msg === 'classifier built' && line.classifier === created.id),
      );
    await waitFor(() => (builds().length > 0 ? true : undefined), 10_000);
    expect(builds()).toHaveLength(1);

    const stored = await classify({ images, classifier: created.id });
    expect(stored).toMatchObject({ status: 'COMPLETE', classes: CLASSES, classifier: created.id });
    const inline = await classify({ images, classes: CLASSES, prompt: { templates: TEMPLATES } });
    expect(inline.status).toBe('COMPLETE');
    expectClose(probabilitiesOf(stored), probabilitiesOf(inline));

    // Restarted workers find the weights in Redis: READY, the same probabilities, and no text batch run.
    for (const worker of workers) worker.child.kill('SIGTERM');
    for (const worker of workers) expect(await worker.exited).toBe(0);
    workers = await Promise.all([startWorker(), startWorker()]);
    expect(await classifierState(created.id)).toMatchObject({ status: 'READY', builtPrompts: 600 });
    const after = await classify({ images, classifier: created.id });
    expect(after.status).toBe('COMPLETE');
    expectClose(probabilitiesOf(after), probabilitiesOf(stored));
    const batches = async (kind: string): Promise<number> => {
      const counts = await Promise.all(
        workers.map((worker) => metricValue(worker.url, 'clip_batch_size_count', `model="tiny",kind="${kind}"`)),
      );
      return counts.reduce<number>((sum, count) => sum + (count ?? 0), 0);
    };
    expect(await batches('text')).toBe(0);
    expect(await batches('image')).toBeGreaterThan(0);
  }, 240_000);
});
