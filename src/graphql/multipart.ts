/**
 * @file The GraphQL multipart request spec (https://github.com/jaydenseric/graphql-multipart-request-spec) parsed
 * over busboy, each file read straight into memory.
 *
 * It replaces graphql-upload's `processRequest`, which spools every file to a temporary file (fs-capacitor, with
 * no in-memory option) and cost more CPU per image than the same image as base64 JSON. The shape it produces is
 * graphql-upload's: the `operations` with an `Upload` placeholder at every path the `map` names, so graphql-upload's
 * `Upload` scalar still turns each into the promise a resolver gets. That promise resolves, once the file's part
 * begins, to a {@link ReceivedFile} whose `bytes` resolve when the part has arrived.
 *
 * Limits are enforced while the body streams in: the body's bytes are counted as they arrive (MAX_BODY_BYTES; files
 * the `map` does not name count too), busboy cuts a file off at `maxFileBytes` (nothing past the limit is kept),
 * and the `map` may name at most `maxFiles` files. Nothing is written anywhere, so a client that goes away leaves
 * nothing to clean up: its files' promises reject and their buffers are garbage.
 */
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import Upload from 'graphql-upload/Upload.mjs';

const SPEC_URL = 'https://github.com/jaydenseric/graphql-multipart-request-spec';

export interface MultipartLimits {
  /** Largest file, in bytes. */
  maxFileBytes: number;
  /** Most files the `map` may name. */
  maxFiles: number;
  /** Largest request body, counted as it streams in, in bytes. */
  maxBodyBytes: number;
  /** Largest `operations` / `map` field, in bytes. */
  maxFieldBytes: number;
}

/** Why a multipart request, or one file of it, failed: what the HTTP and resolver layers turn into coded errors. */
export type MultipartFailureKind =
  /** Not a well-formed multipart request, or not one the spec allows (400). */
  | 'malformed'
  /** `operations` or `map` over maxFieldBytes (413). */
  | 'fieldTooLarge'
  /** The `map` names more than maxFiles files (413). */
  | 'tooManyFiles'
  /** The body went over maxBodyBytes (413). */
  | 'bodyTooLarge'
  /** One file went over maxFileBytes (the request goes on; 413 for that file). */
  | 'fileTooLarge'
  /** The `map` names a file the body does not have (400). */
  | 'fileMissing'
  /** The client went away, or the body ended, before the request was complete (499). */
  | 'interrupted';

export class MultipartFailure extends Error {
  override name = 'MultipartFailure';
  constructor(
    readonly kind: MultipartFailureKind,
    message: string,
    /** The limit that was passed, in bytes or files, for the limit kinds. */
    readonly limit?: number,
  ) {
    super(message);
  }
}

/** One uploaded file, as the `Upload` scalar's promise resolves to it. */
export interface ReceivedFile {
  filename: string;
  /** As the client declared it; not to be trusted. */
  mimetype: string;
  encoding: string;
  /** The whole file once its part has arrived; rejects with a {@link MultipartFailure}. */
  readonly bytes: Promise<Buffer>;
  /** Resolves once the whole request has arrived within its limits; rejects with a {@link MultipartFailure}. */
  readonly requestReceived: Promise<void>;
}

/** A promise whose rejection is handled even when nobody awaits it, with its settle functions. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve: (value: T) => void = () => undefined;
  let reject: (error: Error) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** graphql-upload's `Upload` placeholder (what its scalar recognises), resolving to our in-memory files. */
interface Placeholder {
  readonly promise: Promise<ReceivedFile>;
  readonly file: ReceivedFile | undefined;
  resolve(file: ReceivedFile): void;
  reject(error: Error): void;
}

const newPlaceholder = (): Placeholder => new Upload() as unknown as Placeholder;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Puts `value` at a dotted `path` (`variables.input.files.0`) inside `root`, as the spec's `map` says. Every step
 * but the last must already be an object or array (the client sent `null` placeholders in it); returns false for
 * a path that does not fit (and for keys that would reach a prototype).
 */
export function setAtPath(root: unknown, path: string, value: unknown): boolean {
  const keys = path.split('.');
  let container: unknown = root;
  for (const [index, key] of keys.entries()) {
    if (FORBIDDEN_KEYS.has(key) || container === null || typeof container !== 'object') return false;
    if (Array.isArray(container) && !/^(0|[1-9]\d*)$/.test(key)) return false;
    const record = container as Record<string, unknown>;
    if (index === keys.length - 1) {
      record[key] = value;
      return true;
    }
    container = Object.hasOwn(record, key) ? record[key] : undefined;
  }
  return false;
}

/**
 * The `boundary` parameter of a multipart Content-Type, or undefined when it is missing, empty or longer than
 * RFC 2046 allows (1–70 characters): without one the parts cannot be found.
 */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  const match = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType ?? '');
  const boundary = match?.[1] ?? match?.[2] ?? '';
  return boundary.length >= 1 && boundary.length <= 70 ? boundary : undefined;
}

/**
 * Reads and drops what the client still sends, up to `maxBytes`, then hangs up: the client gets to read the answer
 * sent meanwhile, and the request ends (an answer waits for that; see uploads.ts).
 */
function discardRest(request: IncomingMessage, maxBytes: number): void {
  let discarded = 0;
  request.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > maxBytes) request.socket.destroy();
  });
  request.resume();
}

const malformed = (message: string): MultipartFailure => new MultipartFailure('malformed', `${message} (${SPEC_URL}).`);

/**
 * Reads a multipart GraphQL request. Resolves with the `operations` (Upload placeholders in place) as soon as the
 * `map` has arrived, before the files; rejects with a {@link MultipartFailure} when the request fails before that.
 * A failure after it rejects the files still pending and every file's `requestReceived`.
 */
export function parseMultipartRequest(request: IncomingMessage, limits: MultipartLimits): Promise<unknown> {
  const operationsReady = deferred<unknown>();
  const requestReceived = deferred<undefined>();
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: request.headers,
      defParamCharset: 'utf8',
      // Only `operations` and `map` are fields. The `map` bounds the files (maxFiles); parts it does not name are
      // dropped and bounded by maxBodyBytes, so busboy's own count of file parts is not used.
      limits: { fieldSize: limits.maxFieldBytes, fields: 2, fileSize: limits.maxFileBytes },
    });
  } catch (error) {
    // No usable boundary, or not multipart at all. Nothing reads the body otherwise, so it would never end.
    discardRest(request, limits.maxBodyBytes);
    return Promise.reject(
      malformed(`Malformed multipart request: ${error instanceof Error ? error.message : String(error)}`),
    );
  }

  let operations: unknown;
  let map: Map<string, Placeholder> | undefined;
  /** Files begun and not yet complete: a failure of the request fails them too. */
  const pendingFiles = new Set<(error: MultipartFailure) => void>();
  let failure: MultipartFailure | undefined;
  let received = 0;

  /** Ends the request with `error`; later calls do nothing. What the client still sends is read and dropped. */
  const fail = (error: MultipartFailure): void => {
    if (failure !== undefined) return;
    failure = error;
    for (const rejectFile of pendingFiles) rejectFile(error);
    pendingFiles.clear();
    if (map !== undefined) for (const upload of map.values()) if (upload.file === undefined) upload.reject(error);
    operationsReady.reject(error);
    requestReceived.reject(error);
    request.removeListener('data', feed);
    parser.removeAllListeners('field').removeAllListeners('file');
    // busboy may still emit errors about the part it was in; they change nothing now.
    parser.on('error', () => undefined);
    parser.destroy();
    // Past the body limit, up to another maxBodyBytes so the client gets to read the 413; otherwise the body is
    // already bounded by it.
    if (error.kind === 'bodyTooLarge') discardRest(request, limits.maxBodyBytes);
    else request.resume();
  };

  function feed(chunk: Buffer): void {
    received += chunk.length;
    if (received > limits.maxBodyBytes) {
      fail(
        new MultipartFailure(
          'bodyTooLarge',
          `Request body is larger than the limit of ${limits.maxBodyBytes} bytes`,
          limits.maxBodyBytes,
        ),
      );
      return;
    }
    // The write may have failed the request (a field refused inside it): the parser is gone, nothing to wait for.
    if (!parser.write(chunk) && failure === undefined) {
      request.pause();
      parser.once('drain', () => request.resume());
    }
  }

  parser.on('field', (name, value, { valueTruncated }) => {
    if (valueTruncated) {
      fail(
        new MultipartFailure(
          'fieldTooLarge',
          `The ‘${name}’ multipart field value exceeds the ${limits.maxFieldBytes} byte size limit.`,
          limits.maxFieldBytes,
        ),
      );
      return;
    }
    if (name === 'operations') readOperations(value);
    else if (name === 'map') readMap(value);
  });

  function readOperations(value: string): void {
    try {
      operations = JSON.parse(value);
    } catch {
      fail(malformed('Invalid JSON in the ‘operations’ multipart field'));
      return;
    }
    if (typeof operations !== 'object' || operations === null)
      fail(malformed('Invalid type for the ‘operations’ multipart field'));
  }

  function readMap(value: string): void {
    if (operations === undefined) {
      fail(malformed('Misordered multipart fields; ‘map’ should follow ‘operations’'));
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      fail(malformed('Invalid JSON in the ‘map’ multipart field'));
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      fail(malformed('Invalid type for the ‘map’ multipart field'));
      return;
    }
    const entries = Object.entries(parsed as Record<string, unknown>);
    if (entries.length > limits.maxFiles) {
      fail(new MultipartFailure('tooManyFiles', `${limits.maxFiles} max file uploads exceeded.`, limits.maxFiles));
      return;
    }
    const uploads = new Map<string, Placeholder>();
    for (const [fieldName, paths] of entries) {
      if (!Array.isArray(paths)) {
        fail(malformed(`Invalid type for the ‘map’ multipart field entry key ‘${fieldName}’ array`));
        return;
      }
      const upload = newPlaceholder();
      uploads.set(fieldName, upload);
      for (const [index, path] of paths.entries()) {
        if (typeof path !== 'string' || !setAtPath(operations, path, upload)) {
          fail(
            malformed(
              `Invalid object path for the ‘map’ multipart field entry key ‘${fieldName}’ array index ‘${index}’`,
            ),
          );
          return;
        }
      }
    }
    map = uploads;
    operationsReady.resolve(operations);
  }

  parser.on('file', (fieldName, stream, { filename, encoding, mimeType }) => {
    // busboy destroys the part's stream with an error when the request fails inside it: that failure is ours to report.
    stream.on('error', () => undefined);
    const upload = map?.get(fieldName);
    if (map === undefined) {
      stream.resume();
      fail(malformed('Misordered multipart fields; files should follow ‘map’'));
      return;
    }
    if (upload === undefined || upload.file !== undefined) {
      // A part the map does not name (or names twice): read and dropped, counted in the body.
      stream.resume();
      return;
    }
    const bytes = deferred<Buffer>();
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const rejectFile = (error: MultipartFailure): void => {
      if (done) return;
      done = true;
      chunks.length = 0;
      pendingFiles.delete(rejectFile);
      bytes.reject(error);
    };
    pendingFiles.add(rejectFile);
    stream.on('data', (chunk: Buffer) => {
      if (done) return;
      chunks.push(chunk);
      size += chunk.length;
    });
    // busboy stops passing the file on at the limit and drops the rest of the part itself.
    stream.once('limit', () =>
      rejectFile(
        new MultipartFailure(
          'fileTooLarge',
          `File truncated as it exceeds the ${limits.maxFileBytes} byte size limit.`,
          limits.maxFileBytes,
        ),
      ),
    );
    stream.once('end', () => {
      if (done) return;
      done = true;
      pendingFiles.delete(rejectFile);
      bytes.resolve(chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size));
    });
    const file: ReceivedFile = {
      filename: filename ?? '',
      mimetype: mimeType,
      encoding,
      bytes: bytes.promise,
      requestReceived: requestReceived.promise,
    };
    upload.resolve(file);
  });

  parser.once('fieldsLimit', () =>
    fail(malformed('Unexpected multipart field; only ‘operations’ and ‘map’ precede the files')),
  );

  parser.once('finish', () => {
    if (failure !== undefined) return;
    if (operations === undefined) return fail(malformed('Missing multipart field ‘operations’'));
    if (map === undefined) return fail(malformed('Missing multipart field ‘map’'));
    for (const upload of map.values()) {
      if (upload.file === undefined) upload.reject(new MultipartFailure('fileMissing', 'File missing in the request.'));
    }
    requestReceived.resolve(undefined);
  });

  parser.on('error', (error: Error) => {
    // busboy's own words for a body cut short ("Unexpected end of form") or a broken part header.
    const kind = /unexpected end/i.test(error.message) ? 'interrupted' : 'malformed';
    fail(new MultipartFailure(kind, `Malformed multipart request: ${error.message}`));
  });

  request.once('close', () => {
    if (!request.readableEnded)
      fail(new MultipartFailure('interrupted', 'Request disconnected during file upload stream parsing.'));
  });
  request.on('data', feed);
  request.once('end', () => {
    if (failure === undefined) parser.end();
  });
  return operationsReady.promise;
}
