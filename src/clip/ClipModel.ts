/**
 * One loaded CLIP model: its ONNX graphs, tokenizer and preprocessor, the image and text batchers
 * every job shares, and the embedding caches. The recipe for a classification is short:
 * prompts → (cached) text embeddings → per-class ensemble; images → (cached) image embeddings;
 * softmax of scale · cosine.
 */
import { createHash } from 'node:crypto';
import pLimit, { type LimitFunction } from 'p-limit';
import { AppError, ErrorCode, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { Batcher } from './runtime/Batcher.js';
import { EmbeddingCache } from './EmbeddingCache.js';
import { loadModelFiles, type LoadedModelFiles } from './layouts/hfClip.js';
import { OnnxGraph, type FeedValue, type OnnxSessionOptions } from './runtime/onnx.js';
import { preprocessImage } from './image/preprocess.js';
import { applyTemplate, classProbabilities, ensemble, normalize, templatesOf } from './scoring.js';
import { ClipTokenizer } from './text/clipBpe.js';
import type { ImageLimits, PreprocessorConfig, Precision, PromptConfig } from './types.js';

export interface ClipModelOptions {
  name: string;
  /** A local directory in the hub layout (already downloaded). */
  dir: string;
  precision: Precision;
  session: OnnxSessionOptions;
  /** Largest image batch. @default 32 */
  maxBatchSize: number;
  /** How long a lone request waits for company, ms. @default 5 */
  maxBatchWaitMs: number;
  /** Largest text batch (prompts). @default 64 */
  maxTextBatchSize: number;
  /** Images allowed to wait for the image batcher; past it → OVERLOADED. */
  maxQueuedImages: number;
  /**
   * Copies of the image tower, each in its own worker, running batches side by side. Two single-threaded copies
   * beat one two-threaded copy on throughput (no thread-pool barriers stalling when image decoding takes a core).
   * @default 1
   */
  visionReplicas?: number | undefined;
  /** Images decoded and resized at once (sharp work runs off the event loop). */
  preprocessConcurrency: number;
  /** See PreprocessOptions.exactResizeMaxPixels. */
  exactResizeMaxPixels?: number | undefined;
  /** LRU capacity (entries) of the text-embedding cache; 0 disables. */
  textCacheSize: number;
  /** LRU capacity (entries) of the image-embedding cache; 0 disables. */
  imageCacheSize: number;
  imageLimits: ImageLimits;
  /** An explicit trained logit scale (not the log); wins over everything. */
  logitScale?: number | undefined;
  /** The scale the catalogue knows for this model, used when the model files cannot tell. */
  knownLogitScale?: number | undefined;
  logger: Logger;
  onBatch?: (kind: 'image' | 'text', size: number, durationMs: number) => void;
  onCacheLookup?: (kind: 'image' | 'text', hit: boolean) => void;
}

export type LogitScaleSource = 'config' | 'model' | 'catalogue' | 'default';

/** Labels whose prompts are built and embedded at once by `classify`. */
const LABELS_IN_FLIGHT = 256;

/** Input ids of one prompt at its real length (`<|startoftext|>` … `<|endoftext|>`). */
type PromptIds = readonly number[];

export class ClipModel {
  readonly name: string;
  readonly precision: Precision;
  readonly embeddingSize: number;
  readonly contextLength: number;
  readonly imageSize: number;
  readonly logitScale: number;
  readonly logitScaleSource: LogitScaleSource;

  readonly #files: LoadedModelFiles;
  readonly #tokenizer: ClipTokenizer;
  readonly #text: OnnxGraph;
  /** Replicas of the image tower; `#freeVisions` are those not running a batch. */
  readonly #visions: readonly OnnxGraph[];
  readonly #freeVisions: OnnxGraph[];
  readonly #imageBatcher: Batcher<Float32Array, Float32Array>;
  readonly #textBatcher: Batcher<PromptIds, Float32Array>;
  readonly #textCache: EmbeddingCache;
  readonly #imageCache: EmbeddingCache;
  readonly #preprocessLimit: LimitFunction;
  readonly #options: ClipModelOptions;
  /** The last prompt waiting to be tokenized (see #tokenize). */
  #tokenizeTurn: Promise<unknown> = Promise.resolve();

  private constructor(
    options: ClipModelOptions,
    files: LoadedModelFiles,
    tokenizer: ClipTokenizer,
    graphs: Graphs,
    logitScale: { value: number; source: LogitScaleSource },
    embeddingSize: number,
  ) {
    this.#options = options;
    this.name = options.name;
    this.precision = options.precision;
    this.#files = files;
    this.#tokenizer = tokenizer;
    this.#text = graphs.text;
    this.#visions = graphs.visions;
    this.#freeVisions = [...graphs.visions];
    this.embeddingSize = embeddingSize;
    this.contextLength = tokenizer.contextLength;
    this.imageSize = files.preprocessor.cropHeight;
    this.logitScale = logitScale.value;
    this.logitScaleSource = logitScale.source;
    this.#textCache = new EmbeddingCache(options.textCacheSize);
    this.#imageCache = new EmbeddingCache(options.imageCacheSize);
    this.#preprocessLimit = pLimit(options.preprocessConcurrency);
    this.#imageBatcher = new Batcher({
      name: `${options.name} image`,
      maxBatchSize: options.maxBatchSize,
      maxWaitMs: options.maxBatchWaitMs,
      maxQueued: options.maxQueuedImages,
      concurrency: graphs.visions.length,
      run: (pixels) => this.#runVision(pixels),
      onBatch: (size, ms) => options.onBatch?.('image', size, ms),
    });
    this.#textBatcher = new Batcher({
      name: `${options.name} text`,
      maxBatchSize: options.maxTextBatchSize,
      maxWaitMs: options.maxBatchWaitMs,
      // Text work per job is bounded by the class limit; the image queue is the admission bound.
      maxQueued: Number.MAX_SAFE_INTEGER,
      run: (prompts) => this.#runText(prompts),
      onBatch: (size, ms) => options.onBatch?.('text', size, ms),
    });
  }

  /** Loads the files and graphs, resolves the logit scale, and warms both towers up. */
  static async load(options: ClipModelOptions): Promise<ClipModel> {
    const loadStarted = performance.now();
    const files = await loadModelFiles(options.dir, options.precision);
    const tokenizer = await ClipTokenizer.fromFile(files.tokenizerPath, { contextLength: files.config.contextLength });
    const graphs = await loadGraphs(files, options.session, options.visionReplicas ?? 1);
    const warmStarted = performance.now();
    options.logger.info({ model: options.name, loadMs: Math.round(warmStarted - loadStarted) }, 'model loaded; warming up');
    try {
      const logitScale = await resolveLogitScale(files, tokenizer, options);
      if (logitScale.source === 'default') {
        options.logger.warn(
          { model: options.name },
          'the trained logit scale could not be read from the model (no onnx/model.onnx); using 100, as for OpenAI CLIP. Set LOGIT_SCALE to override',
        );
      }
      const probe = await runVisionGraph(graphs.visions[0]!, [new Float32Array(pixelCount(files.preprocessor))], files.preprocessor, tokenizer);
      const model = new ClipModel(options, files, tokenizer, graphs, logitScale, probe[0]!.length);
      await model.#runText([tokenizer.encode('warm up')]);
      options.logger.info({ model: options.name, warmMs: Math.round(performance.now() - warmStarted) }, 'model warmed up');
      return model;
    } catch (error) {
      await releaseGraphs(graphs);
      throw error;
    }
  }

  /** Images waiting for an inference batch. */
  get queuedImages(): number {
    return this.#imageBatcher.queued;
  }

  get textCacheSize(): number {
    return this.#textCache.size;
  }

  get imageCacheSize(): number {
    return this.#imageCache.size;
  }

  /** Per image, the probability of each label. */
  async classify(images: readonly Uint8Array[], labels: readonly string[], prompt: PromptConfig, signal?: AbortSignal): Promise<number[][]> {
    const templates = templatesOf(prompt);
    const classEmbeddings = (async () => {
      // A chunk of labels at a time: 1000 classes × 100 templates of 1000 characters would otherwise be
      // 200 MB of prompt strings created in one go (issue 5); a chunk still fills many text batches.
      const embeddings: Float32Array[] = [];
      for (let start = 0; start < labels.length; start += LABELS_IN_FLIGHT) {
        const chunk = labels.slice(start, start + LABELS_IN_FLIGHT);
        embeddings.push(...(await Promise.all(chunk.map(async (label) => ensemble(await Promise.all(templates.map((t) => this.embedPrompt(applyTemplate(t, label)))))))));
      }
      return embeddings;
    })();
    const imageEmbeddings = Promise.all(images.map((bytes, i) => this.embedImage(bytes, i, signal)));
    // Settle both before throwing, so no rejection goes unobserved.
    const [classes, pictures] = await Promise.allSettled([classEmbeddings, imageEmbeddings]);
    if (pictures.status === 'rejected') throw pictures.reason;
    if (classes.status === 'rejected') throw classes.reason;
    return classProbabilities(pictures.value, classes.value, this.logitScale);
  }

  /** The normalised embedding of one prompt (cached by prompt text). */
  embedPrompt(prompt: string): Promise<Float32Array> {
    return this.#textCache.get(
      prompt,
      async () => this.#textBatcher.add(await this.#tokenize(prompt)),
      (hit) => this.#options.onCacheLookup?.('text', hit),
    );
  }

  /**
   * Tokenizing is synchronous JavaScript: a job may bring up to classes × templates prompts (100,000 at
   * the default limits), which in one tick would hold the event loop for seconds or minutes. One prompt
   * per event-loop turn, in order, so requests, health checks and websockets are served in between (issue 5).
   */
  #tokenize(prompt: string): Promise<number[]> {
    const ids = this.#tokenizeTurn.then(() => new Promise<void>((resolve) => setImmediate(resolve))).then(() => this.#tokenizer.encode(prompt));
    this.#tokenizeTurn = ids.catch(() => undefined);
    return ids;
  }

  /** The normalised embedding of one encoded image (cached by a hash of its bytes). `index` names it in errors. */
  embedImage(bytes: Uint8Array, index: number, signal?: AbortSignal): Promise<Float32Array> {
    const key = this.#imageCache.enabled ? createHash('sha256').update(bytes).digest('base64') : '';
    return this.#imageCache.get(
      key,
      async () => {
        const pixels = await this.#preprocessLimit(() =>
          preprocessImage(bytes, this.#files.preprocessor, this.#options.imageLimits, {
            field: `images[${index}]`,
            ...(this.#options.exactResizeMaxPixels === undefined ? {} : { exactResizeMaxPixels: this.#options.exactResizeMaxPixels }),
          }).catch((error: unknown) => {
            throw isAppError(error) ? error : new AppError(ErrorCode.BadUserInput, `images[${index}] could not be decoded`, { cause: error });
          }),
        );
        // A cached promise is shared by later jobs, so it must not die with this job's signal.
        return this.#imageBatcher.add(pixels, this.#imageCache.enabled ? undefined : signal);
      },
      (hit) => this.#options.onCacheLookup?.('image', hit),
    );
  }

  /** Abandons queued work (rejected with `reason`), waits for the runs in flight, then releases the sessions. */
  async abort(reason: Error): Promise<void> {
    await Promise.all([this.#imageBatcher.abort(reason), this.#textBatcher.abort(reason)]);
    await releaseGraphs({ text: this.#text, visions: this.#visions });
  }

  /** Finishes queued work, then releases the ONNX sessions. */
  async stop(): Promise<void> {
    await Promise.all([this.#imageBatcher.stop(), this.#textBatcher.stop()]);
    await releaseGraphs({ text: this.#text, visions: this.#visions });
  }

  async #runVision(pixels: Float32Array[]): Promise<Float32Array[]> {
    // The batcher runs at most one batch per replica, so one is always free here.
    const graph = this.#freeVisions.pop();
    if (!graph) throw new Error(`${this.name}: no free image-tower replica`);
    try {
      return await runVisionGraph(graph, pixels, this.#files.preprocessor, this.#tokenizer);
    } finally {
      this.#freeVisions.push(graph);
    }
  }

  async #runText(prompts: readonly PromptIds[]): Promise<Float32Array[]> {
    return runTextGraph(this.#text, prompts, this.#tokenizer, this.#files.preprocessor);
  }
}

interface Graphs {
  text: OnnxGraph;
  /** Image-tower replicas; for a combined-only model, the combined graph itself (once). */
  visions: readonly OnnxGraph[];
}

async function loadGraphs(files: LoadedModelFiles, session: OnnxSessionOptions, visionReplicas: number): Promise<Graphs> {
  // The replicas share the threads: one two-threaded copy, or two single-threaded ones, on 2 cores.
  const visionSession = { ...session, intraOpThreads: Math.max(1, Math.floor(session.intraOpThreads / visionReplicas)) };
  if (files.textModelPath && files.visionModelPath) {
    // All settle before anything is decided: a tower still loading in its worker when another failed would
    // outlive the model, and a process exiting under a busy worker aborts in native code (issue 5).
    const visionPath = files.visionModelPath;
    const loads = await Promise.allSettled([
      OnnxGraph.load(files.textModelPath, session),
      ...Array.from({ length: visionReplicas }, () => OnnxGraph.load(visionPath, visionSession)),
    ]);
    const failed = loads.find((load): load is PromiseRejectedResult => load.status === 'rejected');
    const loaded = loads.flatMap((load) => (load.status === 'fulfilled' ? [load.value] : []));
    if (failed) {
      await Promise.allSettled(loaded.map((graph) => graph.release()));
      throw failed.reason;
    }
    const [text, ...visions] = loaded;
    return { text: text!, visions };
  }
  if (files.combinedModelPath) {
    const combined = await OnnxGraph.load(files.combinedModelPath, session);
    return { text: combined, visions: [combined] };
  }
  throw new Error(`${files.dir}: neither the two towers nor onnx/model.onnx are present`);
}

async function releaseGraphs(graphs: Graphs): Promise<void> {
  const distinct = new Set([graphs.text, ...graphs.visions]);
  await Promise.allSettled([...distinct].map((graph) => graph.release()));
}

function pixelCount(pre: PreprocessorConfig): number {
  return 3 * pre.cropHeight * pre.cropWidth;
}

/** Tokens that make the smallest valid prompt, for feeding the text side of a combined graph we only need images from. */
function minimalPrompt(tokenizer: ClipTokenizer): PromptIds {
  return [tokenizer.sotId, tokenizer.eotId];
}

/** Normalised image embeddings; a combined graph (no separate towers) also needs a dummy prompt. */
async function runVisionGraph(
  graph: OnnxGraph,
  pixels: readonly Float32Array[],
  pre: PreprocessorConfig,
  tokenizer: ClipTokenizer,
): Promise<Float32Array[]> {
  const size = pixelCount(pre);
  const batch = new Float32Array(size * pixels.length);
  pixels.forEach((p, i) => batch.set(p, i * size));
  const feeds: Record<string, FeedValue> = {
    pixel_values: { kind: 'float', data: batch, dims: [pixels.length, 3, pre.cropHeight, pre.cropWidth] },
    ...textFeeds([minimalPrompt(tokenizer)], tokenizer.padId),
  };
  const { image_embeds } = await graph.run(feeds, ['image_embeds']);
  return splitRows(image_embeds!.data, pixels.length);
}

/** Normalised text embeddings, the batch run at its longest real length (CLIP's causal mask makes padding irrelevant). */
async function runTextGraph(
  graph: OnnxGraph,
  prompts: readonly PromptIds[],
  tokenizer: ClipTokenizer,
  pre: PreprocessorConfig,
): Promise<Float32Array[]> {
  const feeds: Record<string, FeedValue> = {
    ...textFeeds(prompts, tokenizer.padId),
    pixel_values: { kind: 'float', data: new Float32Array(pixelCount(pre)), dims: [1, 3, pre.cropHeight, pre.cropWidth] },
  };
  const { text_embeds } = await graph.run(feeds, ['text_embeds']);
  return splitRows(text_embeds!.data, prompts.length);
}

export function textFeeds(prompts: readonly PromptIds[], padId: number, length?: number): Record<string, FeedValue> {
  const width = length ?? Math.max(...prompts.map((p) => p.length));
  const ids = new BigInt64Array(prompts.length * width).fill(BigInt(padId));
  const mask = new BigInt64Array(prompts.length * width);
  prompts.forEach((prompt, row) => {
    prompt.forEach((id, col) => {
      ids[row * width + col] = BigInt(id);
      mask[row * width + col] = 1n;
    });
  });
  return {
    input_ids: { kind: 'int64', data: ids, dims: [prompts.length, width] },
    attention_mask: { kind: 'int64', data: mask, dims: [prompts.length, width] },
  };
}

function splitRows(data: Float32Array, rows: number): Float32Array[] {
  const width = data.length / rows;
  return Array.from({ length: rows }, (_, i) => normalize(data.slice(i * width, (i + 1) * width)));
}

/**
 * The trained scale, in order: an explicit setting; the combined graph itself (one run: its logits
 * divided by the cosines of its own embeddings); the catalogue's known value; 100 (OpenAI's) with a warning.
 * config.json's `logit_scale_init_value` is the *initial* value before training and is never used.
 */
async function resolveLogitScale(
  files: LoadedModelFiles,
  tokenizer: ClipTokenizer,
  options: ClipModelOptions,
): Promise<{ value: number; source: LogitScaleSource }> {
  if (options.logitScale !== undefined) return { value: options.logitScale, source: 'config' };
  if (files.combinedModelPath) {
    const value = await measureLogitScale(files.combinedModelPath, files.preprocessor, tokenizer, options.session);
    if (value !== null) return { value, source: 'model' };
  }
  if (options.knownLogitScale !== undefined) return { value: options.knownLogitScale, source: 'catalogue' };
  return { value: 100, source: 'default' };
}

async function measureLogitScale(
  path: string,
  pre: PreprocessorConfig,
  tokenizer: ClipTokenizer,
  session: OnnxSessionOptions,
): Promise<number | null> {
  const graph = await OnnxGraph.load(path, session);
  try {
    if (!graph.hasOutput('logits_per_image')) return null;
    const pixels = new Float32Array(pixelCount(pre));
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.sin(i * 0.37);
    const prompts = [tokenizer.encode('a photo of a cat.'), tokenizer.encode('a diagram'), tokenizer.encode('x')];
    const out = await graph.run(
      { pixel_values: { kind: 'float', data: pixels, dims: [1, 3, pre.cropHeight, pre.cropWidth] }, ...textFeeds(prompts, tokenizer.padId) },
      ['logits_per_image', 'image_embeds', 'text_embeds'],
    );
    const image = splitRows(out.image_embeds!.data, 1)[0]!;
    const texts = splitRows(out.text_embeds!.data, prompts.length);
    // Least squares over the prompts: logits = s · cos, robust when one cosine is near 0.
    let num = 0;
    let den = 0;
    texts.forEach((t, j) => {
      let cos = 0;
      for (let k = 0; k < t.length; k++) cos += t[k]! * image[k]!;
      num += out.logits_per_image!.data[j]! * cos;
      den += cos * cos;
    });
    const scale = num / den;
    return den > 1e-8 && Number.isFinite(scale) && scale > 0 ? scale : null;
  } finally {
    await graph.release();
  }
}
