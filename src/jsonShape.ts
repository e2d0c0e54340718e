/**
 * A structural pre-scan of a JSON body's raw bytes, run before `JSON.parse`: it counts values and nesting depth
 * and stops at the first limit passed, so a body of millions of tiny values (`[{},{},…]`, `[[[[…`) is refused
 * after reading a few hundred kilobytes, instead of holding the event loop while it is parsed and then walked.
 *
 * Strings are skipped with `Buffer.indexOf` (native memchr), not byte by byte: a body that is one large base64
 * image costs a few milliseconds per hundred megabytes; only the bytes between strings are looked at one by one.
 * The scan is not a validator: it reads well-formed JSON exactly and leaves malformed JSON to `JSON.parse`.
 * It assumes UTF-8, where a `"` byte never occurs inside a multi-byte character.
 */

/** How much structure one body may have. */
export interface JsonShapeLimits {
  /** Deepest nesting of arrays and objects (a bare scalar is depth 0, `[]` depth 1). */
  maxDepth: number;
  /** Most values: strings (object keys included), numbers, literals, arrays and objects each count one. */
  maxValues: number;
}

/** The first limit a body passes: which one, and how far the scan got. */
export type JsonShapeRefusal = { limit: 'depth'; depth: number } | { limit: 'values'; values: number };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/** Bytes that continue a number or a literal (`true`, `false`, `null`) once it has started. */
const SCALAR_BYTE = new Uint8Array(256);
for (const char of '0123456789+-.eEtrufalsn') SCALAR_BYTE[char.charCodeAt(0)] = 1;

/**
 * The index of the quote closing the string whose contents start at `from`, or -1 when it is unterminated.
 * A quote is escaped when an odd number of backslashes precedes it.
 */
function closingQuote(bytes: Buffer, from: number): number {
  let quote = bytes.indexOf(QUOTE, from);
  while (quote !== -1) {
    let backslashes = 0;
    for (let i = quote - 1; i >= from && bytes[i] === BACKSLASH; i -= 1) backslashes += 1;
    if (backslashes % 2 === 0) return quote;
    quote = bytes.indexOf(QUOTE, quote + 1);
  }
  return -1;
}

/**
 * Scans `body` (UTF-8 JSON) and returns the first limit it passes, or null when it stays within both.
 * Costs O(bytes between strings) plus one native search per string, and never more than the scan up to the refusal.
 */
export function scanJsonShape(body: Buffer, limits: JsonShapeLimits): JsonShapeRefusal | null {
  const { maxDepth, maxValues } = limits;
  const length = body.length;
  let depth = 0;
  let values = 0;
  let i = 0;
  while (i < length) {
    const byte = body[i]!;
    if (byte === QUOTE) {
      values += 1;
      const end = closingQuote(body, i + 1);
      if (end === -1) break;
      i = end + 1;
    } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      values += 1;
      depth += 1;
      if (depth > maxDepth) return { limit: 'depth', depth };
      i += 1;
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
      depth -= 1;
      i += 1;
    } else if (SCALAR_BYTE[byte] === 1) {
      values += 1;
      i += 1;
      while (i < length && SCALAR_BYTE[body[i]!] === 1) i += 1;
    } else {
      // Whitespace, `,` and `:`, or bytes JSON.parse will refuse.
      i += 1;
      continue;
    }
    if (values > maxValues) return { limit: 'values', values };
  }
  return null;
}

/** Which setting each limit is, for messages. */
const SETTING_OF: Record<JsonShapeRefusal['limit'], string> = { depth: 'MAX_JSON_DEPTH', values: 'MAX_JSON_VALUES' };

/**
 * A body refused by its structure (413) or its charset (415). Shaped like body-parser's own errors (`status`,
 * `type`, `expose`), so the API's error exits answer it as they answer a body over the byte limit.
 */
export class JsonShapeError extends Error {
  override name = 'JsonShapeError';
  readonly status: 413 | 415;
  readonly type: 'entity.too.complex' | 'charset.unsupported';
  readonly expose = true;

  constructor(status: 413 | 415, message: string) {
    super(message);
    this.status = status;
    this.type = status === 413 ? 'entity.too.complex' : 'charset.unsupported';
  }
}

/** The refusal's message: what was passed and the setting that bounds it. `subject` names what was scanned. */
export function jsonShapeMessage(
  refusal: JsonShapeRefusal,
  limits: JsonShapeLimits,
  subject: 'Request body' | 'Message',
): string {
  return refusal.limit === 'depth'
    ? `${subject} nests arrays and objects deeper than ${limits.maxDepth} levels (${SETTING_OF.depth})`
    : `${subject} has more than ${limits.maxValues} JSON values (${SETTING_OF.values})`;
}

/**
 * A `verify` hook for express.json (body-parser): it runs on the raw bytes once they are read and before they are
 * parsed, and throws {@link JsonShapeError} for a body over `limits` or in a charset other than UTF-8 (which the
 * scan cannot read, and RFC 8259 requires anyway).
 */
export function jsonShapeVerifier(
  limits: JsonShapeLimits,
): (req: unknown, res: unknown, body: Buffer, encoding: string | null) => void {
  return (_req, _res, body, encoding) => {
    if (encoding !== null && encoding.toLowerCase() !== 'utf-8' && encoding.toLowerCase() !== 'utf8') {
      throw new JsonShapeError(415, `JSON bodies must be UTF-8, got charset ${JSON.stringify(encoding)}`);
    }
    const refusal = scanJsonShape(body, limits);
    if (refusal !== null) throw new JsonShapeError(413, jsonShapeMessage(refusal, limits, 'Request body'));
  };
}
