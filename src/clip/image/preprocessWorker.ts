/**
 * @file The worker thread of {@link PreprocessPool}: image bytes → `pixel_values`, the same code as on the main
 * thread (preprocess.ts). Bytes arrive transferred; the floats go back transferred. A failure answers its own job
 * only, with the AppError's code, message and field, so the pool can rebuild the very error the in-thread path throws.
 */
import { parentPort } from 'node:worker_threads';
import { isAppError } from '../../errors.js';
import { preprocessImage } from './preprocess.js';
import type { PreprocessRequest, PreprocessResponse } from './preprocessPool.js';

if (!parentPort) throw new Error('preprocessWorker must run as a worker thread');
const port = parentPort;

port.on('message', (request: PreprocessRequest) => {
  const bytes = new Uint8Array(request.bytes, request.byteOffset, request.byteLength);
  preprocessImage(bytes, request.config, request.limits, request.options).then(
    (pixels) => {
      const response: PreprocessResponse = { id: request.id, pixels };
      port.postMessage(response, [pixels.buffer as ArrayBuffer]);
    },
    (error: unknown) => {
      const response: PreprocessResponse = {
        id: request.id,
        error: isAppError(error)
          ? { app: true, code: error.code, message: error.message, field: error.field }
          : { app: false, message: error instanceof Error ? error.message : String(error) },
      };
      port.postMessage(response);
    },
  );
});
