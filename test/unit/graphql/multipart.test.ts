/**
 * parseMultipartRequest (src/graphql/multipart.ts): the GraphQL multipart request spec read into memory, with its
 * limits enforced on the stream, over a stand-in request (a PassThrough with headers) written piece by piece.
 */
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  MultipartFailure,
  multipartBoundary,
  parseMultipartRequest,
  setAtPath,
  type MultipartLimits,
  type ReceivedFile,
} from '../../../src/graphql/multipart.js';
import { multipartParts } from '../../utils/multipart.js';

const LIMITS: MultipartLimits = { maxFileBytes: 1000, maxFiles: 3, maxBodyBytes: 10_000, maxFieldBytes: 2000 };
const QUERY = 'mutation ($input: ClassifyInput!) { classify(input: $input) { id } }';

interface FakeRequest {
  request: IncomingMessage;
  stream: PassThrough;
  socketDestroyed: () => boolean;
}

function fakeRequest(contentType: string): FakeRequest {
  const stream = new PassThrough();
  let destroyed = false;
  Object.assign(stream, { headers: { 'content-type': contentType }, socket: { destroy: () => (destroyed = true) } });
  return { request: stream as unknown as IncomingMessage, stream, socketDestroyed: () => destroyed };
}

type Operations = { variables: { input: { files: { promise: Promise<ReceivedFile> }[] } } };

function parts(
  files: Buffer[],
  extra: { name: string; data: Buffer }[] = [],
): { parts: Buffer[]; contentType: string } {
  return multipartParts(
    QUERY,
    { input: { files: files.map(() => null), classes: ['a'] } },
    'input.files',
    files.map((data, i) => ({ data, filename: `${i}.png`, contentType: 'image/png' })),
    extra.map((part) => ({ ...part, filename: `${part.name}.bin`, contentType: 'application/octet-stream' })),
  );
}

async function failureOf(promise: Promise<unknown>): Promise<MultipartFailure> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MultipartFailure);
  return error as MultipartFailure;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('parseMultipartRequest', () => {
  it('should resolve the operations with a placeholder per mapped file, each file read into memory', async () => {
    const files = [Buffer.from('first file'), Buffer.alloc(900, 5)];
    const body = parts(files);
    const { request, stream } = fakeRequest(body.contentType);
    const parsing = parseMultipartRequest(request, LIMITS);
    stream.end(Buffer.concat(body.parts));
    const operations = (await parsing) as Operations;
    const received = await Promise.all(operations.variables.input.files.map((upload) => upload.promise));
    expect(received.map((file) => file.filename)).toEqual(['0.png', '1.png']);
    expect(received.map((file) => file.mimetype)).toEqual(['image/png', 'image/png']);
    expect(await Promise.all(received.map((file) => file.bytes))).toEqual(files);
    await expect(received[0]?.requestReceived).resolves.toBeUndefined();
  });

  it('should refuse a file over maxFileBytes as soon as it passes the limit, before the rest of it arrives', async () => {
    const body = parts([Buffer.alloc(5000, 1), Buffer.from('next')]);
    const whole = Buffer.concat(body.parts);
    const { request, stream } = fakeRequest(body.contentType);
    const parsing = parseMultipartRequest(request, LIMITS);
    const headerBytes = body.parts[0]!.length + body.parts[1]!.length + 200;
    stream.write(whole.subarray(0, headerBytes + LIMITS.maxFileBytes + 100));
    const [first, second] = ((await parsing) as Operations).variables.input.files;
    const file = await first!.promise;
    // Most of the file has not been sent yet, and the file is already refused.
    const failure = await failureOf(file.bytes);
    expect(failure).toMatchObject({ kind: 'fileTooLarge', limit: LIMITS.maxFileBytes });
    // The rest of the request goes on: the next file arrives whole.
    stream.end(whole.subarray(headerBytes + LIMITS.maxFileBytes + 100));
    expect((await (await second!.promise).bytes).toString()).toBe('next');
    await expect(file.requestReceived).resolves.toBeUndefined();
  });

  it('should fail a file cut off by a truncated body as interrupted, and the request with it', async () => {
    const body = parts([Buffer.alloc(800, 2)]);
    const whole = Buffer.concat(body.parts);
    const { request, stream } = fakeRequest(body.contentType);
    const parsing = parseMultipartRequest(request, LIMITS);
    stream.end(whole.subarray(0, whole.length - 400));
    const file = await ((await parsing) as Operations).variables.input.files[0]!.promise;
    expect(await failureOf(file.bytes)).toMatchObject({ kind: 'interrupted' });
    expect(await failureOf(file.requestReceived)).toMatchObject({ kind: 'interrupted' });
  });

  it('should fail everything pending when the client goes away mid-file', async () => {
    const body = parts([Buffer.alloc(800, 2), Buffer.alloc(10, 3)]);
    const whole = Buffer.concat(body.parts);
    const { request, stream } = fakeRequest(body.contentType);
    const parsing = parseMultipartRequest(request, LIMITS);
    stream.write(whole.subarray(0, whole.length - 600));
    const [first, second] = ((await parsing) as Operations).variables.input.files;
    await tick();
    stream.destroy();
    expect(await failureOf((await first!.promise).bytes)).toMatchObject({ kind: 'interrupted' });
    expect(await failureOf(second!.promise)).toMatchObject({ kind: 'interrupted' });
  });

  it('should count the whole body against maxBodyBytes, parts the map does not name included, then hang up on a client that keeps sending', async () => {
    const filler = Buffer.alloc(900, 7);
    const body = parts(
      [Buffer.from('a')],
      Array.from({ length: 12 }, (_, i) => ({ name: `extra${i}`, data: filler })),
    );
    const { request, stream, socketDestroyed } = fakeRequest(body.contentType);
    const parsing = parseMultipartRequest(request, LIMITS);
    for (const part of body.parts) stream.write(part);
    const file = await ((await parsing) as Operations).variables.input.files[0]!.promise;
    expect(await failureOf(file.requestReceived)).toMatchObject({ kind: 'bodyTooLarge', limit: LIMITS.maxBodyBytes });
    expect(socketDestroyed()).toBe(false);
    stream.write(Buffer.alloc(LIMITS.maxBodyBytes + 1));
    await tick();
    expect(socketDestroyed()).toBe(true);
  });

  it('should refuse a map naming more than maxFiles files', async () => {
    const body = parts([Buffer.from('1'), Buffer.from('2'), Buffer.from('3'), Buffer.from('4')]);
    const { request, stream } = fakeRequest(body.contentType);
    const parsing = parseMultipartRequest(request, LIMITS);
    stream.end(Buffer.concat(body.parts));
    expect(await failureOf(parsing)).toMatchObject({ kind: 'tooManyFiles', limit: 3 });
  });

  it('should reject a mapped file the body does not have as fileMissing', async () => {
    const body = parts([Buffer.from('1'), Buffer.from('2')]);
    const { request, stream } = fakeRequest(body.contentType);
    const parsing = parseMultipartRequest(request, LIMITS);
    // operations, map, the first file, the closing boundary: no second file.
    stream.end(Buffer.concat([body.parts[0]!, body.parts[1]!, body.parts[2]!, body.parts[4]!]));
    const [, second] = ((await parsing) as Operations).variables.input.files;
    expect(await failureOf(second!.promise)).toMatchObject({
      kind: 'fileMissing',
      message: 'File missing in the request.',
    });
  });

  const boundary = 'b0undary';
  const field = (name: string, value: string): string =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const end = `--${boundary}--\r\n`;
  it.each([
    [
      'operations that are not JSON',
      field('operations', 'not json') + end,
      'malformed',
      /Invalid JSON in the ‘operations’/,
    ],
    [
      'operations that are not an object',
      field('operations', '3') + field('map', '{}') + end,
      'malformed',
      /Invalid type for the ‘operations’/,
    ],
    ['a map before the operations', field('map', '{}') + end, 'malformed', /‘map’ should follow ‘operations’/],
    [
      'a map that is an array',
      field('operations', '{}') + field('map', '[]') + end,
      'malformed',
      /Invalid type for the ‘map’/,
    ],
    [
      'a map path into a prototype',
      field('operations', '{"variables":{}}') + field('map', '{"0":["__proto__.polluted"]}') + end,
      'malformed',
      /Invalid object path/,
    ],
    [
      'a map path through a missing object',
      field('operations', '{"variables":{}}') + field('map', '{"0":["variables.input.files.0"]}') + end,
      'malformed',
      /Invalid object path/,
    ],
    ['no map', field('operations', '{}') + end, 'malformed', /Missing multipart field ‘map’/],
    [
      'an oversized operations field',
      field('operations', `"${'x'.repeat(3000)}"`) + end,
      'fieldTooLarge',
      /exceeds the 2000 byte size limit/,
    ],
    [
      'a body that ends before its closing boundary',
      field('operations', '{}').slice(0, 30),
      'interrupted',
      /Unexpected end of form/,
    ],
  ])('should refuse %s', async (_name, text, kind, message) => {
    const { request, stream } = fakeRequest(`multipart/form-data; boundary=${boundary}`);
    const parsing = parseMultipartRequest(request, LIMITS);
    stream.end(Buffer.from(text));
    expect(await failureOf(parsing)).toMatchObject({ kind, message: expect.stringMatching(message) });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('should refuse a multipart content type without a boundary, and read the body so the request ends', async () => {
    const { request, stream } = fakeRequest('multipart/form-data');
    expect(await failureOf(parseMultipartRequest(request, LIMITS))).toMatchObject({ kind: 'malformed' });
    const ended = new Promise<void>((resolve) => stream.once('end', () => resolve()));
    stream.end(Buffer.from('anything'));
    await ended;
  });
});

describe('multipartBoundary', () => {
  it('should find a boundary of 1 to 70 characters, quoted or not, and nothing else', () => {
    expect(multipartBoundary('multipart/form-data; boundary=abc')).toBe('abc');
    expect(multipartBoundary('multipart/form-data;BOUNDARY="a b;c"; charset=utf-8')).toBe('a b;c');
    expect(multipartBoundary(`multipart/form-data; boundary=${'x'.repeat(70)}`)).toBe('x'.repeat(70));
    for (const contentType of [
      undefined,
      'multipart/form-data',
      'multipart/form-data; boundary=',
      'multipart/form-data; boundary=""',
      `multipart/form-data; boundary=${'x'.repeat(71)}`,
    ]) {
      expect(multipartBoundary(contentType), contentType).toBeUndefined();
    }
  });
});

describe('setAtPath', () => {
  it('should set array items and object keys along a dotted path', () => {
    const root = { variables: { input: { files: [null, null] }, file: null } };
    expect(setAtPath(root, 'variables.input.files.1', 'x')).toBe(true);
    expect(setAtPath(root, 'variables.file', 'y')).toBe(true);
    expect(root).toEqual({ variables: { input: { files: [null, 'x'] }, file: 'y' } });
    // A batch of operations is an array at the top.
    const batch = [{ variables: { file: null } }];
    expect(setAtPath(batch, '0.variables.file', 'z')).toBe(true);
    expect(batch[0]?.variables.file).toBe('z');
  });

  it('should refuse paths that do not fit or reach a prototype', () => {
    const root = { variables: { files: [null] } };
    expect(setAtPath(root, 'variables.files.x', 1)).toBe(false);
    expect(setAtPath(root, 'variables.nothing.0', 1)).toBe(false);
    expect(setAtPath(root, 'constructor.prototype.x', 1)).toBe(false);
    expect(setAtPath(root, 'variables.__proto__', 1)).toBe(false);
  });
});
