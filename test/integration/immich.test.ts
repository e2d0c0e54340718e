/**
 * The seed's model by FES's name, end to end through real servers (issue 8 acceptance): an immich-layout XLM-R model
 * (generated: random weights, fixed batch 1, external data) served as `CLIP_MODELS=open-clip-vit-b32=<dir>`, and the
 * catalogue name `xlm-roberta-base-ViT-B-32` downloaded from a fake hub through its file listing; GraphQL and REST jobs,
 * and a REST client asking for `open-clip-vit-b32` gets probabilities. Beside it, SigLIP in Hugging Face's layout by its
 * catalogue name from the fake hub: its trained scale and bias read from the combined graph the download fetched.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClassifyDocument, JobDocument, ModelsDocument } from '../generated/graphql.js';
import { startFakeHub, type FakeHub } from '../utils/fakeHub.js';
import { HF_SIGLIP_TEST_MODEL_DIR, IMMICH_TEST_MODELS } from '../utils/testModel.js';
import { distinctImages, gql, startTestServer, waitFor, type TestServer } from '../utils/testServer.js';

const TASK = 'zero-shot-image-classification';
const CLASSES = ['eine Katze', 'un chien', 'a red car', '一辆自行车'];

async function restJob(
  server: TestServer,
  model: string,
  body: unknown,
): Promise<{ status: string; result?: { probabilities: number[] } }> {
  const created = await fetch(`${server.url}/api/tasks/${TASK}/${model}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(created.status).toBe(200);
  const { id } = (await created.json()) as { id: string };
  return waitFor(async () => {
    const answer = (await (await fetch(`${server.url}/api/tasks/${TASK}/jobs/${id}`)).json()) as {
      status: string;
      result?: { probabilities: number[] };
    };
    return answer.status === 'complete' || answer.status === 'failed' ? answer : undefined;
  }, 60_000);
}

function expectDistribution(values: readonly number[] | undefined, length: number): void {
  expect(values).toHaveLength(length);
  for (const value of values!) expect(value).toBeGreaterThan(0);
  expect(values!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
}

async function graphqlJob(server: TestServer, model: string, image: string): Promise<number[]> {
  const { body } = await gql(server.url, ClassifyDocument, { input: { image, classes: CLASSES, model } });
  expect(body.errors).toBeUndefined();
  const id = body.data!.classify.id;
  const job = await waitFor(async () => {
    const answer = await gql(server.url, JobDocument, { id });
    const status = answer.body.data?.job?.status;
    return status === 'COMPLETE' || status === 'FAILED' ? answer.body.data!.job! : undefined;
  }, 60_000);
  expect(job.error).toBeNull();
  return job.result!.images[0]!.probabilities;
}

describe("the seed's multilingual model by FES's name", () => {
  let server: TestServer;
  let images: string[];

  beforeAll(async () => {
    images = await distinctImages(3, 800);
    server = await startTestServer({
      clipModels: [{ name: 'open-clip-vit-b32', source: IMMICH_TEST_MODELS.xlmr.dir }],
    });
    await waitFor(async () => {
      const { body } = await gql(server.url, ModelsDocument);
      const model = body.data?.models.find((m) => m.name === 'open-clip-vit-b32');
      if (model?.status === 'FAILED') throw new Error(`open-clip-vit-b32 failed to load: ${model.error}`);
      return model?.status === 'READY' ? model : undefined;
    }, 60_000);
  });

  it('should show the model in GraphQL `models` with its layout, scoring, scale and embedding size', async () => {
    const { body } = await gql(server.url, ModelsDocument);
    expect(body.data!.models.find((m) => m.name === 'open-clip-vit-b32')).toMatchObject({
      status: 'READY',
      layout: 'IMMICH',
      scoring: 'SOFTMAX',
      logitScale: 100,
      logitBias: null,
      embeddingSize: 16,
      contextLength: 77,
    });
  });

  it('should serve a GraphQL job and a REST job asking for open-clip-vit-b32 (kebab or snake), with the same probabilities', async () => {
    const viaGraphql = await graphqlJob(server, 'open-clip-vit-b32', images[0]!);
    expectDistribution(viaGraphql, CLASSES.length);
    for (const name of ['open-clip-vit-b32', 'open_clip_vit_b32']) {
      const job = await restJob(server, name, { image: images[0], classes: CLASSES });
      expect(job.status).toBe('complete');
      expectDistribution(job.result?.probabilities, CLASSES.length);
      job.result!.probabilities.forEach((p, i) => expect(p).toBeCloseTo(viaGraphql[i]!, 5));
    }
  });

  it("should accept and ignore unknown REST config keys such as vitrivr-engine's top_k, while GraphQL stays strict", async () => {
    const job = await restJob(server, 'open-clip-vit-b32', {
      image: images[1],
      classes: CLASSES,
      config: { top_k: 50 },
    });
    expect(job.status).toBe('complete');
    expectDistribution(job.result?.probabilities, CLASSES.length);
    const { body } = await gql(server.url, ClassifyDocument, {
      input: { image: images[1]!, classes: CLASSES, model: 'open-clip-vit-b32', config: { top_k: 50 } } as never,
    });
    expect(body.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
  });
});

/** A server loading `model` (by catalogue name) from a fake hub serving `repo` from a copy of `dir`; stopped after the file's describe. */
function servedFromFakeHub(
  repo: string,
  dir: string,
  model: { name: string; source: string },
): { hub: () => FakeHub; server: () => TestServer } {
  let hub: FakeHub | undefined;
  let server: TestServer | undefined;
  let tmp: string | undefined;
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hub-e2e-'));
    const repoDir = path.join(tmp, 'repo');
    await fs.cp(dir, repoDir, { recursive: true });
    await fs.rm(path.join(repoDir, '.stamp.json'), { force: true });
    hub = await startFakeHub({ repos: { [repo]: repoDir } });
    const started = await startTestServer({
      clipModels: [model],
      hfEndpoint: hub.url,
      hfHubOffline: false,
      modelCacheDir: path.join(tmp, 'cache'),
    });
    server = started;
    await waitFor(async () => {
      const { body } = await gql(started.url, ModelsDocument);
      const loaded = body.data?.models.find((m) => m.name === model.name);
      if (loaded?.status === 'FAILED') throw new Error(`failed to load: ${loaded.error}`);
      return loaded?.status === 'READY' ? loaded : undefined;
    }, 60_000);
  });
  afterAll(async () => {
    await server?.stop();
    await hub?.close();
    if (tmp !== undefined) await fs.rm(tmp, { recursive: true, force: true });
  });
  return { hub: () => hub!, server: () => server! };
}

describe('the catalogue name from a (fake) hub', () => {
  const REPO = 'immich-app/XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k';
  const served = servedFromFakeHub(REPO, IMMICH_TEST_MODELS.xlmr.dir, {
    name: 'xlm-roberta-base-ViT-B-32',
    source: 'xlm-roberta-base-ViT-B-32',
  });

  it('should download it through the listing and answer a REST client asking for open-clip-vit-b32', async () => {
    expect(served.hub().requests.some((r) => r.kind === 'listing' && r.repo === REPO)).toBe(true);
    const job = await restJob(served.server(), 'open-clip-vit-b32', {
      image: (await distinctImages(1, 900))[0],
      classes: CLASSES,
    });
    expect(job.status).toBe('complete');
    expectDistribution(job.result?.probabilities, CLASSES.length);
  });
});

describe("SigLIP in Hugging Face's layout by its catalogue name, from a (fake) hub", () => {
  const served = servedFromFakeHub('Xenova/siglip-base-patch16-224', HF_SIGLIP_TEST_MODEL_DIR, {
    name: 'siglip',
    source: 'siglip-base-patch16-224',
  });

  it('should show HF_SIGLIP with sigmoid scoring and the scale and bias of its combined graph, and serve GraphQL and REST jobs alike', async () => {
    const server = served.server();
    expect(served.hub().contentRequests('onnx/model.onnx').length).toBeGreaterThan(0);
    const { body } = await gql(server.url, ModelsDocument);
    const model = body.data!.models.find((m) => m.name === 'siglip')!;
    expect(model).toMatchObject({ layout: 'HF_SIGLIP', scoring: 'SIGMOID', contextLength: 64 });
    expect(model.logitScale).toBeCloseTo(20, 3);
    expect(model.logitBias).toBeCloseTo(-1.5, 3);
    const [image] = await distinctImages(1, 950);
    const viaGraphql = await graphqlJob(server, 'siglip', image!);
    const viaRest = await restJob(server, 'siglip', { image, classes: CLASSES });
    expect(viaRest.status).toBe('complete');
    viaRest.result!.probabilities.forEach((p, j) => expect(p).toBeCloseTo(viaGraphql[j]!, 6));
    // Independent sigmoids: each in (0, 1), the row not a distribution.
    for (const p of viaGraphql) expect(p > 0 && p < 1).toBe(true);
    expect(Math.abs(viaGraphql.reduce((a, b) => a + b, 0) - 1)).toBeGreaterThan(1e-3);
  });
});
