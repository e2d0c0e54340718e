/**
 * What the structural pre-scan of JSON bodies (src/jsonShape.ts) costs, and what it saves: for honest bodies (one
 * large base64 image, a full text-embedding job) the scan beside JSON.parse, which runs anyway; for hostile bodies
 * (millions of tiny values) the scan up to its refusal against what parsing them would cost. Medians of a few runs,
 * in-process, no server: `npm run bench -- --only json-body`.
 */
import { scanJsonShape, type JsonShapeLimits } from '../../src/jsonShape.js';
import { median } from './stats.js';

export interface JsonBodyRow {
  body: string;
  megabytes: number;
  /** Median ms of the scan alone. */
  scanMs: number;
  /** Median ms of JSON.parse alone (what every body paid before the scan). */
  parseMs: number;
  /** What the scan decided. */
  outcome: string;
}

const MB = 1e6;

function timeMs(run: () => unknown, repeats: number): number {
  const times: number[] = [];
  for (let i = 0; i < repeats; i += 1) {
    const started = performance.now();
    run();
    times.push(performance.now() - started);
  }
  return median(times);
}

function base64Body(megabytes: number): Buffer {
  const image = Buffer.alloc(Math.floor((megabytes * MB * 3) / 4), 7).toString('base64');
  return Buffer.from(JSON.stringify({ image: `data:image/png;base64,${image}`, classes: ['a cat', 'a dog'] }));
}

function textJobBody(texts: number, length: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      text: Array.from({ length: texts }, (_, i) => `${i} ${'word '.repeat(length / 5)}`.slice(0, length)),
    }),
  );
}

function tinyValuesBody(megabytes: number): Buffer {
  const head = '{"image":"x","classes":[';
  const count = Math.floor((megabytes * MB - head.length) / 3);
  return Buffer.from(`${head}${'{},'.repeat(count)}{}]}`);
}

function nestedBody(megabytes: number): Buffer {
  const pairs = Math.floor((megabytes * MB) / 2);
  return Buffer.from(`${'['.repeat(pairs)}${']'.repeat(pairs)}`);
}

export function benchJsonBody(limits: JsonShapeLimits, repeats = 5): JsonBodyRow[] {
  const bodies: [string, Buffer][] = [
    ['base64 image, 10 MB', base64Body(10)],
    ['base64 image, 100 MB', base64Body(100)],
    ['1,000 texts of 10,000 characters', textJobBody(1000, 10_000)],
    ['[{},{},…] classes, 30 MB', tinyValuesBody(30)],
    ['[[[…]]] nesting, 20 MB', nestedBody(20)],
  ];
  return bodies.map(([body, bytes]) => {
    const refusal = scanJsonShape(bytes, limits);
    const scanMs = timeMs(() => scanJsonShape(bytes, limits), repeats);
    let parseMs: number;
    try {
      parseMs = timeMs(() => JSON.parse(bytes.toString('utf8')), refusal === null ? repeats : 1);
    } catch {
      parseMs = Number.NaN;
    }
    const outcome =
      refusal === null
        ? 'accepted'
        : refusal.limit === 'depth'
          ? `refused at depth ${refusal.depth}`
          : `refused at ${refusal.values} values`;
    return { body, megabytes: bytes.length / MB, scanMs, parseMs, outcome };
  });
}

export function formatJsonBody(rows: readonly JsonBodyRow[], limits: JsonShapeLimits): string {
  const lines = [
    `JSON body pre-scan (MAX_JSON_DEPTH=${limits.maxDepth}, MAX_JSON_VALUES=${limits.maxValues}), medians:`,
    '',
    '| body | MB | scan ms | JSON.parse ms | scan says |',
    '| --- | ---: | ---: | ---: | --- |',
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.body} | ${row.megabytes.toFixed(1)} | ${row.scanMs.toFixed(2)} | ${Number.isNaN(row.parseMs) ? 'fails' : row.parseMs.toFixed(1)} | ${row.outcome} |`,
    );
  }
  return lines.join('\n');
}
