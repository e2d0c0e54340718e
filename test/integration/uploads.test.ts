/**
 * File uploads over the GraphQL multipart request spec (issue 11): `ClassifyInput.files`, CSRF prevention,
 * MAX_IMAGE_BYTES per file, MAX_IMAGES_PER_JOB files and MAX_BODY_BYTES on the stream, and a client that
 * disconnects mid-upload (no job, no temporary file, nothing held).
 *
 * Uploads are read into memory (src/graphql/multipart.ts), never spooled to disk as graphql-upload's own parser
 * does (fs-capacitor, in os.tmpdir()); this file points TMPDIR at a fresh directory of its own (vitest runs each
 * test file in its own process) so it can check that no such file ever appears.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipartBody, multipartParts, type MultipartFile } from '../utils/multipart.js';
import { gql, startTestServer, waitFor, type TestServer } from '../utils/testServer.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'uploads-test-'));
process.env.TMPDIR = tmp;

const CLASSIFY = `mutation Classify($input: ClassifyInput!) { classify(input: $input) { id status } }`;
const CLASSES = ['a red square', 'a blue circle', 'a dog'];

interface Answer {
  status: number;
  body: {
    data?: { classify?: { id: string; status: string } | null } | null;
    errors?: { message: string; extensions?: { code?: string; field?: string } }[];
  };
}

async function png(seed: number, size = 32): Promise<Buffer> {
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < pixels.length; i += 1) pixels[i] = (i * 17 + seed * 101) % 256;
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toBuffer();
}

/** A noisy PNG of about `bytes` bytes (noise does not compress). */
async function bigPng(bytes: number): Promise<Buffer> {
  const side = Math.ceil(Math.sqrt(bytes / 3));
  const pixels = Buffer.alloc(side * side * 3);
  for (let i = 0; i < pixels.length; i += 1) pixels[i] = (Math.imul(i, 2654435761) >>> 24) & 0xff;
  return sharp(pixels, { raw: { width: side, height: side, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
}

async function upload(
  server: TestServer,
  files: MultipartFile[],
  headers: Record<string, string> = { 'apollo-require-preflight': 'true' },
): Promise<Answer> {
  const { body, contentType } = multipartBody(
    CLASSIFY,
    { input: { files: files.map(() => null), classes: CLASSES } },
    'input.files',
    files,
  );
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': contentType, ...headers },
    body,
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

async function jobOf(
  server: TestServer,
  id: string,
): Promise<{ status: string; result: { images: { probabilities: number[] }[] } | null }> {
  return waitFor(async () => {
    const { body } = await gql<{
      job: { status: string; result: { images: { probabilities: number[] }[] } | null } | null;
    }>(server.graphqlUrl, `query ($id: ID!) { job(id: $id) { status result { images { probabilities } } } }`, { id });
    const job = body.data?.job;
    return job && ['COMPLETE', 'FAILED'].includes(job.status) ? job : undefined;
  });
}

/** Spool files in TMPDIR (fs-capacitor, graphql-upload's spooling, names them capacitor-<hex>.tmp); other libraries use TMPDIR too. */
function tmpFiles(): string[] {
  return fs.readdirSync(tmp).filter((name) => name.startsWith('capacitor-') || name.endsWith('.tmp'));
}

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('classify with files', () => {
  let server: TestServer;
  let images: Buffer[];

  beforeAll(async () => {
    server = await startTestServer();
    images = await Promise.all([png(1), png(2)]);
  });

  it('should classify two uploaded files exactly as the same images sent as base64', async () => {
    const answer = await upload(
      server,
      images.map((data, i) => ({ data, filename: `img${i}.png`, contentType: 'image/png' })),
    );
    expect(answer.body.errors).toBeUndefined();
    const job = await jobOf(server, answer.body.data?.classify?.id ?? '');
    expect(job.status).toBe('COMPLETE');

    const json = await gql<{ classify: { id: string } }>(server.graphqlUrl, CLASSIFY, {
      input: { images: images.map((data) => `data:image/png;base64,${data.toString('base64')}`), classes: CLASSES },
    });
    const reference = await jobOf(server, json.body.data?.classify.id ?? '');
    expect(job.result?.images).toHaveLength(2);
    expect(job.result).toEqual(reference.result);
    expect(tmpFiles()).toEqual([]);
  });

  it('should refuse a multipart request without the CSRF preflight header, before reading it', async () => {
    const before = server.server.jobs.stats().totals.queued;
    const answer = await upload(
      server,
      [{ data: images[0] as Buffer, filename: 'a.png', contentType: 'image/png' }],
      {},
    );
    expect(answer.status).toBe(400);
    expect(answer.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(answer.body.errors?.[0]?.message).toMatch(/apollo-require-preflight/);
    expect(server.server.jobs.stats().totals.queued).toBe(before);
  });

  it('should accept x-apollo-operation-name as the preflight header', async () => {
    const answer = await upload(server, [{ data: images[0] as Buffer, filename: 'a.png', contentType: 'image/png' }], {
      'x-apollo-operation-name': 'Classify',
    });
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data?.classify?.id).toMatch(/\S/);
  });

  it('should refuse a file that is not an image with BAD_USER_INPUT naming it', async () => {
    const answer = await upload(server, [
      { data: images[0] as Buffer, filename: 'a.png', contentType: 'image/png' },
      { data: Buffer.from('not an image at all'), filename: 'b.txt', contentType: 'text/plain' },
    ]);
    expect(answer.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'files[1]' });
  });

  it('should refuse both files and images in one input', async () => {
    const { body, contentType } = multipartBody(
      CLASSIFY,
      { input: { files: [null], images: ['x'], classes: CLASSES } },
      'input.files',
      [{ data: images[0] as Buffer, filename: 'a.png', contentType: 'image/png' }],
    );
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': contentType, 'apollo-require-preflight': '1' },
      body,
    });
    const answer = (await response.json()) as Answer['body'];
    expect(answer.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'images,files' });
  });

  it('should refuse a malformed multipart request with BAD_REQUEST', async () => {
    const boundary = 'xyz';
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\nnot json\r\n--${boundary}--\r\n`;
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'apollo-require-preflight': '1' },
      body,
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as Answer['body']).errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
  });
});

describe('upload limits', () => {
  const MAX_IMAGE_BYTES = 64 * 1024;
  const MAX_BODY_BYTES = 256 * 1024;
  let server: TestServer;
  let small: Buffer;

  beforeAll(async () => {
    server = await startTestServer({
      maxImageBytes: MAX_IMAGE_BYTES,
      maxBodyBytes: MAX_BODY_BYTES,
      maxImagesPerJob: 4,
    });
    small = await png(3);
  });

  it('should refuse a file over MAX_IMAGE_BYTES while it streams, writing nothing to disk', async () => {
    const big = await bigPng(MAX_IMAGE_BYTES * 3);
    expect(big.length).toBeGreaterThan(MAX_IMAGE_BYTES * 2);
    const written = new Set<string>();
    const watcher = setInterval(() => {
      for (const name of tmpFiles()) written.add(name);
    }, 2);
    // Sent slowly, in small pieces, so TMPDIR can be watched while the file streams.
    const { parts, contentType } = multipartParts(
      CLASSIFY,
      { input: { files: [null], classes: CLASSES } },
      'input.files',
      [{ data: big, filename: 'big.png', contentType: 'image/png' }],
    );
    const answer = await rawPost(server, contentType, parts, { chunkBytes: 16 * 1024, pauseMs: 5 });
    clearInterval(watcher);
    expect(answer.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'files[0]' });
    expect(answer.body.errors?.[0]?.message).toMatch(/over the limit of 65536 bytes \(MAX_IMAGE_BYTES\)/);
    expect([...written]).toEqual([]);
  });

  it('should refuse more files than MAX_IMAGES_PER_JOB with PAYLOAD_TOO_LARGE', async () => {
    const files = Array.from({ length: 5 }, (_, i) => ({
      data: small,
      filename: `${i}.png`,
      contentType: 'image/png',
    }));
    const answer = await upload(server, files);
    expect(answer.status).toBe(413);
    expect(answer.body.errors?.[0]?.extensions?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(answer.body.errors?.[0]?.message).toMatch(/at most 4 per request \(MAX_IMAGES_PER_JOB\)/);
  });

  it('should count MAX_BODY_BYTES on the stream: files the map does not name count too (chunked, no Content-Length)', async () => {
    // Each part is under MAX_IMAGE_BYTES and graphql-upload would read and drop the unnamed ones without limit.
    const filler = Buffer.alloc(60 * 1024, 7);
    const { parts, contentType } = multipartParts(
      CLASSIFY,
      { input: { files: [null], classes: CLASSES } },
      'input.files',
      [{ data: small, filename: 'a.png', contentType: 'image/png' }],
      Array.from({ length: 8 }, (_, i) => ({
        name: `extra${i}`,
        data: filler,
        filename: `x${i}.bin`,
        contentType: 'application/octet-stream',
      })),
    );
    const before = server.server.jobs.stats().totals.queued;
    const answer = await rawPost(server, contentType, parts, { chunkBytes: 32 * 1024, pauseMs: 0 });
    expect(answer.body.errors?.[0]?.extensions?.code, JSON.stringify(answer)).toBe('PAYLOAD_TOO_LARGE');
    expect(answer.body.errors?.[0]?.message).toMatch(/MAX_BODY_BYTES/);
    expect(server.server.jobs.stats().totals.queued).toBe(before);
  });

  it('should refuse a declared Content-Length over MAX_BODY_BYTES at once with 413', async () => {
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=b', 'apollo-require-preflight': '1' },
      body: Buffer.alloc(MAX_BODY_BYTES + 1),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as Answer['body']).errors?.[0]?.extensions?.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('should leave no job, no temporary file and nothing held when the client disconnects mid-upload', async () => {
    const before = server.server.jobs.stats();
    const file = await bigPng(MAX_IMAGE_BYTES / 2);
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const { parts, contentType } = multipartParts(
        CLASSIFY,
        { input: { files: [null, null], classes: CLASSES } },
        'input.files',
        [
          { data: small, filename: 'a.png', contentType: 'image/png' },
          { data: file, filename: 'b.png', contentType: 'image/png' },
        ],
      );
      const whole = Buffer.concat(parts);
      // Everything up to the middle of the second file, then the socket goes away.
      await new Promise<void>((resolve) => {
        const request = http.request(server.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': contentType, 'content-length': whole.length, 'apollo-require-preflight': '1' },
        });
        request.on('error', () => resolve());
        request.write(whole.subarray(0, whole.length - file.length / 2), () => {
          // Let the server start reading the second file before cutting the connection.
          setTimeout(() => {
            request.destroy();
            resolve();
          }, 100);
        });
      });
    }
    // Give the server time to see each disconnect (and to wrongly create a job, were it to).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(tmpFiles()).toEqual([]);
    const after = server.server.jobs.stats();
    expect(after.totals.queued).toBe(before.totals.queued);
    expect(after.pendingImages).toBe(0);
    expect(after.pendingImageBytes).toBe(0);
    // The server still works.
    const answer = await upload(server, [{ data: small, filename: 'a.png', contentType: 'image/png' }]);
    expect(answer.body.errors).toBeUndefined();
  });
});

/** POSTs `parts` chunked (no Content-Length), in pieces of `chunkBytes` with `pauseMs` between them. */
async function rawPost(
  server: TestServer,
  contentType: string,
  parts: Buffer[],
  options: { chunkBytes: number; pauseMs: number },
): Promise<Answer> {
  const whole = Buffer.concat(parts);
  return new Promise<Answer>((resolve, reject) => {
    const request = http.request(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': contentType, 'apollo-require-preflight': '1', 'transfer-encoding': 'chunked' },
    });
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        try {
          resolve({
            status: response.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Answer['body'],
          });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    // The server may stop reading once it has refused the request.
    request.on('error', reject);
    let offset = 0;
    const writeNext = (): void => {
      if (offset >= whole.length) {
        request.end();
        return;
      }
      const piece = whole.subarray(offset, offset + options.chunkBytes);
      offset += piece.length;
      request.write(piece, () => setTimeout(writeNext, options.pauseMs));
    };
    writeNext();
  });
}
