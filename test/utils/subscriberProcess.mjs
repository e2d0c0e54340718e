// @ts-check
/**
 * A graphql-ws client in a process of its own, for tests that SIGKILL it: it submits `jobs` jobs of
 * `imagesPerJob` distinct PNGs, subscribes to each, prints one JSON line `{ "ids": [...], "states": [...] }`
 * once every subscription has had its first message, then waits to be killed.
 *
 * Usage: node subscriberProcess.mjs '{"url": "http://…", "jobs": 2, "imagesPerJob": 8, "imageSize": 160}'
 */
import { createClient } from 'graphql-ws';
import sharp from 'sharp';
import WebSocket from 'ws';

const options = JSON.parse(process.argv[2] ?? '{}');
const CLASSIFY = 'mutation($input: ClassifyInput!) { classify(input: $input) { id status } }';
const JOB_UPDATED = 'subscription($id: ID!) { jobUpdated(id: $id) { id status } }';

/** @param {number} seed @param {number} size */
async function pngDataUrl(seed, size) {
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < pixels.length; i += 1) pixels[i] = (i * 7 + seed * 131 + ((i * seed) % 23) * 3) % 256;
  const png = await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

const client = createClient({
  url: `${options.url.replace(/^http/, 'ws')}/graphql`,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  lazy: false,
  onNonLazyError: () => {},
});
const ids = [];
const states = [];
for (let job = 0; job < options.jobs; job += 1) {
  const images = await Promise.all(
    Array.from({ length: options.imagesPerJob }, (_, i) => pngDataUrl(7000 + job * 100 + i, options.imageSize)),
  );
  const response = await fetch(`${options.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: CLASSIFY, variables: { input: { images, classes: ['a cat', 'a dog'] } } }),
  });
  const body = /** @type {any} */ (await response.json());
  const id = body?.data?.classify?.id;
  if (typeof id !== 'string') {
    process.stdout.write(`${JSON.stringify({ error: JSON.stringify(body).slice(0, 300) })}\n`);
    process.exit(1);
  }
  ids.push(id);
  states.push(
    new Promise((resolve) => {
      client.subscribe(
        { query: JOB_UPDATED, variables: { id } },
        {
          next: (message) => resolve(String(/** @type {any} */ (message.data)?.jobUpdated?.status ?? 'NONE')),
          error: () => resolve('ERROR'),
          complete: () => resolve('COMPLETE'),
        },
      );
    }),
  );
}
process.stdout.write(`${JSON.stringify({ ids, states: await Promise.all(states) })}\n`);
setInterval(() => {}, 60_000);
