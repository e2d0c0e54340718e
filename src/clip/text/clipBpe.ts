/**
 * @file CLIP's text tokenizer: a model's `tokenizer.json` run by `@huggingface/tokenizers`, plus the
 * cleaning OpenAI's reference tokenizer (`clip/simple_tokenizer.py`) does that `tokenizer.json` cannot
 * express: NFC, HTML unescaped twice, whitespace folded and stripped, lower-cased. ftfy's mojibake repair is
 * not reproduced. Reproduces the 20 reference cases of `../shared/clip/tokenizer-golden.json` exactly.
 */
import { readFile } from 'node:fs/promises';
import { decodeHTML } from 'entities';
import { PY_WHITESPACE } from './clean.js';
import { LibraryTokenizer } from './libraryTokenizer.js';
import type { TextTokenizer } from './types.js';

/** The start/end markers every CLIP vocabulary carries as added tokens. */
export const SOT_TOKEN = '<|startoftext|>';
export const EOT_TOKEN = '<|endoftext|>';

/** Options of {@link ClipTokenizer}. */
export interface ClipTokenizerOptions {
  /** Maximum sequence length in tokens, markers included (the text tower's position count; 77 for CLIP). */
  contextLength: number;
}

/** Several texts as one padded batch, ready for an ONNX text tower (int64 inputs). */
export interface TokenBatch {
  /** `[batchSize, sequenceLength]`, row-major; padding is `padId`. */
  inputIds: BigInt64Array;
  /** `[batchSize, sequenceLength]`: 1 on real tokens, 0 on padding. */
  attentionMask: BigInt64Array;
  batchSize: number;
  /** The longest real length in the batch (or the requested `padTo`). */
  sequenceLength: number;
  /** Real length of each row, markers included; the `<|endoftext|>` of row i sits at `lengths[i] - 1`. */
  lengths: number[];
}

/**
 * The text cleaning of OpenAI's `simple_tokenizer.py`: NFC (the one ftfy step every text gets), HTML unescaped
 * twice, whitespace folded, stripped, lower-cased. ftfy's mojibake repair is deliberately not reproduced.
 */
export function cleanClipText(text: string): string {
  // Twice, as the reference does: labels scraped from HTML are often escaped twice ("&amp;amp;").
  const unescaped = decodeHTML(decodeHTML(text.normalize('NFC')));
  return unescaped.replace(PY_WHITESPACE, ' ').trim().toLowerCase();
}

/** Characters tokenized per context position at most; CLIP's tokens average 2–4 characters on its reference texts. */
const MAX_CHARS_PER_TOKEN = 16;

interface TokenizerJson {
  added_tokens?: Array<{ id?: unknown; content?: unknown }>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function addedTokenId(json: TokenizerJson, content: string): number {
  const token = json.added_tokens?.find((t) => t.content === content);
  if (token === undefined || typeof token.id !== 'number' || !Number.isInteger(token.id) || token.id < 0) {
    throw new Error(`tokenizer.json has no added token ${content}; expected a CLIP vocabulary`);
  }
  return token.id;
}

/**
 * Turns text into CLIP input ids: `[<|startoftext|>, …, <|endoftext|>]`, at most `contextLength` long.
 *
 * @example
 * const tokenizer = await ClipTokenizer.fromFile(`${modelDir}/tokenizer.json`, { contextLength: 77 });
 * tokenizer.encode('a photo of a cat'); // [49406, 320, 1125, 539, 320, 2368, 49407]
 */
export class ClipTokenizer implements TextTokenizer {
  readonly family = 'clip-bpe' as const;
  readonly contextLength: number;
  /** Id of `<|startoftext|>`, from the file's added tokens. */
  readonly sotId: number;
  /** Id of `<|endoftext|>`, from the file's added tokens. The text tower pools at its (first) position. */
  readonly eotId: number;
  /** What CLIP pads with: `<|endoftext|>` (Hugging Face's convention; padding is masked and causal, so it never matters). */
  readonly padId: number;
  /** `[<|startoftext|>, <|endoftext|>]`: what the empty text encodes to. */
  readonly minimalIds: readonly number[];
  readonly #tokenizer: LibraryTokenizer;

  private constructor(tokenizer: LibraryTokenizer, sotId: number, eotId: number, options: ClipTokenizerOptions) {
    this.#tokenizer = tokenizer;
    this.sotId = sotId;
    this.eotId = eotId;
    this.padId = eotId;
    this.minimalIds = Object.freeze([sotId, eotId]);
    this.contextLength = options.contextLength;
  }

  /** Reads and parses a `tokenizer.json`. Throws a plain Error naming the file when it is unreadable or not a CLIP tokenizer. */
  static async fromFile(tokenizerJsonPath: string, options: ClipTokenizerOptions): Promise<ClipTokenizer> {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(tokenizerJsonPath, 'utf8'));
    } catch (error) {
      throw new Error(`cannot read ${tokenizerJsonPath}: ${(error as Error).message}`, { cause: error });
    }
    try {
      return ClipTokenizer.fromJSON(json, options);
    } catch (error) {
      throw new Error(`${tokenizerJsonPath}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Builds a tokenizer from an already parsed `tokenizer.json`. */
  static fromJSON(json: unknown, options: ClipTokenizerOptions): ClipTokenizer {
    const { contextLength } = options;
    if (!Number.isInteger(contextLength) || contextLength < 2) {
      throw new TypeError(`expected contextLength to be an integer ≥ 2, got ${String(contextLength)}`);
    }
    if (!isRecord(json) || !isRecord(json['model'])) {
      throw new Error('not a tokenizer.json: expected an object with a "model"');
    }
    const file = json as TokenizerJson;
    const sotId = addedTokenId(file, SOT_TOKEN);
    const eotId = addedTokenId(file, EOT_TOKEN);
    return new ClipTokenizer(new LibraryTokenizer(json, {}), sotId, eotId, options);
  }

  /**
   * The real-length ids of one text (no padding): `<|startoftext|>`, the BPE tokens, `<|endoftext|>`.
   * Longer texts are cut to `contextLength` with `<|endoftext|>` kept last, as `clip.tokenize(truncate=True)` does.
   */
  encode(text: string): number[] {
    // Markers are added here, not by the file's post-processor, so that any tokenizer.json
    // (RobertaProcessing, TemplateProcessing or none) yields the same framing.
    const body = this.#tokenizer.encode(this.#reachable(cleanClipText(text)), { add_special_tokens: false }).ids;
    const room = this.contextLength - 2;
    const kept = body.length > room ? body.slice(0, room) : body;
    return [this.sotId, ...kept, this.eotId];
  }

  /**
   * The start of a cleaned text that can reach the context: at most MAX_CHARS_PER_TOKEN characters per
   * position. BPE costs microseconds per character and prompts can be long (MAX_CLASS_LENGTH may be set to a
   * million; a 500,000-character prompt would hold the event loop for 4 s), so what the context cuts off is never
   * tokenized. Words are tokenized independently, so the kept tokens are unchanged unless they
   * reach that far (over 16 characters per token on average).
   */
  #reachable(cleaned: string): string {
    let end = this.contextLength * MAX_CHARS_PER_TOKEN;
    if (cleaned.length <= end) return cleaned;
    // Never split a surrogate pair.
    const last = cleaned.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end -= 1;
    return cleaned.slice(0, end);
  }

  /**
   * Encodes several texts into one batch padded to the longest real length, not to `contextLength`:
   * CLIP's causal mask and EOT pooling make the embeddings identical either way, and shorter is faster.
   *
   * @param padTo pad every row to this length instead (≥ the longest row, ≤ `contextLength`); default: the longest row.
   */
  encodeBatch(texts: readonly string[], padTo?: number): TokenBatch {
    const rows = texts.map((text) => this.encode(text));
    const lengths = rows.map((row) => row.length);
    const longest = lengths.reduce((a, b) => Math.max(a, b), 0);
    const sequenceLength = padTo ?? longest;
    if (!Number.isInteger(sequenceLength) || sequenceLength < longest || sequenceLength > this.contextLength) {
      throw new RangeError(`expected padTo between ${longest} and ${this.contextLength}, got ${String(padTo)}`);
    }
    const inputIds = new BigInt64Array(rows.length * sequenceLength).fill(BigInt(this.padId));
    const attentionMask = new BigInt64Array(rows.length * sequenceLength);
    rows.forEach((row, i) => {
      const base = i * sequenceLength;
      for (let j = 0; j < row.length; j++) {
        inputIds[base + j] = BigInt(row[j] ?? this.padId);
        attentionMask[base + j] = 1n;
      }
    });
    return { inputIds, attentionMask, batchSize: rows.length, sequenceLength, lengths };
  }
}
