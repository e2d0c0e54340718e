/**
 * @file File uploads: the GraphQL multipart request spec (https://github.com/jaydenseric/graphql-multipart-request-spec),
 * parsed in memory by ./multipart.ts, with the server's limits and error codes.
 *
 * Two halves, one module, because they share the limits and the way failures read:
 * - {@link createUploadMiddleware} (HTTP side, mounted before Apollo): refuses a multipart request without Apollo's
 *   CSRF preflight header, without a usable boundary, or with a declared Content-Length over MAX_BODY_BYTES, before
 *   reading it; then parses
 *   it with MAX_IMAGE_BYTES per file (cut off at the limit, never buffered whole), MAX_IMAGES_PER_JOB files and
 *   MAX_BODY_BYTES counted on the stream (files the `map` does not name count too).
 * - {@link readUploadedImages} (resolver side): awaits each `Upload` and its bytes, turning every failure (too
 *   large, body over the limit, missing, client gone) into a coded AppError naming `files[i]`.
 *
 * Files are read into memory, never to disk: a client that disconnects mid-upload leaves nothing to clean up,
 * and the resolver then fails before a job exists.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { AppError, ErrorCode, badUserInput } from '../errors.js';
import { MultipartFailure, multipartBoundary, parseMultipartRequest, type ReceivedFile } from './multipart.js';

export { default as GraphQLUpload } from 'graphql-upload/GraphQLUpload.mjs';
export type { ReceivedFile };

/** What one uploaded file is, as a GraphQL argument value: the promise the `Upload` scalar yields. */
export type UploadedFile = Promise<ReceivedFile>;

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

function bodyTooLargeMessage(limits: UploadLimits): string {
  return `Request body is larger than the limit of ${limits.maxBodyBytes} bytes (MAX_BODY_BYTES)`;
}

/** A failure of the request before its operations were ready → the HTTP answer. */
function toUploadRequestError(error: unknown, limits: UploadLimits): UploadRequestError {
  if (!(error instanceof MultipartFailure))
    return new UploadRequestError(400, 'BAD_REQUEST', 'Malformed multipart request');
  switch (error.kind) {
    case 'bodyTooLarge':
      return new UploadRequestError(413, ErrorCode.PayloadTooLarge, bodyTooLargeMessage(limits));
    case 'tooManyFiles':
      return new UploadRequestError(
        413,
        ErrorCode.PayloadTooLarge,
        `Too many files: at most ${limits.maxFiles} per request (MAX_IMAGES_PER_JOB)`,
      );
    case 'fieldTooLarge':
      return new UploadRequestError(413, ErrorCode.PayloadTooLarge, error.message);
    default:
      return new UploadRequestError(400, 'BAD_REQUEST', error.message);
  }
}

/** Resolves once the request has been read to its end or closed (an answer sent earlier may never reach the client). */
function requestFinished(req: IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    req.once('end', () => resolve());
    req.once('close', () => resolve());
  });
}

/**
 * The Express middleware for multipart GraphQL requests (anything else passes through untouched). Mount it on
 * the GraphQL route after the API-key check and before the JSON body parser and Apollo. Its refusals reach
 * `next(error)` as {@link UploadRequestError}s (status, code, message).
 */
export function createUploadMiddleware(limits: UploadLimits): RequestHandler {
  const multipartLimits = {
    maxFileBytes: limits.maxFileBytes,
    maxFiles: limits.maxFiles,
    maxBodyBytes: limits.maxBodyBytes,
    maxFieldBytes: limits.maxFieldBytes ?? Math.min(limits.maxBodyBytes, MiB),
  };
  const upload: RequestHandler = (req, res, next) => {
    // Any answer (Apollo's, or a refusal) waits for the body to be read or the client to go: a response sent while
    // the client is still writing may be lost to it when the connection closes.
    const { send } = res;
    res.send = (...args: Parameters<typeof send>) => {
      void requestFinished(req).then(() => {
        res.send = send;
        res.send(...args);
      });
      return res;
    };
    parseMultipartRequest(req, multipartLimits).then(
      (operations) => {
        req.body = operations;
        next();
      },
      (error: unknown) => next(toUploadRequestError(error, limits)),
    );
  };
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) return next();
    // Apollo refuses these too (CSRF prevention), but only after the files were read.
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
    if (multipartBoundary(req.get('content-type')) === undefined) {
      // Its parts cannot be found: refused unread, at once.
      res.setHeader('Connection', 'close');
      next(
        new UploadRequestError(
          400,
          'BAD_REQUEST',
          'Malformed multipart request: the Content-Type needs a boundary of 1 to 70 characters (multipart/form-data; boundary=…)',
        ),
      );
      return;
    }
    if (Number(req.headers['content-length']) > limits.maxBodyBytes) {
      // Refused unread (an answer after parsing would wait for a body nobody means to accept).
      res.setHeader('Connection', 'close');
      next(new UploadRequestError(413, ErrorCode.PayloadTooLarge, bodyTooLargeMessage(limits)));
      return;
    }
    upload(req, res, next);
  };
}

/** How an upload failure reads to the client, coded, naming the file. */
function uploadFailure(error: unknown, field: string): AppError {
  if (!(error instanceof MultipartFailure)) return badUserInput(`${field}: the upload could not be read`, field);
  switch (error.kind) {
    case 'bodyTooLarge':
      return new AppError(
        ErrorCode.PayloadTooLarge,
        `Request body is larger than the limit of ${error.limit ?? '?'} bytes (MAX_BODY_BYTES)`,
        { field },
      );
    case 'fileTooLarge':
      return badUserInput(`${field}: image is over the limit of ${error.limit ?? '?'} bytes (MAX_IMAGE_BYTES)`, field);
    case 'interrupted':
      return badUserInput(`${field}: the upload was interrupted`, field);
    default:
      return badUserInput(`${field}: ${error.message}`, field);
  }
}

/** Awaits one upload and its bytes; every failure becomes a coded AppError naming `field`. */
async function readUpload(
  upload: UploadedFile,
  field: string,
): Promise<{ content: Buffer; requestReceived: Promise<void> }> {
  try {
    const file = await upload;
    return { content: await file.bytes, requestReceived: file.requestReceived };
  } catch (error) {
    throw uploadFailure(error, field);
  }
}

/**
 * The bytes of uploaded files, in order, for a job's images. Throws AppError: BAD_USER_INPUT naming `${field}[i]`
 * (over MAX_IMAGE_BYTES, interrupted, missing), PAYLOAD_TOO_LARGE when the request went over MAX_BODY_BYTES.
 */
export async function readUploadedImages(files: readonly UploadedFile[], field = 'files'): Promise<Buffer[]> {
  const images: Buffer[] = [];
  const requests = new Set<Promise<void>>();
  for (const [index, upload] of files.entries()) {
    const file = await readUpload(upload, `${field}[${index}]`);
    images.push(file.content);
    requests.add(file.requestReceived);
  }
  // A job exists only for a request that arrived whole and within MAX_BODY_BYTES (files after ours count too).
  for (const received of requests) {
    try {
      await received;
    } catch (error) {
      throw uploadFailure(error, field);
    }
  }
  return images;
}
