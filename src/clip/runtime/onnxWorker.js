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
import fs from 'node:fs';
import { createRequire } from 'node:module';
import nodePath from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

/** As a child process (onnx.ts's `process` isolation), the IPC channel plays the port and argv[2] the workerData. */
function childPort() {
  const send = process.send?.bind(process);
  if (!send) throw new Error('onnxWorker.js must run as a worker thread or a forked child process');
  // The parent gone (or done with us): nothing left to serve.
  process.on('disconnect', () => process.exit(0));
  return {
    /** @param {'message'} event @param {(message: any) => void} listener */
    on: (event, listener) => process.on(event, listener),
    /** @param {unknown} message */
    postMessage: (message) => send(message),
  };
}

const port = parentPort ?? childPort();

/** @type {{ path: string; sessionOptions: import('onnxruntime-node').InferenceSession.SessionOptions }} */
const { path, sessionOptions } = parentPort ? workerData : JSON.parse(process.argv[2] ?? '{}');

/** @type {import('onnxruntime-node').InferenceSession | null} */
let session = null;

/**
 * @param {unknown} error
 * @returns {{ message: string; provider?: string; reason?: string; detail?: string }}
 */
function serialise(error) {
  const message = error instanceof Error ? error.message : String(error);
  const failure = /** @type {{ providerFailure?: { provider: string; reason: string; detail: string } }} */ (
    error ?? {}
  ).providerFailure;
  return failure ? { message, ...failure } : { message };
}

/**
 * @param {string} provider
 * @param {'not-in-binary' | 'not-installed' | 'failed'} reason
 * @param {string} detail
 */
function providerError(provider, reason, detail) {
  return Object.assign(new Error(`the ${provider} execution provider cannot be used: ${detail}`), {
    providerFailure: { provider, reason, detail },
  });
}

/** Where onnxruntime-node keeps its native libraries, downloaded ones (the CUDA providers) included. */
function nativeDir() {
  const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
  return nodePath.join(nodePath.dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/** @param {string} provider */
function providerLibraryPresent(provider) {
  const file =
    process.platform === 'win32' ? `onnxruntime_providers_${provider}.dll` : `libonnxruntime_providers_${provider}.so`;
  return fs.existsSync(nodePath.join(nativeDir(), file));
}

/** This process's thread ids (Linux; empty elsewhere). */
function taskIds() {
  try {
    return fs.readdirSync('/proc/self/task').map(Number);
  } catch {
    return [];
  }
}

/** This thread's id (Linux), so the server can tell ONNX Runtime's CPU time from its own. */
function ownThreadId() {
  try {
    return [Number(nodePath.basename(fs.readlinkSync('/proc/thread-self')))];
  } catch {
    return [];
  }
}

/**
 * The session, with the providers the settings ask for, or an error naming the first one that cannot be used.
 * Only a provider this binary was built with can be appended (listSupportedBackends says which, and whether its
 * libraries ship in the package); one that is built in still fails at session creation when its libraries or
 * device are missing, which is told apart from a broken graph by creating the session again on the CPU alone.
 * @param {import('onnxruntime-node').InferenceSession.SessionOptions} options
 */
async function createSession(options) {
  const requested = /** @type {string[]} */ (options.executionProviders ?? ['cpu']);
  const backends = ort.listSupportedBackends();
  for (const provider of requested) {
    if (!backends.some((backend) => backend.name === provider)) {
      const built = backends.map((backend) => backend.name).join(', ');
      throw providerError(
        provider,
        'not-in-binary',
        `this onnxruntime-node binary (${process.platform}/${process.arch}) has only ${built}`,
      );
    }
  }
  try {
    return await ort.InferenceSession.create(path, options);
  } catch (error) {
    const accelerators = requested.filter((provider) => provider !== 'cpu');
    if (accelerators.length === 0) throw error;
    // A graph that fails on the CPU alone is broken whatever the providers: that error is the one to report.
    const onCpu = await ort.InferenceSession.create(path, { ...options, executionProviders: ['cpu'] });
    await onCpu.release();
    let culprit = /** @type {string} */ (accelerators[0]);
    let detail = error instanceof Error ? error.message : String(error);
    for (const provider of accelerators.length > 1 ? accelerators : []) {
      const alone = await ort.InferenceSession.create(path, { ...options, executionProviders: [provider] }).then(
        (session) => session.release().then(() => null),
        (/** @type {unknown} */ failure) => failure,
      );
      if (alone !== null) {
        culprit = provider;
        detail = alone instanceof Error ? alone.message : String(alone);
        break;
      }
    }
    const bundled = backends.find((backend) => backend.name === culprit)?.bundled !== false;
    const reason = !bundled && !providerLibraryPresent(culprit) ? 'not-installed' : 'failed';
    throw providerError(
      culprit,
      reason,
      reason === 'not-installed' ? `its libraries are not in ${nativeDir()} (${detail})` : detail,
    );
  }
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
        // ONNX Runtime starts the session's intra-op pool (intraOpNumThreads - 1 threads) while creating it: the threads
        // that appear meanwhile are this session's, or a sibling session's being created at the same time, ORT's either way.
        const before = new Set(taskIds());
        session = await createSession(sessionOptions);
        const threads = [...ownThreadId(), ...taskIds().filter((tid) => !before.has(tid))];
        port.postMessage({
          id: message.id,
          ok: true,
          inputNames: session.inputNames,
          outputNames: session.outputNames,
          inputs: session.inputMetadata.map(describeValue),
          outputs: session.outputMetadata.map(describeValue),
          threads,
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
