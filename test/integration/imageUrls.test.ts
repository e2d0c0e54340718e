/**
 * Images by URL through a real server on the tiny model: GraphQL (`image`, `images`) and the FES REST API
 * (`image`) fetch them at submission and give the same probabilities and vectors as the same bytes sent inline;
 * a URL the guard refuses is BAD_USER_INPUT naming the field (`images[2]`) with the reason, and the forbidden
 * loopback server receives no connection.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { distinctImages, gql, startTestServer, waitFor, type TestServer } from '../utils/testServer.js';
import { bytesOfDataUrl, startForbiddenHost, startImageHost, type LoopbackHost } from '../utils/imageHost.js';

const CLASSES = ['a photo of a cat', 'a photo of a dog', 'a diagram'];

let server: TestServer;
let images: string[];
let host: LoopbackHost;
let forbidden: LoopbackHost;

beforeAll(async () => {
  images = await distinctImages(3, 2100);
  host = await startImageHost(Object.fromEntries(images.map((image, i) => [`${i}.png`, bytesOfDataUrl(image)])));
  forbidden = await startForbiddenHost(bytesOfDataUrl(images[0] as string));
  server = await startTestServer({ imageUrlAllowedNetworks: ['127.0.0.1/32'] });
});

interface JobState {
  status: string;
  result: { images: { probabilities: number[] }[] } | null;
  embeddings: { vectors: number[][] } | null;
  error: { code: string; message: string } | null;
}

async function finished(id: string): Promise<JobState> {
  return waitFor(async () => {
    const { body } = await gql<{ job: JobState }>(
      server.url,
      'query ($id: ID!) { job(id: $id) { status result { images { probabilities } } embeddings { vectors } error { code message } } }',
      { id },
    );
    const job = body.data?.job;
    return job !== undefined && ['COMPLETE', 'FAILED', 'CANCELLED'].includes(job.status) ? job : undefined;
  });
}

async function classify(input: Record<string, unknown>): Promise<JobState> {
  const { body } = await gql<{ classify: { id: string } }>(
    server.url,
    'mutation ($input: ClassifyInput!) { classify(input: $input) { id } }',
    { input: { classes: CLASSES, ...input } },
  );
  const id = body.data?.classify.id;
  if (id === undefined) throw new Error(`classify refused: ${JSON.stringify(body.errors)}`);
  return finished(id);
}

describe('images by URL', () => {
  it('should classify URLs in GraphQL `images` exactly as the same bytes inline, in order', async () => {
    const inline = await classify({ images });
    const mixed = await classify({ images: [images[0], `${host.url}/1.png`, `${host.url}/2.png`] });
    expect(mixed.status).toBe('COMPLETE');
    expect(mixed.result).toEqual(inline.result);
    expect(host.paths).toContain('/1.png');
  });

  it('should embed a URL in GraphQL `image` to the same vector as the bytes inline', async () => {
    const embed = async (image: string): Promise<JobState> => {
      const { body } = await gql<{ embedImages: { id: string } }>(
        server.url,
        'mutation ($input: EmbedImagesInput!) { embedImages(input: $input) { id } }',
        { input: { image } },
      );
      return finished(body.data?.embedImages.id ?? '');
    };
    const [byUrl, inline] = [await embed(`${host.url}/2.png`), await embed(images[2] as string)];
    expect(byUrl.status).toBe('COMPLETE');
    expect(byUrl.embeddings?.vectors).toEqual(inline.embeddings?.vectors);
  });

  it('should refuse a forbidden URL at submission, naming the field and the rule, without connecting to it', async () => {
    const { body } = await gql(server.url, 'mutation ($input: ClassifyInput!) { classify(input: $input) { id } }', {
      input: { classes: CLASSES, images: [images[0], images[1], `${forbidden.url}/secret.png`] },
    });
    expect(body.data ?? null).toBeNull();
    expect(body.errors?.[0]?.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'images[2]',
      reason: 'URL_FORBIDDEN',
    });
    expect(body.errors?.[0]?.message).toMatch(/^images\[2\]: .*127\.0\.0\.2, a loopback address/);
    expect(forbidden.connections()).toBe(0);
  });

  it('should take URLs on the FES REST routes with the same probabilities, and refuse a bad one with 422 naming `image`', async () => {
    const post = async (path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
      const response = await fetch(`${server.url}/api/tasks/zero-shot-image-classification${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const created = await post('/batched/tiny/jobs', { image: [`${host.url}/0.png`, images[1]], classes: CLASSES });
    expect(created.status).toBe(200);
    const job = await finished(String(created.body.id));
    const inline = await classify({ images: images.slice(0, 2) });
    expect(job.result).toEqual(inline.result);

    const refused = await post('/tiny/jobs', { image: `${host.url}/nothing-here.png`, classes: CLASSES });
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'image', reason: 'URL_HTTP_STATUS' });
    const forbiddenJob = await post('/tiny/jobs', {
      image: `http://[::ffff:127.0.0.2]:${forbidden.port}/x.png`,
      classes: CLASSES,
    });
    expect(forbiddenJob.body.error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'image', reason: 'URL_FORBIDDEN' });
    expect(forbidden.connections()).toBe(0);
  });
});
