/**
 * The two towers of a model as the server runs them, built from what the loaded sessions declare (never assumed):
 * which input takes the pixels or the ids, whether the graph wants int32 or int64 ids and an attention mask, which
 * output holds the embedding, and whether the batch and the sequence length are fixed (immich's exports fix them at
 * 1 and L) or dynamic. A fixed batch of 1 runs a gathered batch item by item inside the graph's worker
 * ({@link OnnxGraph.runEach}); a fixed length pads every prompt to exactly that length.
 */
import { fixedDim, type FeedValue, type OnnxGraph, type ValueInfo } from './onnx.js';

/** Output names of image embeddings: Hugging Face's towers and combined graph, immich's current and older exports. */
const IMAGE_OUTPUTS = ['image_embeds', 'embedding', 'image_embedding'];
const TEXT_OUTPUTS = ['text_embeds', 'embedding', 'text_embedding'];
const PIXEL_INPUTS = ['pixel_values', 'image'];
const ID_INPUTS = ['input_ids', 'text'];
const MASK_INPUT = 'attention_mask';

/** Fresh feeds a combined graph needs for the tower it is not asked about (buffers are transferred, so new every call). */
export type ExtraFeeds = () => Record<string, FeedValue>;

function pickOutput(graph: OnnxGraph, candidates: readonly string[], what: string): string {
  const found = candidates.find((name) => graph.hasOutput(name));
  if (found !== undefined) return found;
  if (graph.outputNames.length === 1) return graph.outputNames[0]!;
  throw new Error(
    `${graph.path}: no ${what} output: expected one of ${candidates.join(', ')}, the graph has ${graph.outputNames.join(', ')}`,
  );
}

/** The input that takes the pixels: by its known names, else the one 4-d input. */
export function findPixelInput(inputs: readonly ValueInfo[]): ValueInfo | undefined {
  return (
    PIXEL_INPUTS.map((name) => inputs.find((info) => info.name === name)).find((info) => info !== undefined) ??
    inputs.find((info) => info.shape.length === 4)
  );
}

/** A fixed batch must be 1 (what immich exports); anything else is refused rather than guessed at. */
function batchOf(graph: OnnxGraph, input: ValueInfo): number | undefined {
  const batch = fixedDim(input, 0);
  if (batch !== undefined && batch !== 1) {
    throw new Error(
      `${graph.path}: input ${input.name} has a fixed batch of ${batch}; only dynamic batches or a batch of 1 are supported`,
    );
  }
  return batch;
}

function splitRows(data: Float32Array, rows: number): Float32Array[] {
  const width = data.length / rows;
  return Array.from({ length: rows }, (_, i) => data.slice(i * width, (i + 1) * width));
}

/** How a text graph takes its ids: the input names and the integer type. */
export interface TextInputs {
  readonly idsInput: string;
  readonly maskInput: string | undefined;
  readonly idType: 'int32' | 'int64';
}

/** Hugging Face's text graphs (and the combined one): int64 `input_ids` with an `attention_mask`. */
export const HUGGING_FACE_TEXT_INPUTS: TextInputs = { idsInput: ID_INPUTS[0]!, maskInput: MASK_INPUT, idType: 'int64' };

/**
 * Feeds for prompts (token ids with specials, unpadded): ids padded with `padId` to `length`, else to the longest
 * prompt, and a mask of ones over the real tokens. The one builder of text feeds: the towers, the logit-scale fit on a
 * combined graph, the benchmark's raw runs and the tests' independent computations use it.
 */
export function textFeeds(
  prompts: readonly (readonly number[])[],
  padId: number,
  length?: number,
  inputs: TextInputs = HUGGING_FACE_TEXT_INPUTS,
): Record<string, FeedValue> {
  const longest = Math.max(...prompts.map((p) => p.length));
  const width = length ?? longest;
  if (longest > width) throw new RangeError(`a prompt of ${longest} tokens does not fit the text graph's ${width}`);
  const rows = prompts.length;
  const ids = new Array<number>(rows * width).fill(padId);
  const mask = new Array<number>(rows * width).fill(0);
  prompts.forEach((prompt, row) => {
    prompt.forEach((id, col) => {
      ids[row * width + col] = id;
      mask[row * width + col] = 1;
    });
  });
  const dims = [rows, width];
  const tensor = (values: number[]): FeedValue =>
    inputs.idType === 'int32'
      ? { kind: 'int32', data: Int32Array.from(values), dims }
      : { kind: 'int64', data: BigInt64Array.from(values, (v) => BigInt(v)), dims };
  return {
    [inputs.idsInput]: tensor(ids),
    ...(inputs.maskInput === undefined ? {} : { [inputs.maskInput]: tensor(mask) }),
  };
}

/** The image side of a graph. */
export class ImageTower {
  readonly input: string;
  readonly output: string;
  /** 1 when the graph fixes its batch (run item by item), undefined when dynamic. */
  readonly fixedBatch: number | undefined;
  readonly #graph: OnnxGraph;
  readonly #dims: [number, number, number];
  readonly #extra: ExtraFeeds | undefined;

  /** `alsoOutputs`: the layout's own embedding output names, tried after the common ones (see ModelSpec.embeddingOutputs). */
  constructor(
    graph: OnnxGraph,
    crop: { height: number; width: number },
    extra?: ExtraFeeds,
    alsoOutputs: readonly string[] = [],
  ) {
    this.#graph = graph;
    this.#extra = extra;
    const input = findPixelInput(graph.inputs);
    if (input === undefined)
      throw new Error(
        `${graph.path}: no image input: expected one of ${PIXEL_INPUTS.join(', ')}, the graph has ${graph.inputNames.join(', ')}`,
      );
    if (input.type !== 'float32' && input.type !== 'float16') {
      throw new Error(
        `${graph.path}: image input ${input.name} is ${input.type}; expected float32 or float16 pixels (normalised CHW)`,
      );
    }
    for (const [axis, expected, what] of [
      [1, 3, 'channels'],
      [2, crop.height, 'height'],
      [3, crop.width, 'width'],
    ] as const) {
      const dim = fixedDim(input, axis);
      if (dim !== undefined && dim !== expected) {
        throw new Error(
          `${graph.path}: image input ${input.name} has ${what} ${dim}, but the preprocessing config gives ${expected}`,
        );
      }
    }
    this.input = input.name;
    this.fixedBatch = batchOf(graph, input);
    this.output = pickOutput(graph, [...IMAGE_OUTPUTS, ...alsoOutputs], 'image embedding');
    this.#dims = [3, crop.height, crop.width];
  }

  /** Floats one image occupies. */
  get pixelCount(): number {
    return this.#dims[0] * this.#dims[1] * this.#dims[2];
  }

  /**
   * Unnormalised (or already normalised) embeddings, one per image, in order. A fixed-batch graph runs them one by
   * one and tells `onEach` of each as soon as it exists.
   */
  async embed(
    pixels: readonly Float32Array[],
    onEach?: (index: number, embedding: Float32Array) => void,
  ): Promise<Float32Array[]> {
    if (this.fixedBatch !== undefined) {
      const results = await this.#graph.runEach(
        pixels.map((p) => ({
          [this.input]: { kind: 'float', data: p.slice(), dims: [1, ...this.#dims] },
          ...this.#extra?.(),
        })),
        [this.output],
        onEach === undefined ? undefined : (index, result) => onEach(index, result[this.output]!.data),
      );
      return results.map((result) => result[this.output]!.data);
    }
    const size = this.pixelCount;
    const batch = new Float32Array(size * pixels.length);
    pixels.forEach((p, i) => batch.set(p, i * size));
    const out = await this.#graph.run(
      { [this.input]: { kind: 'float', data: batch, dims: [pixels.length, ...this.#dims] }, ...this.#extra?.() },
      [this.output],
    );
    return splitRows(out[this.output]!.data, pixels.length);
  }
}

/** The text side of a graph. */
export class TextTower implements TextInputs {
  readonly idsInput: string;
  readonly maskInput: string | undefined;
  readonly idType: 'int32' | 'int64';
  readonly output: string;
  readonly fixedBatch: number | undefined;
  /** The sequence length the graph fixes, or undefined when dynamic. */
  readonly fixedLength: number | undefined;
  readonly #graph: OnnxGraph;
  readonly #extra: ExtraFeeds | undefined;
  #padding: { padId: number; length: number | undefined } = { padId: 0, length: undefined };

  /** `alsoOutputs`: the layout's own embedding output names, tried after the common ones (see ModelSpec.embeddingOutputs). */
  constructor(graph: OnnxGraph, extra?: ExtraFeeds, alsoOutputs: readonly string[] = []) {
    this.#graph = graph;
    this.#extra = extra;
    const ids = ID_INPUTS.map((name) => graph.input(name)).find((info) => info !== undefined);
    if (ids === undefined)
      throw new Error(
        `${graph.path}: no token input: expected one of ${ID_INPUTS.join(', ')}, the graph has ${graph.inputNames.join(', ')}`,
      );
    if (ids.type !== 'int32' && ids.type !== 'int64')
      throw new Error(`${graph.path}: token input ${ids.name} is ${ids.type}; expected int32 or int64`);
    const mask = graph.input(MASK_INPUT);
    if (mask !== undefined && mask.type !== ids.type) {
      throw new Error(
        `${graph.path}: ${MASK_INPUT} is ${mask.type} but ${ids.name} is ${ids.type}; expected one integer type`,
      );
    }
    this.idsInput = ids.name;
    this.maskInput = mask?.name;
    this.idType = ids.type;
    this.fixedBatch = batchOf(graph, ids);
    this.fixedLength = fixedDim(ids, 1);
    this.output = pickOutput(graph, [...TEXT_OUTPUTS, ...alsoOutputs], 'text embedding');
  }

  /**
   * How prompts are padded: with `padId`, to the graph's fixed length, else to `length` when given (open_clip's
   * tokenizers pad to the context), else to the longest prompt of the batch.
   */
  setPadding(padId: number, length: number | undefined): void {
    this.#padding = { padId, length: this.fixedLength ?? length };
  }

  /** Feeds for prompts (token ids with specials, unpadded), padded as {@link setPadding} says. */
  feeds(prompts: readonly (readonly number[])[]): Record<string, FeedValue> {
    return textFeeds(prompts, this.#padding.padId, this.#padding.length, this);
  }

  /** Embeddings of prompts, in order; a fixed-batch graph tells `onEach` of each as soon as it exists. */
  async embed(
    prompts: readonly (readonly number[])[],
    onEach?: (index: number, embedding: Float32Array) => void,
  ): Promise<Float32Array[]> {
    if (this.fixedBatch !== undefined) {
      const results = await this.#graph.runEach(
        prompts.map((prompt) => ({ ...this.feeds([prompt]), ...this.#extra?.() })),
        [this.output],
        onEach === undefined ? undefined : (index, result) => onEach(index, result[this.output]!.data),
      );
      return results.map((result) => result[this.output]!.data);
    }
    const out = await this.#graph.run({ ...this.feeds(prompts), ...this.#extra?.() }, [this.output]);
    return splitRows(out[this.output]!.data, prompts.length);
  }
}
