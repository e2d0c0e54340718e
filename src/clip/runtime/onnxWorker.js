// @ts-check
/**
 * The worker thread that owns one ONNX Runtime session.
 *
 * Why a worker: onnxruntime-node's `session.run` returns a promise but computes on the calling thread,
 * blocking Node's event loop for the whole batch (measured: no timer fired during a 376 ms ViT-B/32
 * batch of 8). Running each session here keeps HTTP, websockets and preprocessing responsive.
 *
 * Plain JavaScript (type-checked through JSDoc) so the same file runs under the TypeScript build and under
 * vitest, which does not transform worker entry points. The protocol is defined in onnx.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

if (!parentPort) throw new Error('onnxWorker.js must run as a worker thread');
const port = parentPort;

/** @type {{ path: string; sessionOptions: import('onnxruntime-node').InferenceSession.SessionOptions }} */
const { path, sessionOptions } = workerData;

/** @type {import('onnxruntime-node').InferenceSession | null} */
let session = null;

/**
 * @param {unknown} error
 * @returns {{ message: string }}
 */
function serialise(error) {
  return { message: error instanceof Error ? error.message : String(error) };
}

/**
 * @param {import('onnxruntime-node').InferenceSession.ValueMetadata} m
 * @returns {{ name: string; type: string; shape: (number | string)[] }}
 */
function describeValue(m) {
  if (!m.isTensor) return { name: m.name, type: 'non-tensor', shape: [] };
  return { name: m.name, type: m.type, shape: m.shape.map((d) => (typeof d === 'number' ? d : String(d))) };
}

/**
 * @param {Record<string, { type: any; data: any; dims: number[] }>} wireFeeds
 * @param {string[]} names
 * @param {ArrayBuffer[]} transfer
 */
async function runOnce(wireFeeds, names, transfer) {
  if (!session) throw new Error('the session is not loaded');
  /** @type {Record<string, import('onnxruntime-node').Tensor>} */
  const feeds = {};
  for (const [name, feed] of Object.entries(wireFeeds)) {
    feeds[name] = new ort.Tensor(feed.type, feed.data, feed.dims);
  }
  const result = await session.run(feeds, names);
  /** @type {Record<string, { type: string; data: unknown; dims: number[] }>} */
  const outputs = {};
  for (const name of names) {
    const tensor = result[name];
    if (!tensor) throw new Error(`no output named ${name}`);
    const data = /** @type {Float32Array | Uint16Array} */ (tensor.data).slice();
    outputs[name] = { type: tensor.type, data, dims: tensor.dims.map(Number) };
    transfer.push(/** @type {ArrayBuffer} */ (data.buffer));
    tensor.dispose();
  }
  return outputs;
}

port.on('message', async (/** @type {any} */ message) => {
  try {
    switch (message.type) {
      case 'load': {
        session = await ort.InferenceSession.create(path, sessionOptions);
        port.postMessage({
          id: message.id,
          ok: true,
          inputNames: session.inputNames,
          outputNames: session.outputNames,
          inputs: session.inputMetadata.map(describeValue),
          outputs: session.outputMetadata.map(describeValue),
        });
        return;
      }
      case 'run': {
        /** @type {ArrayBuffer[]} */
        const transfer = [];
        const outputs = await runOnce(message.feeds, message.outputs, transfer);
        port.postMessage({ id: message.id, ok: true, outputs }, transfer);
        return;
      }
      case 'runEach': {
        // A graph with a fixed batch of 1 runs a batch item by item, here, without a round trip per item; each result
        // goes back as soon as it exists (a partial reply), so the caller can answer its job without waiting for the rest.
        for (let index = 0; index < message.feedsList.length; index++) {
          /** @type {ArrayBuffer[]} */
          const transfer = [];
          const outputs = await runOnce(message.feedsList[index], message.outputs, transfer);
          port.postMessage({ id: message.id, ok: true, partial: index, outputs }, transfer);
        }
        port.postMessage({ id: message.id, ok: true, count: message.feedsList.length });
        return;
      }
      case 'release': {
        await session?.release();
        session = null;
        port.postMessage({ id: message.id, ok: true });
        return;
      }
      default:
        throw new Error(`unknown message type ${message.type}`);
    }
  } catch (error) {
    port.postMessage({ id: message.id, ok: false, error: serialise(error) });
  }
});
