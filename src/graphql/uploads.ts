/**
 * @file File uploads: the GraphQL multipart request spec (https://github.com/jaydenseric/graphql-multipart-request-spec)
 * through graphql-upload, with the server's limits enforced while the request streams in.
 *
 * Two halves, one module, because they share the per-request state:
 * - {@link createUploadMiddleware} (HTTP side, mounted before Apollo as graphql-upload's docs say): refuses a
 *   multipart request without Apollo's CSRF preflight header before reading it; counts the body's bytes on the
 *   stream (MAX_BODY_BYTES: graphql-upload's own limits bound one file and the file count, not a request, and it
 *   reads and discards files the `map` does not name); passes MAX_IMAGE_BYTES and MAX_IMAGES_PER_JOB to
 *   graphql-upload as `maxFileSize` / `maxFiles`, so an oversized file is cut off at the limit (busboy's
 *   `limit`), never buffered whole.
 * - {@link readUploadedImages} (resolver side): awaits each `Upload` and reads it into bytes, turning every
 *   failure (too large, body over the limit, missing, client gone) into a coded AppError naming `files[i]`.
 *
 * graphql-upload spools each file to a temporary file (fs-capacitor) that it deletes when the response closes,
 * also when the client disconnects mid-upload; the resolver then fails before a job exists.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import type { FileUpload } from 'graphql-upload/processRequest.mjs';
import graphqlUploadExpress from 'graphql-upload/graphqlUploadExpress.mjs';
import processRequest from 'graphql-upload/processRequest.mjs';
import Upload from 'graphql-upload/Upload.mjs';
import { AppError, ErrorCode, badUserInput } from '../errors.js';

export { default as GraphQLUpload } from 'graphql-upload/GraphQLUpload.mjs';
export type { FileUpload };

/** What one uploaded file is, as a GraphQL argument value: the promise graphql-upload's scalar yields. */
export type UploadedFile = Promise<FileUpload>;

export interface UploadLimits {
  /** Largest file, in bytes (MAX_IMAGE_BYTES). */
  maxFileBytes: number;
  /** Most files in one request (MAX_IMAGES_PER_JOB). */
  maxFiles: number;
  /** Largest request body, counted as it streams in, in bytes (MAX_BODY_BYTES). */
  maxBodyBytes: number;
  /** Largest `operations` / `map` field, in bytes. @default maxBodyBytes, at most 1 MiB */
  maxFieldBytes?: number;
}

/** What the reader needs to know about the request a file came in. */
interface RequestUploadState {
  limits: UploadLimits;
  /** Set once the body went over maxBodyBytes; the request is then cut off. */
  bodyTooLarge: boolean;
  /** Resolves once the whole body has arrived within the limit; rejects (coded) when it went over or the client left. */
  received: Promise<void>;
}

function newRequestState(limits: UploadLimits): { state: RequestUploadState; settle: (error?: AppError) => void } {
  let settle: (error?: AppError) => void = () => undefined;
  const received = new Promise<void>((resolve, reject) => {
    settle = (error) => (error === undefined ? resolve() : reject(error));
  });
  // Nobody may be waiting (a request whose resolvers read no file).
  received.catch(() => undefined);
  return { state: { limits, bodyTooLarge: false, received }, settle };
}

/** The request each file came in (FileUpload objects are graphql-upload's, created per request). */
const stateByFile = new WeakMap<FileUpload, RequestUploadState>();

/** An HTTP-level refusal of a multipart request, answered by the server's GraphQL body-error handler. */
export class UploadRequestError extends Error {
  override name = 'UploadRequestError';
  /** http-errors' flag: the message is safe to send. */
  readonly expose = true;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const CSRF_HEADERS = ['apollo-require-preflight', 'x-apollo-operation-name'];
const MiB = 1024 * 1024;
const READ_CHUNK_BYTES = MiB;

function bodyTooLargeError(limits: UploadLimits): UploadRequestError {
  return new UploadRequestError(413, ErrorCode.PayloadTooLarge, `Request body is larger than the limit of ${limits.maxBodyBytes} bytes (MAX_BODY_BYTES)`);
}

/**
 * Counts the bytes of the request on their way to graphql-upload's parser. Over the limit it stops passing them
 * on and ends (graphql-upload then sees an interrupted request); what the client still sends is read and dropped,
 * up to another `maxBodyBytes`, so it can read the 413 — then the connection is closed.
 */
function countBody(req: IncomingMessage, state: RequestUploadState, settle: (error?: AppError) => void): IncomingMessage {
  const { maxBodyBytes } = state.limits;
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      received += chunk.length;
      if (received <= maxBodyBytes) {
        callback(null, chunk);
        return;
      }
      callback();
      if (!state.bodyTooLarge) {
        state.bodyTooLarge = true;
        settle(new AppError(ErrorCode.PayloadTooLarge, bodyTooLargeError(state.limits).message));
        this.destroy();
        req.unpipe(this);
        let discarded = 0;
        req.on('data', (rest: Buffer) => {
          discarded += rest.length;
          if (discarded > maxBodyBytes) req.socket.destroy();
        });
        req.resume();
      }
    },
  });
  // graphql-upload reads the request's headers and watches it for `close`; a client that goes away closes the counter too.
  Object.assign(counter, { headers: req.headers });
  counter.once('finish', () => settle());
  req.once('close', () => {
    if (req.readableEnded) return;
    settle(badUserInput('the upload was interrupted: the request ended before its body was complete'));
    counter.destroy();
  });
  req.pipe(counter);
  return counter as unknown as IncomingMessage;
}

/** Every graphql-upload `Upload` placeholder in the parsed operations (in variables, at any depth). */
function collectUploads(value: unknown, found: Upload[] = []): Upload[] {
  if (value instanceof Upload) found.push(value);
  else if (Array.isArray(value)) for (const item of value) collectUploads(item, found);
  else if (value !== null && typeof value === 'object') for (const item of Object.values(value)) collectUploads(item, found);
  return found;
}

/** graphql-upload's http-errors refusals (400 malformed, 413 too many files or a field too large) → coded ones. */
function toUploadRequestError(error: unknown, state: RequestUploadState): UploadRequestError {
  if (state.bodyTooLarge) return bodyTooLargeError(state.limits);
  const status = (error as { status?: unknown } | null)?.status;
  const message = error instanceof Error ? error.message : 'Malformed multipart request';
  if (status === 413) {
    const tooMany = /max file uploads exceeded/.test(message);
    return new UploadRequestError(
      413,
      ErrorCode.PayloadTooLarge,
      tooMany ? `Too many files: at most ${state.limits.maxFiles} per request (MAX_IMAGES_PER_JOB)` : message,
    );
  }
  return new UploadRequestError(typeof status === 'number' && status >= 400 && status < 500 ? status : 400, 'BAD_REQUEST', message);
}

/**
 * The Express middleware for multipart GraphQL requests (anything else passes through untouched). Mount it on
 * the GraphQL route after the API-key check and before the JSON body parser and Apollo. Its refusals reach
 * `next(error)` as {@link UploadRequestError}s (status, code, message).
 */
export function createUploadMiddleware(limits: UploadLimits): RequestHandler {
  const maxFieldSize = limits.maxFieldBytes ?? Math.min(limits.maxBodyBytes, MiB);
  const upload = graphqlUploadExpress({
    maxFileSize: limits.maxFileBytes,
    maxFiles: limits.maxFiles,
    maxFieldSize,
    // graphql-upload's documented hook for custom processing: ours counts the body and tags each file with its request.
    processRequest: async (req, res, options) => {
      const { state, settle } = newRequestState(limits);
      try {
        const operations = await processRequest(countBody(req, state, settle), res, options);
        for (const placeholder of collectUploads(operations)) {
          placeholder.promise.then((file) => stateByFile.set(file, state), () => undefined);
        }
        return operations;
      } catch (error) {
        throw toUploadRequestError(error, state);
      }
    },
  });
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) return next();
    // Apollo refuses these too (CSRF prevention), but only after the files were spooled to disk.
    if (!CSRF_HEADERS.some((name) => (req.get(name) ?? '').trim() !== '')) {
      // Nothing of the body has been read: close the connection after answering rather than read it.
      res.setHeader('Connection', 'close');
      next(
        new UploadRequestError(
          400,
          'BAD_REQUEST',
          `This multipart request has been blocked as a potential Cross-Site Request Forgery (CSRF): send a non-empty ${CSRF_HEADERS.join(' or ')} header`,
        ),
      );
      return;
    }
    if (Number(req.headers['content-length']) > limits.maxBodyBytes) {
      // Refused unread (graphql-upload's own answer would wait for a body nobody reads).
      res.setHeader('Connection', 'close');
      next(bodyTooLargeError(limits));
      return;
    }
    upload(req, res, next);
  };
}

/** How an upload failure reads to the client, coded, naming the file. */
function uploadFailure(error: unknown, field: string, state: RequestUploadState | undefined): AppError {
  if (state?.bodyTooLarge === true) {
    return new AppError(ErrorCode.PayloadTooLarge, `Request body is larger than the limit of ${state.limits.maxBodyBytes} bytes (MAX_BODY_BYTES)`, { field });
  }
  const status = (error as { status?: unknown } | null)?.status;
  if (status === 413 && state !== undefined) {
    return badUserInput(`${field}: image is over the limit of ${state.limits.maxFileBytes} bytes (MAX_IMAGE_BYTES)`, field);
  }
  if (status === 413) return new AppError(ErrorCode.PayloadTooLarge, `${field}: ${error instanceof Error ? error.message : 'over a limit'}`, { field });
  if (status === 499) return badUserInput(`${field}: the upload was interrupted`, field);
  if (status === 400) return badUserInput(`${field}: ${error instanceof Error ? error.message : 'file missing in the request'}`, field);
  return badUserInput(`${field}: the upload could not be read`, field);
}

/** Reads one upload to its end, refusing it once it passes the file limit (the stream is dropped at once). */
async function readUpload(upload: UploadedFile, field: string): Promise<{ bytes: Buffer; state: RequestUploadState | undefined }> {
  let file: FileUpload;
  try {
    file = await upload;
  } catch (error) {
    throw uploadFailure(error, field, undefined);
  }
  const state = stateByFile.get(file);
  const maxBytes = state?.limits.maxFileBytes ?? Number.POSITIVE_INFINITY;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    // Large reads from graphql-upload's spool file: a photo in a few reads rather than one per 16 KiB.
    for await (const chunk of file.createReadStream({ highWaterMark: READ_CHUNK_BYTES })) {
      const bytes = chunk as Buffer;
      size += bytes.length;
      // graphql-upload cuts the file at the limit; this keeps the promise even without its middleware's options.
      if (size > maxBytes) throw Object.assign(new Error('file over the limit'), { status: 413 });
      chunks.push(bytes);
    }
  } catch (error) {
    throw uploadFailure(error, field, state);
  }
  return { bytes: Buffer.concat(chunks, size), state };
}

/**
 * The bytes of uploaded files, in order, for a job's images. Files are read one after the other, which is how
 * they arrive on the request. Throws AppError: BAD_USER_INPUT naming `${field}[i]` (over MAX_IMAGE_BYTES,
 * interrupted, missing), PAYLOAD_TOO_LARGE when the request went over MAX_BODY_BYTES.
 */
export async function readUploadedImages(files: readonly UploadedFile[], field = 'files'): Promise<Buffer[]> {
  const images: Buffer[] = [];
  const requests = new Set<RequestUploadState>();
  for (const [index, file] of files.entries()) {
    const { bytes, state } = await readUpload(file, `${field}[${index}]`);
    images.push(bytes);
    if (state !== undefined) requests.add(state);
  }
  // A job exists only for a request that arrived whole and within MAX_BODY_BYTES (files after ours count too).
  for (const state of requests) await state.received;
  return images;
}
