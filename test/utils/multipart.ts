/**
 * GraphQL multipart request bodies (https://github.com/jaydenseric/graphql-multipart-request-spec) built by
 * hand, byte for byte, so tests can stream them, cut them off, or add parts a client would not.
 */
import { randomBytes } from 'node:crypto';

export interface MultipartFile {
  data: Buffer;
  filename: string;
  contentType: string;
}

export interface ExtraPart extends MultipartFile {
  /** The part's field name (not in the `map`). */
  name: string;
}

/**
 * The parts of a multipart request: `operations`, `map` (file i → `${filesPath}.${i}`), then the files as
 * fields `0`, `1`, …, then `extra` parts. Concatenated they are the body.
 */
export function multipartParts(
  query: string,
  variables: Record<string, unknown>,
  filesPath: string,
  files: MultipartFile[],
  extra: ExtraPart[] = [],
): { parts: Buffer[]; contentType: string } {
  const boundary = `----test${randomBytes(8).toString('hex')}`;
  const field = (name: string, value: string): Buffer =>
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
  const file = (name: string, part: MultipartFile): Buffer =>
    Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${part.filename}"\r\nContent-Type: ${part.contentType}\r\n\r\n`,
      ),
      part.data,
      Buffer.from('\r\n'),
    ]);
  const map = Object.fromEntries(files.map((_, index) => [String(index), [`variables.${filesPath}.${index}`]]));
  const parts = [
    field('operations', JSON.stringify({ query, variables })),
    field('map', JSON.stringify(map)),
    ...files.map((part, index) => file(String(index), part)),
    ...extra.map((part) => file(part.name, part)),
    Buffer.from(`--${boundary}--\r\n`),
  ];
  return { parts, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** {@link multipartParts} as one body. */
export function multipartBody(
  query: string,
  variables: Record<string, unknown>,
  filesPath: string,
  files: MultipartFile[],
): { body: Buffer; contentType: string } {
  const { parts, contentType } = multipartParts(query, variables, filesPath, files);
  return { body: Buffer.concat(parts), contentType };
}
