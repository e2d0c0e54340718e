/**
 * Deterministic (seeded) hostile and odd inputs for the reliability tests (issue 5): HTTP cases for the
 * GraphQL and REST endpoints and raw-frame cases for graphql-ws, each with what the server must do
 * with it. Images are generated with sharp; "bombs" are small real files whose headers claim huge sizes.
 * The same seed always yields the same cases, so a failure can be replayed by its name.
 */
import { crc32, gzipSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';

// ---- seeded randomness ----

/** A small deterministic PRNG (mulberry32): the same seed gives the same sequence on every machine. */
export interface Rng {
  /** In [0, 1). */
  next(): number;
  /** An integer in [min, max] (both included). */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  bytes(length: number): Buffer;
  /** `length` characters drawn from `alphabet`. */
  string(length: number, alphabet?: string): string;
}

const WORD_ALPHABET = 'abcdefghijklmnopqrstuvwxyz';

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[int(0, items.length - 1)] as T;
    },
    bytes: (length) => Buffer.from(Array.from({ length }, () => int(0, 255))),
    string: (length, alphabet = WORD_ALPHABET) =>
      Array.from({ length }, () => alphabet[int(0, alphabet.length - 1)]).join(''),
  };
}

// ---- images ----

/** Valid images, generated once per run. */
export interface ImageSamples {
  png: Buffer;
  jpeg: Buffer;
  webp: Buffer;
  gif: Buffer;
  /** Images the server must classify although they are unusual. */
  odd: { name: string; bytes: Buffer }[];
}

function gradient(width: number, height: number, channels: 3 | 4 = 3): Buffer {
  const pixels = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const offset = (y * width + x) * channels;
      pixels[offset] = (x * 255) / Math.max(1, width - 1);
      pixels[offset + 1] = (y * 255) / Math.max(1, height - 1);
      pixels[offset + 2] = ((x + y) * 7) % 256;
      if (channels === 4) pixels[offset + 3] = (x * 31) % 256;
    }
  }
  return pixels;
}

function raw(width: number, height: number, channels: 3 | 4 = 3): Sharp {
  return sharp(gradient(width, height, channels), { raw: { width, height, channels } });
}

/** Generates the valid samples: the four common formats, and odd but valid images. */
export async function makeImageSamples(): Promise<ImageSamples> {
  const frames = await Promise.all(
    [0, 1, 2].map((i) =>
      sharp({ create: { width: 24, height: 16, channels: 3, background: { r: i * 80, g: 50, b: 200 - i * 60 } } })
        .png()
        .toBuffer(),
    ),
  );
  const [png, jpeg, webp, gif] = await Promise.all([
    raw(48, 32).png().toBuffer(),
    raw(48, 32).jpeg().toBuffer(),
    raw(48, 32).webp().toBuffer(),
    raw(48, 32).gif().toBuffer(),
  ]);
  const odd = await Promise.all(
    Object.entries({
      '1x1 PNG': raw(1, 1).png().toBuffer(),
      '1x1 JPEG': raw(1, 1).jpeg().toBuffer(),
      '1x1 WebP': raw(1, 1).webp().toBuffer(),
      '1x1 GIF': raw(1, 1).gif().toBuffer(),
      'animated GIF (3 frames)': sharp(frames, { join: { animated: true } })
        .gif()
        .toBuffer(),
      'animated WebP (3 frames)': sharp(frames, { join: { animated: true } })
        .webp()
        .toBuffer(),
      'CMYK JPEG': raw(40, 30).toColourspace('cmyk').jpeg().toBuffer(),
      '16-bit RGB PNG': raw(40, 30).toColourspace('rgb16').png().toBuffer(),
      '16-bit grey PNG': raw(40, 30).toColourspace('grey16').png().toBuffer(),
      'grey JPEG': raw(40, 30).grayscale().jpeg().toBuffer(),
      'palette PNG': raw(40, 30).png({ palette: true, colours: 16 }).toBuffer(),
      'RGBA PNG': raw(40, 30, 4).png().toBuffer(),
      'RGBA WebP': raw(40, 30, 4).webp().toBuffer(),
      'EXIF-rotated JPEG': raw(40, 30).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
      'progressive JPEG': raw(64, 48).jpeg({ progressive: true }).toBuffer(),
      'lossless WebP': raw(40, 30).webp({ lossless: true }).toBuffer(),
      TIFF: raw(40, 30).tiff().toBuffer(),
      AVIF: raw(40, 30).avif().toBuffer(),
      '1x2000 PNG (extreme aspect)': raw(1, 2000).png().toBuffer(),
      '3000x1 PNG (extreme aspect)': raw(3000, 1).png().toBuffer(),
      '1500x1000 JPEG': raw(1500, 1000).jpeg({ quality: 40 }).toBuffer(),
    }).map(async ([name, bytes]) => ({ name, bytes: await bytes })),
  );
  return { png, jpeg, webp, gif, odd };
}

/** One PNG chunk: length, type, data, CRC-32 of type + data. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A few hundred bytes of PNG whose header claims `width`×`height` RGB pixels (a decompression bomb's header). */
export function craftPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  // The first rows, compressed: all a decoder would see before running out of data.
  const idat = gzipSync(Buffer.alloc(4 * (1 + width * 3)), { level: 9 }).subarray(10, -8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A copy of a baseline JPEG with its frame header (SOF0/SOF2) claiming `width`×`height`. */
export function withJpegSize(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  let offset = 2;
  while (offset + 9 < out.length && out[offset] === 0xff) {
    const marker = out[offset + 1] as number;
    const length = out.readUInt16BE(offset + 2);
    if (marker === 0xc0 || marker === 0xc1 || marker === 0xc2) {
      out.writeUInt16BE(height, offset + 5);
      out.writeUInt16BE(width, offset + 7);
      return out;
    }
    offset += 2 + length;
  }
  throw new Error('no SOF marker found');
}

/** A copy of a GIF whose screen and first image descriptor claim `width`×`height`. */
export function withGifSize(gif: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(gif);
  out.writeUInt16LE(width, 6);
  out.writeUInt16LE(height, 8);
  const packed = out[10] as number;
  let offset = 13 + (packed & 0x80 ? 3 * 2 ** ((packed & 7) + 1) : 0);
  while (offset < out.length) {
    const block = out[offset];
    if (block === 0x2c) {
      out.writeUInt16LE(width, offset + 5);
      out.writeUInt16LE(height, offset + 7);
      return out;
    }
    if (block !== 0x21) break;
    // Extension: label, then sub-blocks up to a zero length.
    offset += 2;
    while (offset < out.length && out[offset] !== 0) offset += 1 + (out[offset] as number);
    offset += 1;
  }
  throw new Error('no image descriptor found');
}

/** A copy of a lossy (VP8) WebP whose frame header claims `width`×`height` (at most 16383 each). */
export function withWebpSize(webp: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(webp);
  if (out.toString('latin1', 12, 16) !== 'VP8 ' || out[23] !== 0x9d || out[24] !== 0x01 || out[25] !== 0x2a)
    throw new Error('not a simple lossy WebP');
  out.writeUInt16LE(width & 0x3fff, 26);
  out.writeUInt16LE(height & 0x3fff, 28);
  return out;
}

/** Files that are not images (or not supported ones), by name. */
export const NON_IMAGE_FILES: Readonly<Record<string, Buffer>> = {
  'PDF document': Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'),
  'ZIP archive': Buffer.concat([Buffer.from('PK\u0003\u0004', 'latin1'), Buffer.alloc(60, 1)]),
  'ELF binary': Buffer.concat([Buffer.from('\u007fELF\u0002\u0001\u0001', 'latin1'), Buffer.alloc(57)]),
  'plain text': Buffer.from('this is not an image, just some text\n'),
  'HTML page': Buffer.from('<!doctype html><html><body><img src="x" onerror="alert(1)"></body></html>'),
  'SVG image': Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
  ),
  'SVG with an external reference': Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10"><image xlink:href="file:///etc/passwd" width="10" height="10"/></svg>',
  ),
  'JSON document': Buffer.from('{"image": "not really"}'),
  'BMP header': Buffer.concat([Buffer.from('BM', 'latin1'), Buffer.alloc(60, 7)]),
  'ICO header': Buffer.from([0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0, 0, 0, 0, 0, 22, 0, 0, 0]),
  'PSD header': Buffer.concat([Buffer.from('8BPS', 'latin1'), Buffer.alloc(40)]),
  'HEIC brand': Buffer.concat([
    Buffer.from([0, 0, 0, 24]),
    Buffer.from('ftypheic\u0000\u0000\u0000\u0000mif1heic', 'latin1'),
    Buffer.alloc(40),
  ]),
  'MP4 brand': Buffer.concat([
    Buffer.from([0, 0, 0, 24]),
    Buffer.from('ftypisom\u0000\u0000\u0002\u0000isomiso2', 'latin1'),
    Buffer.alloc(40),
  ]),
  'WAV audio': Buffer.concat([Buffer.from('RIFF\u0024\u0000\u0000\u0000WAVEfmt ', 'latin1'), Buffer.alloc(40)]),
  'gzip stream': gzipSync(Buffer.from('hello')),
  'PNG signature only': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  'JPEG SOI only': Buffer.from([0xff, 0xd8, 0xff]),
  'GIF signature only': Buffer.from('GIF89a', 'latin1'),
  'RIFF WEBP header only': Buffer.from('RIFF\u0000\u0000\u0000\u0000WEBP', 'latin1'),
  'single zero byte': Buffer.from([0]),
};

// ---- cases ----

export type FuzzCategory =
  | 'malformed JSON'
  | 'wrong types'
  | 'huge strings'
  | 'invalid base64'
  | 'truncated image'
  | 'corrupted image'
  | 'non-image file'
  | 'odd but valid image'
  | 'decompression bomb'
  | 'class names'
  | 'unknown model'
  | 'query abuse'
  | 'oversized body'
  | 'HTTP misuse'
  | 'graphql-ws frames';

/** What the server must do with a case. */
export type FuzzExpectation =
  /** Refused at once with a coded error (GraphQL extensions.code, REST 4xx + error.code); no job. */
  | { kind: 'refused' }
  /** Accepted, and the job COMPLETEs with one row of `classes` probabilities per image. */
  | { kind: 'completes'; images: number; classes: number }
  /** Refused with a code, or accepted and then COMPLETE, or FAILED with a code (bytes decide which). */
  | { kind: 'settles' }
  /** Not a job request: answered (2xx) or refused with a code, never a server error. */
  | { kind: 'answers' }
  /** The socket is closed with one of these codes. */
  | { kind: 'ws-closes'; codes: readonly number[] }
  /** Each subscription gets a coded `error` message or a `next` carrying coded errors; the socket stays usable. */
  | { kind: 'ws-errors' }
  /** Nothing to refuse (e.g. ping, complete of an unknown id): the socket stays open. */
  | { kind: 'ws-stays-open' };

export interface HttpFuzzCase {
  transport: 'graphql' | 'rest';
  category: FuzzCategory;
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** Path and query, e.g. `/graphql`, `/api/tasks/…/jobs`. */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  expect: FuzzExpectation;
}

/** One websocket frame: text (may be invalid UTF-8 when given as bytes) or binary; sent on open or after connection_ack. */
export interface WsFrame {
  data: string | Buffer;
  binary?: boolean;
  when: 'open' | 'ack';
}

export interface WsFuzzCase {
  transport: 'ws';
  category: FuzzCategory;
  name: string;
  /** The websocket subprotocol offered; default graphql-transport-ws, null = none. */
  protocol?: string | null;
  frames: WsFrame[];
  expect: FuzzExpectation;
  /** How long to watch the socket for, in ms. @default 1500 */
  watchMs?: number;
}

export type FuzzCase = HttpFuzzCase | WsFuzzCase;

export interface FuzzOptions {
  seed: number;
  samples: ImageSamples;
  /** The name REST paths use for the default model. */
  modelName: string;
  /** The server's MAX_BODY_BYTES. */
  maxBodyBytes: number;
  /** The server's MAX_IMAGE_BYTES. */
  maxImageBytes: number;
  maxImagesPerJob: number;
  maxClassesPerJob: number;
  maxClassLength: number;
  maxQueryDepth: number;
  maxAliases: number;
}

const TASK = 'zero-shot-image-classification';
const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id status } }';
const JSON_HEADERS = { 'content-type': 'application/json' } as const;

function dataUrl(bytes: Buffer, type = 'image/png'): string {
  return `data:${type};base64,${bytes.toString('base64')}`;
}

/** Wrapping of a job request in one of the transports. */
type JobTransport = 'graphql-image' | 'graphql-images' | 'rest-single' | 'rest-batched' | 'ws';
const JOB_TRANSPORTS: readonly JobTransport[] = [
  'graphql-image',
  'graphql-images',
  'rest-single',
  'rest-batched',
  'ws',
];

interface JobRequest {
  images: unknown[];
  classes: unknown;
  model?: unknown;
  config?: unknown;
}

/**
 * Builds the generator: every `add*` call appends cases and the `cases` list is returned at the end.
 * Kept as closures over one Rng so the order of calls fixes the sequence.
 */
export function generateFuzzCases(options: FuzzOptions): FuzzCase[] {
  const rng = createRng(options.seed);
  const { samples, modelName } = options;
  const cases: FuzzCase[] = [];
  const validImages = [samples.png, samples.jpeg, samples.webp, samples.gif];

  const jobCase = (
    category: FuzzCategory,
    name: string,
    request: JobRequest,
    expect: FuzzExpectation,
    transport: JobTransport,
  ): void => {
    const single = request.images.length === 1;
    const chosen: JobTransport = single
      ? transport
      : transport === 'graphql-image'
        ? 'graphql-images'
        : transport === 'rest-single'
          ? 'rest-batched'
          : transport;
    const label = `${name} [${chosen}]`;
    switch (chosen) {
      case 'graphql-image':
      case 'graphql-images':
      case 'ws': {
        const input: Record<string, unknown> = { classes: request.classes };
        if (chosen === 'graphql-image') input.image = request.images[0];
        else input.images = request.images;
        if (request.model !== undefined) input.model = request.model;
        if (request.config !== undefined) input.config = request.config;
        const payload = { query: CLASSIFY, variables: { input } };
        if (chosen === 'ws') {
          cases.push({
            transport: 'ws',
            category,
            name: label,
            frames: [
              { data: JSON.stringify({ type: 'connection_init' }), when: 'open' },
              { data: JSON.stringify({ type: 'subscribe', id: 'job', payload }), when: 'ack' },
            ],
            expect: expect.kind === 'refused' ? { kind: 'ws-errors' } : expect,
          });
        } else {
          cases.push({
            transport: 'graphql',
            category,
            name: label,
            method: 'POST',
            path: '/graphql',
            headers: { ...JSON_HEADERS },
            body: JSON.stringify(payload),
            expect,
          });
        }
        return;
      }
      case 'rest-single':
      case 'rest-batched': {
        const body: Record<string, unknown> = {
          image: chosen === 'rest-single' ? request.images[0] : request.images,
          classes: request.classes,
        };
        if (request.config !== undefined) body.config = request.config;
        const model = typeof request.model === 'string' ? encodeURIComponent(request.model) : modelName;
        const path =
          chosen === 'rest-single' ? `/api/tasks/${TASK}/${model}/jobs` : `/api/tasks/${TASK}/batched/${model}/jobs`;
        cases.push({
          transport: 'rest',
          category,
          name: label,
          method: 'POST',
          path,
          headers: { ...JSON_HEADERS },
          body: JSON.stringify(body),
          expect,
        });
        return;
      }
    }
  };
  const anyTransport = (): JobTransport => rng.pick(JOB_TRANSPORTS);
  const httpTransport = (): JobTransport => rng.pick(JOB_TRANSPORTS.slice(0, 4));
  const classesOf = (count: number): string[] =>
    Array.from({ length: count }, (_, i) => `${rng.string(rng.int(3, 10))} ${i}`);
  const image = (): string => dataUrl(rng.pick(validImages));

  // -- malformed JSON bodies --
  const goodGraphql = JSON.stringify({
    query: CLASSIFY,
    variables: { input: { image: image(), classes: ['cat', 'dog'] } },
  });
  const goodRest = JSON.stringify({ image: image(), classes: ['cat', 'dog'] });
  const restPath = `/api/tasks/${TASK}/${modelName}/jobs`;
  const malformed = (): string[] => [
    '',
    '{',
    '}',
    '{"query": }',
    "{'query': '{ models { name } }'}",
    '{"query": "{ models { name } }",}',
    'nul',
    '\u0000\u0001\u0002',
    '{"query": "\\ud800 unpaired"}',
    `\ufeff${goodRest}`,
    rng.bytes(64).toString('latin1'),
    '{"a":1}{"b":2}',
    '[[[[[[[[[[',
    '{"query": NaN}',
    '{"query": "{ models { name } }" /* comment */}',
  ];
  for (const [index, text] of malformed().entries()) {
    // A leading byte-order mark is tolerated by the JSON parser, so that body is a valid job.
    const expect: FuzzExpectation = text.startsWith('\ufeff') ? { kind: 'settles' } : { kind: 'refused' };
    cases.push({
      transport: 'graphql',
      category: 'malformed JSON',
      name: `GraphQL body #${index}`,
      method: 'POST',
      path: '/graphql',
      headers: { ...JSON_HEADERS },
      body: text,
      expect,
    });
    cases.push({
      transport: 'rest',
      category: 'malformed JSON',
      name: `REST body #${index}`,
      method: 'POST',
      path: restPath,
      headers: { ...JSON_HEADERS },
      body: text,
      expect,
    });
  }
  for (let i = 0; i < 12; i += 1) {
    const graphqlCut = rng.int(1, goodGraphql.length - 2);
    cases.push({
      transport: 'graphql',
      category: 'malformed JSON',
      name: `GraphQL body cut at ${graphqlCut}`,
      method: 'POST',
      path: '/graphql',
      headers: { ...JSON_HEADERS },
      body: goodGraphql.slice(0, graphqlCut),
      expect: { kind: 'refused' },
    });
    const restCut = rng.int(1, goodRest.length - 2);
    cases.push({
      transport: 'rest',
      category: 'malformed JSON',
      name: `REST body cut at ${restCut}`,
      method: 'POST',
      path: restPath,
      headers: { ...JSON_HEADERS },
      body: goodRest.slice(0, restCut),
      expect: { kind: 'refused' },
    });
  }

  // -- wrong types --
  const wrongValues: unknown[] = [
    null,
    0,
    -1,
    1.5,
    true,
    'text',
    [],
    [1, 2],
    {},
    { nested: { deeper: [null] } },
    [[['deep']]],
    1e308,
  ];
  for (const value of wrongValues) {
    const shown = JSON.stringify(value);
    if (typeof value === 'string') {
      // GraphQL coerces a single value to a one-item list (input coercion, GraphQL spec 3.1.7); REST does not.
      jobCase(
        'wrong types',
        `classes = ${shown}`,
        { images: [image()], classes: value },
        { kind: 'completes', images: 1, classes: 1 },
        rng.pick(['graphql-image', 'ws'] as const),
      );
      jobCase(
        'wrong types',
        `classes = ${shown}`,
        { images: [image()], classes: value },
        { kind: 'refused' },
        rng.pick(['rest-single', 'rest-batched'] as const),
      );
      continue;
    }
    jobCase(
      'wrong types',
      `classes = ${shown}`,
      { images: [image()], classes: value },
      { kind: 'refused' },
      anyTransport(),
    );
    jobCase(
      'wrong types',
      `image = ${shown}`,
      { images: [value], classes: ['a', 'b'] },
      { kind: 'refused' },
      anyTransport(),
    );
    if (value !== null && typeof value !== 'object')
      jobCase(
        'wrong types',
        `config = ${shown}`,
        { images: [image()], classes: ['a', 'b'], config: value },
        { kind: 'refused' },
        anyTransport(),
      );
    jobCase(
      'wrong types',
      `classes = [${shown}, "b"]`,
      { images: [image()], classes: [value, 'b'] },
      { kind: 'refused' },
      httpTransport(),
    );
    if (value !== null)
      jobCase(
        'wrong types',
        `model = ${shown}`,
        { images: [image()], classes: ['a', 'b'], model: value },
        { kind: 'refused' },
        rng.pick(['graphql-image', 'ws'] as const),
      );
  }
  for (const config of [
    { promptTemplate: 5 },
    { promptTemplate: 'no placeholder' },
    { promptTemplates: [] },
    { promptTemplates: 'a {}' },
    { promptTemplates: Array(101).fill('a {}') },
    { promptTemplate: 'a {}', promptTemplates: ['b {}'] },
    { unknownSetting: 1 },
    { promptTemplate: `${'x'.repeat(1001)}{}` },
  ]) {
    jobCase(
      'wrong types',
      `config = ${JSON.stringify(config).slice(0, 60)}`,
      { images: [image()], classes: ['a', 'b'], config },
      { kind: 'refused' },
      anyTransport(),
    );
  }
  const graphqlBodies: [string, unknown][] = [
    ['query is a number', { query: 42 }],
    ['query is null', { query: null }],
    ['query is an object', { query: { models: true } }],
    ['no query', { variables: {} }],
    ['variables is a string', { query: '{ models { name } }', variables: '{}' }],
    ['variables is a list', { query: '{ models { name } }', variables: [1] }],
    ['operationName is a number', { query: '{ models { name } }', operationName: 7 }],
    ['unknown operationName', { query: 'query A { models { name } }', operationName: 'B' }],
    ['two operations, no name', { query: 'query A { models { name } } query B { models { name } }' }],
    ['extensions is a string', { query: '{ models { name } }', extensions: 'x' }],
    ['persisted query hash only', { extensions: { persistedQuery: { version: 1, sha256Hash: 'a'.repeat(64) } } }],
    [
      'persisted query with wrong hash',
      { query: '{ models { name } }', extensions: { persistedQuery: { version: 1, sha256Hash: 'b'.repeat(64) } } },
    ],
    ['batched operations', [{ query: '{ models { name } }' }, { query: '{ models { name } }' }]],
    ['body is a string', 'query'],
    ['body is a number', 12],
    ['body is null', null],
    ['job id is an object', { query: 'query($id: ID!) { job(id: $id) { id } }', variables: { id: { $gt: '' } } }],
    ['jobs first is a string', { query: 'query($f: Int) { jobs(first: $f) { totalCount } }', variables: { f: 'ten' } }],
    ['jobs first is negative', { query: '{ jobs(first: -5) { totalCount } }' }],
    ['jobs first is huge', { query: '{ jobs(first: 2147483647) { totalCount } }' }],
    ['jobs after is not a cursor', { query: '{ jobs(after: "not-a-cursor") { totalCount } }' }],
    ['jobs status unknown', { query: '{ jobs(status: EXPLODED) { totalCount } }' }],
    ['top k negative', { query: '{ jobs { nodes { result { images { top(k: -1) { label } } } } } }' }],
    ['classify input missing', { query: 'mutation { classify { id } }' }],
    [
      'classify with both image and images',
      { query: CLASSIFY, variables: { input: { image: image(), images: [image()], classes: ['a'] } } },
    ],
    ['classify with neither image nor images', { query: CLASSIFY, variables: { input: { classes: ['a'] } } }],
    [
      'classify with an unknown input field',
      { query: CLASSIFY, variables: { input: { image: image(), classes: ['a'], colour: 'red' } } },
    ],
    ['cancelJob of an unknown id', { query: 'mutation { cancelJob(id: "nope") { id } }' }],
    ['int overflow literal', { query: '{ jobs(first: 99999999999999999999) { totalCount } }' }],
    ['unknown field', { query: '{ secrets }' }],
    ['subscription over HTTP', { query: 'subscription { jobUpdated(id: "x") { id } }' }],
  ];
  for (const [name, body] of graphqlBodies) {
    const answers =
      name === 'cancelJob of an unknown id' || name === 'jobs after is not a cursor' ? 'answers' : 'refused';
    cases.push({
      transport: 'graphql',
      category: 'wrong types',
      name,
      method: 'POST',
      path: '/graphql',
      headers: { ...JSON_HEADERS },
      body: JSON.stringify(body),
      expect: { kind: answers },
    });
  }
  const restBodies: [string, unknown][] = [
    ['body is a list', [image()]],
    ['body is a string', 'image'],
    ['body is a number', 3],
    ['body is null', null],
    ['no image', { classes: ['a'] }],
    ['no classes', { image: image() }],
    ['image list on the single route', { image: [image()], classes: ['a', 'b'] }],
  ];
  for (const [name, body] of restBodies) {
    cases.push({
      transport: 'rest',
      category: 'wrong types',
      name,
      method: 'POST',
      path: restPath,
      headers: { ...JSON_HEADERS },
      body: JSON.stringify(body),
      expect: { kind: 'refused' },
    });
  }
  cases.push({
    transport: 'rest',
    category: 'wrong types',
    name: 'single image on the batched route',
    method: 'POST',
    path: `/api/tasks/${TASK}/batched/${modelName}/jobs`,
    headers: { ...JSON_HEADERS },
    body: JSON.stringify({ image: image(), classes: ['a', 'b'] }),
    expect: { kind: 'refused' },
  });

  // -- huge strings --
  jobCase(
    'huge strings',
    `a class of 10,000 characters`,
    { images: [image()], classes: ['a', 'x'.repeat(10_000)] },
    { kind: 'refused' },
    anyTransport(),
  );
  jobCase(
    'huge strings',
    `a class of ${options.maxClassLength + 1} characters`,
    { images: [image()], classes: [rng.string(options.maxClassLength + 1)] },
    { kind: 'refused' },
    anyTransport(),
  );
  jobCase(
    'huge strings',
    `a class of exactly ${options.maxClassLength} characters`,
    { images: [image()], classes: ['a', rng.string(options.maxClassLength)] },
    { kind: 'completes', images: 1, classes: 2 },
    anyTransport(),
  );
  jobCase(
    'huge strings',
    `a class of ${options.maxClassLength} emoji (2 UTF-16 units each)`,
    { images: [image()], classes: ['a', '🐈'.repeat(options.maxClassLength)] },
    { kind: 'completes', images: 1, classes: 2 },
    httpTransport(),
  );
  jobCase(
    'huge strings',
    'a model name of 100,000 characters',
    { images: [image()], classes: ['a', 'b'], model: 'm'.repeat(100_000) },
    { kind: 'refused' },
    rng.pick(['graphql-image', 'ws'] as const),
  );
  jobCase(
    'huge strings',
    'a prompt template of 1,000 characters with 500 placeholders',
    {
      images: [image()],
      classes: ['a', rng.string(options.maxClassLength)],
      config: { promptTemplate: '{}'.repeat(500) },
    },
    { kind: 'refused' },
    httpTransport(),
  );
  jobCase(
    'huge strings',
    '10 templates of 1,000 characters × 30 classes of 1,000 characters',
    {
      images: [image()],
      classes: Array.from({ length: 30 }, (_, i) => `${i} ${rng.string(options.maxClassLength - 5)}`),
      config: { promptTemplates: Array.from({ length: 10 }, (_, i) => `${i} {} ${rng.string(990)}`) },
    },
    { kind: 'completes', images: 1, classes: 30 },
    httpTransport(),
  );
  jobCase(
    'huge strings',
    `an image string over MAX_IMAGE_BYTES`,
    {
      images: [`data:image/png;base64,${'A'.repeat(Math.ceil((options.maxImageBytes + 3000) / 3) * 4)}`],
      classes: ['a'],
    },
    { kind: 'refused' },
    httpTransport(),
  );
  cases.push({
    transport: 'graphql',
    category: 'huge strings',
    name: 'a query of 500,000 characters of whitespace',
    method: 'POST',
    path: '/graphql',
    headers: { ...JSON_HEADERS },
    body: JSON.stringify({ query: `{ models { name } ${' '.repeat(500_000)}}` }),
    expect: { kind: 'answers' },
  });
  cases.push({
    transport: 'graphql',
    category: 'huge strings',
    name: 'an operation name of 200,000 characters',
    method: 'POST',
    path: '/graphql',
    headers: { ...JSON_HEADERS },
    body: JSON.stringify({ query: `query ${'Q'.repeat(200_000)} { models { name } }` }),
    expect: { kind: 'answers' },
  });
  cases.push({
    transport: 'graphql',
    category: 'huge strings',
    name: 'a string literal of 500,000 characters',
    method: 'POST',
    path: '/graphql',
    headers: { ...JSON_HEADERS },
    body: JSON.stringify({ query: `{ job(id: "${'z'.repeat(500_000)}") { id } }` }),
    expect: { kind: 'answers' },
  });
  cases.push({
    transport: 'graphql',
    category: 'huge strings',
    name: 'a comment of 500,000 characters',
    method: 'POST',
    path: '/graphql',
    headers: { ...JSON_HEADERS },
    body: JSON.stringify({ query: `# ${'c'.repeat(500_000)}\n{ models { name } }` }),
    expect: { kind: 'answers' },
  });
  cases.push({
    transport: 'rest',
    category: 'huge strings',
    name: 'a job id of 100,000 characters',
    method: 'GET',
    path: `/api/tasks/${TASK}/jobs/${'i'.repeat(100_000)}`,
    headers: {},
    expect: { kind: 'refused' },
  });
  cases.push({
    transport: 'rest',
    category: 'huge strings',
    name: 'a model path segment of 50,000 characters',
    method: 'POST',
    path: `/api/tasks/${TASK}/${'m'.repeat(50_000)}/jobs`,
    headers: { ...JSON_HEADERS },
    body: goodRest,
    expect: { kind: 'refused' },
  });
  cases.push({
    transport: 'graphql',
    category: 'huge strings',
    name: 'a header of 6,000 characters',
    method: 'POST',
    path: '/graphql',
    headers: { ...JSON_HEADERS, 'x-request-id': 'r'.repeat(6_000) },
    body: JSON.stringify({ query: '{ models { name } }' }),
    expect: { kind: 'answers' },
  });

  // -- invalid base64 and data URLs --
  const base64Of = rng.pick(validImages).toString('base64');
  const badStrings: [string, string][] = [
    ['empty string', ''],
    ['whitespace only', ' \n\t '],
    ['padding only', '===='],
    ['one character', 'A'],
    ['five characters', 'AAAAA'],
    ['too much padding', `${base64Of}===`],
    ['padding in the middle', `${base64Of.slice(0, 8)}==${base64Of.slice(8)}`],
    ['mixed alphabets', `${base64Of.slice(0, 8)}-_+/${base64Of.slice(12)}`],
    ['non-ASCII characters', `${base64Of.slice(0, 8)}éü${base64Of.slice(10)}`],
    ['percent-encoded', encodeURIComponent(`${base64Of}==`).replace(/%/g, '%25')],
    ['data URL without base64', `data:image/png,${base64Of}`],
    ['data URL of text/plain', `data:text/plain;base64,${base64Of}`],
    ['data URL of no type', `data:;base64,${base64Of}`],
    ['data URL with an empty payload', 'data:image/png;base64,'],
    ['data URL without a comma', `data:image/png;base64${base64Of}`],
    ['data URL of application/octet-stream', `data:application/octet-stream;base64,${base64Of}`],
    // URLs are fetched under the guard; these are refused by it without any connection (tests never leave loopback).
    ['a URL to the cloud metadata address', 'http://169.254.169.254/latest/meta-data/'],
    ['a URL to a loopback port', 'http://127.0.0.1:1/cat.png'],
    ['a file path', '/etc/passwd'],
    ['a file URL', 'file:///etc/passwd'],
    ['hex instead of base64', rng.pick(validImages).toString('hex')],
  ];
  for (const [name, value] of badStrings)
    jobCase('invalid base64', name, { images: [value], classes: ['a', 'b'] }, { kind: 'refused' }, anyTransport());
  for (let i = 0; i < 20; i += 1) {
    const chars = base64Of.split('');
    const count = rng.int(1, 4);
    for (let k = 0; k < count; k += 1)
      chars[rng.int(0, chars.length - 1)] = rng.pick(['!', '*', '"', '\\', '#', '~', '\u0000', '.', ',', '?']);
    jobCase(
      'invalid base64',
      `${count} invalid characters (#${i})`,
      { images: [chars.join('')], classes: ['a', 'b'] },
      { kind: 'refused' },
      anyTransport(),
    );
  }
  // Valid encodings of valid images must go through: URL-safe alphabet, no padding, line breaks, upper-case scheme.
  const sample = rng.pick(validImages);
  const encodings: [string, string][] = [
    ['URL-safe base64', sample.toString('base64url')],
    ['base64 without padding', sample.toString('base64').replace(/=+$/, '')],
    ['MIME base64 with line breaks', sample.toString('base64').replace(/(.{76})/g, '$1\r\n')],
    ['upper-case data URL', `DATA:IMAGE/PNG;BASE64,${sample.toString('base64')}`],
    ['data URL with a charset parameter', `data:image/png;charset=binary;base64,${sample.toString('base64')}`],
    ['a JPEG labelled image/png', dataUrl(samples.jpeg, 'image/png')],
  ];
  for (const [name, value] of encodings)
    jobCase(
      'invalid base64',
      `valid: ${name}`,
      { images: [value], classes: ['a', 'b'] },
      { kind: 'completes', images: 1, classes: 2 },
      anyTransport(),
    );

  // -- truncated and corrupted images --
  const formats: [string, Buffer][] = [
    ['JPEG', samples.jpeg],
    ['PNG', samples.png],
    ['WebP', samples.webp],
    ['GIF', samples.gif],
  ];
  for (let i = 0; i < 64; i += 1) {
    const [format, bytes] = formats[i % formats.length] as [string, Buffer];
    const cut = rng.int(1, bytes.length - 1);
    jobCase(
      'truncated image',
      `${format} cut to ${cut} of ${bytes.length} bytes`,
      { images: [dataUrl(bytes.subarray(0, cut))], classes: ['a', 'b'] },
      { kind: 'settles' },
      anyTransport(),
    );
  }
  for (let i = 0; i < 64; i += 1) {
    const [format, bytes] = formats[i % formats.length] as [string, Buffer];
    const corrupted = Buffer.from(bytes);
    const flips = rng.int(1, 24);
    // Past the signature, so most cases reach the decoder rather than the format sniffing.
    for (let k = 0; k < flips; k += 1)
      corrupted[rng.int(Math.min(16, corrupted.length - 1), corrupted.length - 1)] = rng.int(0, 255);
    jobCase(
      'corrupted image',
      `${format} with ${flips} random bytes (#${i})`,
      { images: [dataUrl(corrupted)], classes: ['a', 'b'] },
      { kind: 'settles' },
      anyTransport(),
    );
  }
  for (let i = 0; i < 8; i += 1) {
    const [format, bytes] = formats[i % formats.length] as [string, Buffer];
    // A bad image among good ones: the whole job is refused or fails, never a partial result.
    const cut = bytes.subarray(0, rng.int(8, bytes.length - 8));
    jobCase(
      'truncated image',
      `${format} truncated among 2 good images (#${i})`,
      { images: [image(), dataUrl(cut), image()], classes: ['a', 'b'] },
      { kind: 'settles' },
      rng.pick(['graphql-images', 'rest-batched', 'ws'] as const),
    );
  }

  // -- non-image files --
  for (const [name, bytes] of Object.entries(NON_IMAGE_FILES)) {
    jobCase(
      'non-image file',
      name,
      { images: [dataUrl(bytes)], classes: ['a', 'b'] },
      { kind: 'refused' },
      anyTransport(),
    );
  }
  for (let i = 0; i < 12; i += 1) {
    const bytes = rng.bytes(rng.int(1, 2048));
    jobCase(
      'non-image file',
      `${bytes.length} random bytes (#${i})`,
      { images: [dataUrl(bytes)], classes: ['a', 'b'] },
      { kind: 'refused' },
      anyTransport(),
    );
  }

  // -- odd but valid images: must complete --
  for (const { name, bytes } of samples.odd) {
    jobCase(
      'odd but valid image',
      name,
      { images: [dataUrl(bytes)], classes: ['a', 'b', 'c'] },
      { kind: 'completes', images: 1, classes: 3 },
      anyTransport(),
    );
    jobCase(
      'odd but valid image',
      `${name}, bare base64`,
      { images: [bytes.toString('base64')], classes: ['x', 'y'] },
      { kind: 'completes', images: 1, classes: 2 },
      httpTransport(),
    );
  }
  const mixed = samples.odd.slice(0, 8).map(({ bytes }) => dataUrl(bytes));
  jobCase(
    'odd but valid image',
    'eight odd images in one job',
    { images: mixed, classes: ['a', 'b'] },
    { kind: 'completes', images: mixed.length, classes: 2 },
    rng.pick(['graphql-images', 'rest-batched'] as const),
  );

  // -- decompression bombs: small files, huge headers; refused from the header --
  const bombs: [string, Buffer][] = [
    ['PNG 20000x20000', craftPng(20_000, 20_000)],
    ['PNG 100000x100000', craftPng(100_000, 100_000)],
    ['PNG 1x2^31-1', craftPng(1, 2 ** 31 - 1)],
    ['JPEG 20000x20000', withJpegSize(samples.jpeg, 20_000, 20_000)],
    ['JPEG 65535x65535', withJpegSize(samples.jpeg, 65_535, 65_535)],
    ['GIF 20000x20000', withGifSize(samples.gif, 20_000, 20_000)],
    ['WebP 16383x16383', withWebpSize(samples.webp, 16_383, 16_383)],
  ];
  for (const [name, bytes] of bombs) {
    for (const transport of rng.pick([
      ['graphql-image', 'rest-single'],
      ['graphql-images', 'ws'],
      ['rest-batched', 'graphql-image'],
    ] as const)) {
      jobCase(
        'decompression bomb',
        `${name} (${bytes.length} bytes)`,
        { images: [dataUrl(bytes)], classes: ['a', 'b'] },
        { kind: 'refused' },
        transport,
      );
    }
  }

  // -- class names --
  const classCases: [string, unknown, FuzzExpectation][] = [
    ['no classes', [], { kind: 'refused' }],
    ['an empty class', ['a', ''], { kind: 'refused' }],
    ['a whitespace-only class', ['a', ' \t\n'], { kind: 'refused' }],
    ['duplicate classes', ['cat', 'dog', 'cat'], { kind: 'refused' }],
    ['duplicates up to surrounding spaces', ['cat', ' cat '], { kind: 'refused' }],
    ['10,000 classes', classesOf(10_000), { kind: 'refused' }],
    [`${options.maxClassesPerJob + 1} classes`, classesOf(options.maxClassesPerJob + 1), { kind: 'refused' }],
    [
      `${options.maxClassesPerJob} classes`,
      classesOf(options.maxClassesPerJob),
      { kind: 'completes', images: 1, classes: options.maxClassesPerJob },
    ],
    ['one class', ['only'], { kind: 'completes', images: 1, classes: 1 }],
    ['case-different classes', ['Cat', 'cat'], { kind: 'completes', images: 1, classes: 2 }],
    ['emoji and scripts', ['🐈', '東京タワー', 'مرحبا', 'ĉu ne?'], { kind: 'completes', images: 1, classes: 4 }],
    ['control characters', ['a\u0000b', 'c\u0007d', 'e\u001bf'], { kind: 'completes', images: 1, classes: 3 }],
    ['a lone surrogate', ['\ud800', 'b'], { kind: 'settles' }],
    ['zero-width characters', ['\u200b', '\u200bcat'], { kind: 'completes', images: 1, classes: 2 }],
    ['HTML entities', ['&amp;', '&lt;script&gt;', '&#0;'], { kind: 'completes', images: 1, classes: 3 }],
    ['template placeholders in class names', ['{}', '{}{}{}', 'a {} b'], { kind: 'completes', images: 1, classes: 3 }],
    [
      'special tokens in class names',
      ['<|endoftext|>', '<|startoftext|>', '<|endoftext|><|endoftext|>'],
      { kind: 'completes', images: 1, classes: 3 },
    ],
    [
      'a class of 1000 spaces around a word',
      [`${' '.repeat(500)}cat${' '.repeat(497)}`, 'dog'],
      { kind: 'completes', images: 1, classes: 2 },
    ],
  ];
  for (const [name, classes, expect] of classCases)
    jobCase('class names', name, { images: [image()], classes }, expect, anyTransport());
  for (let i = 0; i < 10; i += 1) {
    const classes = Array.from({ length: rng.int(1, 30) }, () =>
      rng.string(rng.int(1, 40), `${WORD_ALPHABET}     -'&;#0123456789ÄÖÜßéçñ`),
    );
    const distinct =
      new Set(classes.map((label) => label.trim())).size === classes.length &&
      classes.every((label) => label.trim() !== '');
    jobCase(
      'class names',
      `${classes.length} random classes (#${i})`,
      { images: [image()], classes },
      distinct ? { kind: 'completes', images: 1, classes: classes.length } : { kind: 'refused' },
      anyTransport(),
    );
  }

  // -- unknown models --
  const unknownModels = [
    'nope',
    'clip-vit-base-patch32',
    'openai/clip-vit-large-patch14',
    '../../../etc/passwd',
    'tiny/../tiny',
    '',
    ' ',
    'tïny',
    '%00',
    'a'.repeat(300),
    'null',
    'undefined',
    '__proto__',
    'constructor',
    'toString',
  ];
  for (const model of unknownModels) {
    jobCase(
      'unknown model',
      `model ${JSON.stringify(model.slice(0, 40))}`,
      { images: [image()], classes: ['a', 'b'], model },
      { kind: 'refused' },
      rng.pick(['graphql-image', 'ws'] as const),
    );
    if (model.trim() !== '' && !model.includes('/')) {
      jobCase(
        'unknown model',
        `model path ${JSON.stringify(model.slice(0, 40))}`,
        { images: [image()], classes: ['a', 'b'], model },
        { kind: 'refused' },
        rng.pick(['rest-single', 'rest-batched'] as const),
      );
    }
  }
  // Names that do resolve must work (any case, surrounding spaces).
  jobCase(
    'unknown model',
    'model named in upper case',
    { images: [image()], classes: ['a', 'b'], model: modelName.toUpperCase() },
    { kind: 'completes', images: 1, classes: 2 },
    'graphql-image',
  );
  jobCase(
    'unknown model',
    'model named with a trailing space',
    { images: [image()], classes: ['a', 'b'], model: `${modelName.toUpperCase()} ` },
    { kind: 'completes', images: 1, classes: 2 },
    'rest-single',
  );

  // -- query abuse: depth, aliases, fragments, sizes --
  /** `variablesJson` is JSON text: deeply nested values are written by hand (JSON.stringify recurses). */
  const post = (name: string, query: string, variablesJson = '{}'): void => {
    cases.push({
      transport: 'graphql',
      category: 'query abuse',
      name,
      method: 'POST',
      path: '/graphql',
      headers: { ...JSON_HEADERS },
      body: `{"query": ${JSON.stringify(query)}, "variables": ${variablesJson}}`,
      expect: { kind: 'refused' },
    });
  };
  for (const depth of [options.maxQueryDepth + 1, 50, 500, 5_000, 20_000]) {
    post(
      `selection ${depth} deep`,
      `{ ${'jobs { nodes { '.repeat(Math.ceil(depth / 2))}id${' } }'.repeat(Math.ceil(depth / 2))} }`,
    );
    post(`${depth} nested braces (invalid)`, `{${'{'.repeat(depth)}${'}'.repeat(depth)}}`);
  }
  for (const depth of [100, 5_000]) {
    // Inline fragments add no depth: a valid query however deep they nest (or a parse error past the parser's stack).
    cases.push({
      transport: 'graphql',
      category: 'query abuse',
      name: `inline fragments ${depth} deep`,
      method: 'POST',
      path: '/graphql',
      headers: { ...JSON_HEADERS },
      body: JSON.stringify({ query: `{ models { ${'... on Model { '.repeat(depth)}name${' }'.repeat(depth)} } }` }),
      expect: { kind: 'answers' },
    });
    post(
      `list variable ${depth} deep`,
      'query($c: [String!]!) { models { name } }',
      `{"c": ${'['.repeat(depth)}${']'.repeat(depth)}}`,
    );
    post(
      `JSON config ${depth} deep`,
      CLASSIFY,
      `{"input": {"image": ${JSON.stringify(image())}, "classes": ["a"], "config": ${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}}`,
    );
    post(
      `JSON config list ${depth} deep`,
      CLASSIFY,
      `{"input": {"image": ${JSON.stringify(image())}, "classes": ["a"], "config": {"promptTemplates": ${'['.repeat(depth)}${']'.repeat(depth)}}}}`,
    );
  }
  for (const count of [options.maxAliases + 1, 1_000, 20_000]) {
    post(`${count} aliases`, `{ ${Array.from({ length: count }, (_, i) => `a${i}: models { name }`).join(' ')} }`);
    post(
      `${count} aliased classify mutations`,
      `mutation { ${Array.from({ length: count }, (_, i) => `m${i}: classify(input: { image: "x", classes: ["a"] }) { id }`).join(' ')} }`,
    );
  }
  for (const levels of [16, 24, 32]) {
    const fragments = Array.from(
      { length: levels },
      (_, i) => `fragment F${i} on Query { ${i === levels - 1 ? 'models { name }' : `...F${i + 1} ...F${i + 1}`} }`,
    ).join(' ');
    post(`fragment spreads doubling ${levels} times`, `query { ...F0 } ${fragments}`);
    const nested = Array.from(
      { length: levels },
      (_, i) =>
        `fragment G${i} on Model { name ${i === levels - 1 ? '' : `...G${i + 1} ... on Model { ...G${i + 1} }`} }`,
    ).join(' ');
    post(`model fragments doubling ${levels} times`, `query { models { ...G0 } } ${nested}`);
  }
  post('a fragment cycle', 'query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }');
  post('a self-spreading fragment', 'query { ...A } fragment A on Query { models { name } ...A }');
  post('50,000 repeated fields', `{ ${'models { name } '.repeat(50_000)}}`);
  post('100,000 __typename fields', `{ ${'__typename '.repeat(100_000)}}`);
  post(
    '5,000 variables',
    `query(${Array.from({ length: 5_000 }, (_, i) => `$v${i}: Int`).join(', ')}) { models { name } }`,
  );
  post('10,000 directives', `{ models @include(if: true) { name ${'@skip(if: false) '.repeat(10_000)}} }`);
  post(
    'complexity over the limit',
    'query { jobs(first: 100) { nodes { result { images { top(k: 1000) { label probability } } } } } }',
  );
  post(
    'complexity through variables',
    'query($k: Int) { jobs(first: 100) { nodes { result { images { top(k: $k) { label } } } } } }',
    '{"k": 100000}',
  );
  post(
    'introspection nested deeply',
    `{ __schema { types { ${'fields { type { '.repeat(30)}name${' } }'.repeat(30)} } } }`,
  );

  // -- oversized bodies --
  const justOver = options.maxBodyBytes + 1;
  const padded = (size: number): string => {
    const empty = JSON.stringify({ query: '{ models { name } }', variables: { pad: '' } });
    return JSON.stringify({
      query: '{ models { name } }',
      variables: { pad: 'p'.repeat(Math.max(0, size - empty.length)) },
    });
  };
  for (const size of [justOver, options.maxBodyBytes * 2, options.maxBodyBytes * 5]) {
    cases.push({
      transport: 'graphql',
      category: 'oversized body',
      name: `GraphQL body of ${size} bytes`,
      method: 'POST',
      path: '/graphql',
      headers: { ...JSON_HEADERS },
      body: padded(size),
      expect: { kind: 'refused' },
    });
    cases.push({
      transport: 'rest',
      category: 'oversized body',
      name: `REST body of ${size} bytes`,
      method: 'POST',
      path: restPath,
      headers: { ...JSON_HEADERS },
      body: JSON.stringify({ image: 'A'.repeat(size), classes: ['a'] }),
      expect: { kind: 'refused' },
    });
  }
  const zeros = gzipSync(Buffer.from(padded(options.maxBodyBytes * 8)));
  cases.push({
    transport: 'graphql',
    category: 'oversized body',
    name: `gzip bomb (${zeros.length} bytes inflating past the limit)`,
    method: 'POST',
    path: '/graphql',
    headers: { ...JSON_HEADERS, 'content-encoding': 'gzip' },
    body: zeros,
    expect: { kind: 'refused' },
  });
  cases.push({
    transport: 'rest',
    category: 'oversized body',
    name: `gzip bomb (${zeros.length} bytes inflating past the limit)`,
    method: 'POST',
    path: restPath,
    headers: { ...JSON_HEADERS, 'content-encoding': 'gzip' },
    body: zeros,
    expect: { kind: 'refused' },
  });
  cases.push({
    transport: 'rest',
    category: 'oversized body',
    name: 'content-encoding gzip on a plain body',
    method: 'POST',
    path: restPath,
    headers: { ...JSON_HEADERS, 'content-encoding': 'gzip' },
    body: goodRest,
    expect: { kind: 'refused' },
  });
  cases.push({
    transport: 'graphql',
    category: 'oversized body',
    name: 'unknown content-encoding',
    method: 'POST',
    path: '/graphql',
    headers: { ...JSON_HEADERS, 'content-encoding': 'zstd-ish' },
    body: goodGraphql,
    expect: { kind: 'refused' },
  });
  cases.push({
    transport: 'rest',
    category: 'oversized body',
    name: `${options.maxImagesPerJob + 1} images (over the image limit)`,
    method: 'POST',
    path: `/api/tasks/${TASK}/batched/${modelName}/jobs`,
    headers: { ...JSON_HEADERS },
    body: JSON.stringify({
      image: Array(options.maxImagesPerJob + 1).fill(dataUrl(samples.gif, 'image/gif')),
      classes: ['a'],
    }),
    expect: { kind: 'refused' },
  });

  // -- HTTP misuse --
  const misuse: [
    HttpFuzzCase['transport'],
    string,
    HttpFuzzCase['method'],
    string,
    Record<string, string>,
    string | undefined,
    FuzzExpectation,
  ][] = [
    [
      'graphql',
      'GET without a preflight header (CSRF)',
      'GET',
      `/graphql?query=${encodeURIComponent('{ models { name } }')}`,
      {},
      undefined,
      { kind: 'refused' },
    ],
    [
      'graphql',
      'GET with a preflight header',
      'GET',
      `/graphql?query=${encodeURIComponent('{ models { name } }')}`,
      { 'apollo-require-preflight': 'true' },
      undefined,
      { kind: 'answers' },
    ],
    [
      'graphql',
      'a mutation over GET',
      'GET',
      `/graphql?query=${encodeURIComponent('mutation { cancelJob(id: "x") { id } }')}`,
      { 'apollo-require-preflight': 'true' },
      undefined,
      { kind: 'refused' },
    ],
    [
      'graphql',
      'POST as text/plain (CSRF)',
      'POST',
      '/graphql',
      { 'content-type': 'text/plain' },
      goodGraphql,
      { kind: 'refused' },
    ],
    [
      'graphql',
      'POST as a form (CSRF)',
      'POST',
      '/graphql',
      { 'content-type': 'application/x-www-form-urlencoded' },
      `query=${encodeURIComponent('{ models { name } }')}`,
      { kind: 'refused' },
    ],
    [
      'graphql',
      'POST as multipart (CSRF)',
      'POST',
      '/graphql',
      { 'content-type': 'multipart/form-data; boundary=x' },
      '--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n{ models { name } }\r\n--x--\r\n',
      { kind: 'refused' },
    ],
    ['graphql', 'POST without a content type', 'POST', '/graphql', {}, goodGraphql, { kind: 'refused' }],
    [
      'graphql',
      'JSON in UTF-16',
      'POST',
      '/graphql',
      { 'content-type': 'application/json; charset=utf-16' },
      goodGraphql,
      { kind: 'refused' },
    ],
    ['graphql', 'PUT', 'PUT', '/graphql', { ...JSON_HEADERS }, goodGraphql, { kind: 'refused' }],
    ['graphql', 'DELETE', 'DELETE', '/graphql', {}, undefined, { kind: 'refused' }],
    [
      'graphql',
      'a path below /graphql',
      'POST',
      '/graphql/extra',
      { ...JSON_HEADERS },
      goodGraphql,
      { kind: 'settles' },
    ],
    [
      'rest',
      'REST as text/plain (a CSRF form post)',
      'POST',
      restPath,
      { 'content-type': 'text/plain' },
      goodRest,
      { kind: 'refused' },
    ],
    [
      'rest',
      'REST as a form',
      'POST',
      restPath,
      { 'content-type': 'application/x-www-form-urlencoded' },
      'image=x&classes=a',
      { kind: 'refused' },
    ],
    [
      'rest',
      'REST JSON in UTF-16',
      'POST',
      restPath,
      { 'content-type': 'application/json; charset=utf-16' },
      goodRest,
      { kind: 'refused' },
    ],
    ['rest', 'GET on a POST route', 'GET', restPath, {}, undefined, { kind: 'refused' }],
    ['rest', 'DELETE a job', 'DELETE', `/api/tasks/${TASK}/jobs/abc`, {}, undefined, { kind: 'refused' }],
    [
      'rest',
      'an unknown task',
      'POST',
      `/api/tasks/image-to-text/${modelName}/jobs`,
      { ...JSON_HEADERS },
      goodRest,
      { kind: 'refused' },
    ],
    [
      'rest',
      'an unknown task (GET job)',
      'GET',
      '/api/tasks/image-to-text/jobs/abc',
      {},
      undefined,
      { kind: 'refused' },
    ],
    [
      'rest',
      'a malformed percent escape',
      'GET',
      `/api/tasks/${TASK}/jobs/%E0%A4%A`,
      {},
      undefined,
      { kind: 'refused' },
    ],
    [
      'rest',
      'a percent-encoded slash in the id',
      'GET',
      `/api/tasks/${TASK}/jobs/..%2F..%2Fetc%2Fpasswd`,
      {},
      undefined,
      { kind: 'refused' },
    ],
    ['rest', 'a NUL in the id', 'GET', `/api/tasks/${TASK}/jobs/%00`, {}, undefined, { kind: 'refused' }],
    [
      'rest',
      'an unknown job',
      'GET',
      `/api/tasks/${TASK}/jobs/00000000-0000-0000-0000-000000000000`,
      {},
      undefined,
      { kind: 'refused' },
    ],
    [
      'rest',
      'an unknown batched job',
      'GET',
      `/api/tasks/${TASK}/batched/jobs/nope`,
      {},
      undefined,
      { kind: 'refused' },
    ],
    ['rest', 'an unknown route', 'GET', '/api/whatever', {}, undefined, { kind: 'refused' }],
    ['rest', 'tasks of an unknown model', 'GET', '/api/models/nope/tasks', {}, undefined, { kind: 'refused' }],
    ['rest', 'models of an unknown task', 'GET', '/api/tasks/nope/models', {}, undefined, { kind: 'refused' }],
    ['rest', 'list tasks', 'GET', '/api/tasks', {}, undefined, { kind: 'answers' }],
    ['rest', 'list models', 'GET', '/api/models', {}, undefined, { kind: 'answers' }],
    [
      'rest',
      'a query string on a POST',
      'POST',
      `${restPath}?image=x&classes=y&__proto__[a]=1`,
      { ...JSON_HEADERS },
      JSON.stringify({ image: image(), classes: ['a', 'b'] }),
      { kind: 'completes', images: 1, classes: 2 },
    ],
    [
      'rest',
      'the legacy route with bad input',
      'POST',
      `/api/legacy/tasks/${TASK}/${modelName}/jobs`,
      { ...JSON_HEADERS },
      JSON.stringify({ image: 'bad', classes: ['a'] }),
      { kind: 'refused' },
    ],
    [
      'rest',
      'a prototype-polluting body',
      'POST',
      restPath,
      { ...JSON_HEADERS },
      `{"image": ${JSON.stringify(image())}, "classes": ["a", "b"], "__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}`,
      { kind: 'completes', images: 1, classes: 2 },
    ],
  ];
  for (const [transport, name, method, path, headers, body, expect] of misuse) {
    cases.push({
      transport,
      category: 'HTTP misuse',
      name,
      method,
      path,
      headers,
      ...(body === undefined ? {} : { body }),
      expect,
    });
  }

  // -- graphql-ws frames --
  const init = JSON.stringify({ type: 'connection_init' });
  const subscribe = (id: unknown, payload: unknown): string => JSON.stringify({ type: 'subscribe', id, payload });
  const models = { query: '{ models { name } }' };
  const ws = (name: string, frames: WsFrame[], expect: FuzzExpectation, extra: Partial<WsFuzzCase> = {}): void => {
    cases.push({ transport: 'ws', category: 'graphql-ws frames', name, frames, expect, ...extra });
  };
  const bad = { kind: 'ws-closes', codes: [4400] } as const;
  ws('not JSON', [{ data: 'hello there', when: 'open' }], bad);
  ws(
    'not JSON after ack',
    [
      { data: init, when: 'open' },
      { data: '{"type": "subscribe", ', when: 'ack' },
    ],
    bad,
  );
  ws('a JSON number', [{ data: '42', when: 'open' }], bad);
  ws('a JSON list', [{ data: '[1, 2]', when: 'open' }], bad);
  ws('null', [{ data: 'null', when: 'open' }], bad);
  ws('type is a number', [{ data: '{"type": 1}', when: 'open' }], bad);
  ws('an unknown type', [{ data: '{"type": "explode"}', when: 'open' }], bad);
  ws('no type', [{ data: '{"payload": {}}', when: 'open' }], bad);
  ws(
    'connection_init with a string payload',
    [{ data: '{"type": "connection_init", "payload": "x"}', when: 'open' }],
    bad,
  );
  ws('a binary frame of random bytes', [{ data: rng.bytes(32), binary: true, when: 'open' }], bad);
  ws('a text frame of invalid UTF-8', [{ data: Buffer.from([0x7b, 0xff, 0xfe, 0xc3, 0x28, 0x7d]), when: 'open' }], {
    kind: 'ws-closes',
    codes: [1007, 4400],
  });
  ws('subscribe before connection_init', [{ data: subscribe('1', models), when: 'open' }], {
    kind: 'ws-closes',
    codes: [4401],
  });
  ws(
    'connection_init twice',
    [
      { data: init, when: 'open' },
      { data: init, when: 'ack' },
    ],
    { kind: 'ws-closes', codes: [4429] },
  );
  ws(
    'subscribe with a numeric id',
    [
      { data: init, when: 'open' },
      { data: subscribe(1, models), when: 'ack' },
    ],
    bad,
  );
  ws(
    'subscribe with an empty id',
    [
      { data: init, when: 'open' },
      { data: subscribe('', models), when: 'ack' },
    ],
    bad,
  );
  ws(
    'subscribe without a payload',
    [
      { data: init, when: 'open' },
      { data: JSON.stringify({ type: 'subscribe', id: '1' }), when: 'ack' },
    ],
    bad,
  );
  ws(
    'subscribe with a string payload',
    [
      { data: init, when: 'open' },
      { data: subscribe('1', 'query'), when: 'ack' },
    ],
    bad,
  );
  ws(
    'subscribe with a numeric query',
    [
      { data: init, when: 'open' },
      { data: subscribe('1', { query: 5 }), when: 'ack' },
    ],
    bad,
  );
  ws(
    'subscribe with list variables',
    [
      { data: init, when: 'open' },
      { data: subscribe('1', { query: '{ models { name } }', variables: [1] }), when: 'ack' },
    ],
    bad,
  );
  ws(
    'duplicate subscription ids',
    [
      { data: init, when: 'open' },
      { data: subscribe('same', { query: 'subscription { jobUpdated(id: "nope") { id } }' }), when: 'ack' },
      { data: subscribe('same', models), when: 'ack' },
    ],
    { kind: 'ws-closes', codes: [4409] },
  );
  ws(
    'a legacy subscriptions-transport-ws client',
    [
      { data: JSON.stringify({ type: 'connection_init', payload: {} }), when: 'open' },
      { data: JSON.stringify({ type: 'start', id: '1', payload: models }), when: 'ack' },
    ],
    { kind: 'ws-closes', codes: [4406, 1006] },
    { protocol: 'graphql-ws' },
  );
  ws('no subprotocol', [{ data: init, when: 'open' }], { kind: 'ws-closes', codes: [4406, 1002] }, { protocol: null });
  ws('no connection_init (init timeout)', [], { kind: 'ws-closes', codes: [4408] }, { watchMs: 5_000 });
  ws(
    `a message over MAX_BODY_BYTES (${justOver} bytes)`,
    [
      { data: init, when: 'open' },
      { data: subscribe('1', { query: `{ models { name } }${' '.repeat(justOver)}` }), when: 'ack' },
    ],
    { kind: 'ws-closes', codes: [1009] },
  );
  ws('a message over MAX_BODY_BYTES before init', [{ data: 'x'.repeat(justOver), when: 'open' }], {
    kind: 'ws-closes',
    codes: [1009],
  });
  ws(
    'a ping with a payload',
    [
      { data: init, when: 'open' },
      { data: JSON.stringify({ type: 'ping', payload: { a: 1 } }), when: 'ack' },
    ],
    { kind: 'ws-stays-open' },
  );
  ws(
    'an unsolicited pong',
    [
      { data: init, when: 'open' },
      { data: JSON.stringify({ type: 'pong' }), when: 'ack' },
    ],
    { kind: 'ws-stays-open' },
  );
  ws(
    'complete for an unknown id',
    [
      { data: init, when: 'open' },
      { data: JSON.stringify({ type: 'complete', id: 'never' }), when: 'ack' },
    ],
    { kind: 'ws-stays-open' },
  );
  const wsQueries: [string, unknown][] = [
    ['a syntax error', { query: '{ models { ' }],
    ['an unknown field', { query: '{ secrets }' }],
    ['an unknown job', { query: 'subscription { jobUpdated(id: "unknown") { id } }' }],
    ['a missing variable', { query: 'subscription($id: ID!) { jobUpdated(id: $id) { id } }' }],
    [
      'a variable of the wrong type',
      { query: 'subscription($id: ID!) { jobUpdated(id: $id) { id } }', variables: { id: { a: 1 } } },
    ],
    [
      'two subscription fields',
      { query: 'subscription { a: jobUpdated(id: "x") { id } b: jobUpdated(id: "y") { id } }' },
    ],
    ['a selection 40 deep', { query: `{ ${'jobs { nodes { '.repeat(20)}id${' } }'.repeat(20)} }` }],
    ['100 aliases', { query: `{ ${Array.from({ length: 100 }, (_, i) => `a${i}: models { name }`).join(' ')} }` }],
    [
      'fragment spreads doubling 28 times',
      {
        query: `query { ...F0 } ${Array.from({ length: 28 }, (_, i) => `fragment F${i} on Query { ${i === 27 ? 'models { name }' : `...F${i + 1} ...F${i + 1}`} }`).join(' ')}`,
      },
    ],
    [
      'introspection nested deeply',
      { query: `{ __schema { types { ${'fields { type { '.repeat(30)}name${' } }'.repeat(30)} } } }` },
    ],
    ['an operation name that does not exist', { query: 'query A { models { name } }', operationName: 'B' }],
    ['10,000 classes', { query: CLASSIFY, variables: { input: { image: image(), classes: classesOf(10_000) } } }],
    [
      'a decompression bomb',
      { query: CLASSIFY, variables: { input: { image: dataUrl(craftPng(20_000, 20_000)), classes: ['a', 'b'] } } },
    ],
    ['an unknown model', { query: CLASSIFY, variables: { input: { image: image(), classes: ['a'], model: 'nope' } } }],
  ];
  for (const [name, payload] of wsQueries)
    ws(
      `subscribe with ${name}`,
      [
        { data: init, when: 'open' },
        { data: subscribe('1', payload), when: 'ack' },
      ],
      { kind: 'ws-errors' },
    );
  ws(
    'several bad subscriptions on one socket',
    [
      { data: init, when: 'open' },
      ...wsQueries.slice(0, 6).map(([, payload], i) => ({ data: subscribe(`s${i}`, payload), when: 'ack' as const })),
    ],
    { kind: 'ws-errors' },
  );
  for (let i = 0; i < 12; i += 1) {
    // Random JSON-ish garbage that parses as an object with a type graphql-ws does not accept in that state.
    const type = rng.pick(['connection_ack', 'next', 'error', 'Subscribe', 'CONNECTION_INIT', 'complete ', '']);
    ws(
      `a frame of type ${JSON.stringify(type)} (#${i})`,
      [{ data: JSON.stringify({ type, id: rng.string(4), payload: rng.pick([null, 1, 'x', {}, []]) }), when: 'open' }],
      { kind: 'ws-closes', codes: [4400] },
    );
  }
  return cases;
}
