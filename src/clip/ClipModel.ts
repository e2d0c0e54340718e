/**
 * One loaded CLIP-style model (any layout: see layouts/): its ONNX graphs as towers, tokenizer and preprocessor, the
 * image and text batchers every job shares, and the embedding caches. The recipe for a classification is short:
 * prompts → (cached) text embeddings → per-class ensemble; images → (cached) image embeddings; the model's scoring
 * (softmax of scale · cosine, or SigLIP's per-class sigmoid of scale · cosine + bias).
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import { AppError, ErrorCode, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { Batcher } from './runtime/Batcher.js';
import { EmbeddingCache } from './EmbeddingCache.js';
import { loadModelSpec, type LayoutName, type ModelSpec } from './layouts/index.js';
import { OnnxGraph, type FeedValue, type OnnxSessionOptions } from './runtime/onnx.js';
import { declaredInputs } from './runtime/onnxHeader.js';
import { FIXED_BATCH_BATCHES_PER_REPLICA, planVisionReplicas } from './runtime/replicas.js';
import { ImageTower, TextTower } from './runtime/towers.js';
import { preprocessImage, type PreprocessOptions } from './image/preprocess.js';
import type { PreprocessPool } from './image/preprocessPool.js';
import { normalize, resolveScoring, scoreClasses, templatesOf } from './scoring.js';
import { buildZeroShotWeights } from './zeroShotWeights.js';
import { loadTextTokenizer, type TextTokenizer } from './tokenizer.js';
import type { ImageLimits, Precision, PreprocessorConfig, PromptConfig, Scoring, ScoringSource } from './types.js';

export interface ClipModelOptions {
  name: string;
  /** A local model directory in a known layout (already downloaded). */
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
   * Copies of the image tower, each in its own worker, running batches side by side and sharing the threads. Two
   * single-threaded copies beat one two-threaded copy on throughput (no thread-pool barriers stalling when image
   * decoding takes a core). Undefined: the runtime decides by the graph (runtime/replicas.ts).
   */
  visionReplicas?: number | undefined;
  /** Images decoded and resized at once (sharp work runs off the event loop). */
  preprocessConcurrency: number;
  /** Worker threads to preprocess on (see PreprocessPool); absent: on the event loop. Not closed by the model. */
  preprocessPool?: PreprocessPool | undefined;
  /** See PreprocessOptions.exactResizeMaxPixels. */
  exactResizeMaxPixels?: number | undefined;
  /** LRU capacity (entries) of the text-embedding cache; 0 disables. */
  textCacheSize: number;
  /** LRU capacity (entries) of the image-embedding cache; 0 disables. */
  imageCacheSize: number;
  imageLimits: ImageLimits;
  /** `LOGIT_SCALE`: the trained scale (not the log) of every softmax model; ignored by sigmoid (SigLIP) models. */
  logitScale?: number | undefined;
  /** This model's own option (`CLIP_MODELS=name=source;logitScale=…;logitBias=…`): wins over everything. */
  modelScoring?: { logitScale?: number | undefined; logitBias?: number | undefined } | undefined;
  /** What the catalogue publishes for this model, used when the model files cannot tell. */
  known?: { logitScale?: number | undefined; logitBias?: number | undefined } | undefined;
  logger: Logger;
  onBatch?: (kind: 'image' | 'text', size: number, durationMs: number) => void;
  onCacheLookup?: (kind: 'image' | 'text', hit: boolean) => void;
}

export type LogitScaleSource = ScoringSource;

/** Labels whose prompts are built and embedded at once by `classify`. */
const LABELS_IN_FLIGHT = 256;

/** Input ids of one prompt at its real length, specials included (CLIP: `<|startoftext|>` … `<|endoftext|>`). */
type PromptIds = readonly number[];

export class ClipModel {
  readonly name: string;
  readonly precision: Precision;
  readonly layout: LayoutName;
  readonly embeddingSize: number;
  readonly contextLength: number;
  readonly imageSize: number;
  readonly scoring: Scoring;
  /** The softmax temperature or the sigmoid's scale. */
  readonly logitScale: number;
  readonly logitScaleSource: LogitScaleSource;
  readonly logitBiasSource: LogitScaleSource | undefined;
  /** Bytes of ONNX graph (and external weight data) the sessions hold, each image-tower replica counted. */
  readonly sessionBytes: number;

  readonly #spec: ModelSpec;
  readonly #tokenizer: TextTokenizer;
  readonly #text: TextTower;
  /** Replicas of the image tower, and how many batches each has in flight. */
  readonly #visions: readonly ImageTower[];
  readonly #visionLoads: number[];
  readonly #graphs: Graphs;
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
    loaded: Loaded,
    scoring: ResolvedScoring,
    embeddingSize: number,
    sessionBytes: number,
  ) {
    this.sessionBytes = sessionBytes;
    this.#options = options;
    this.name = options.name;
    this.precision = options.precision;
    this.#spec = loaded.spec;
    this.layout = loaded.spec.layout;
    this.#tokenizer = loaded.tokenizer;
    this.#graphs = loaded.graphs;
    this.#text = loaded.text;
    this.#visions = loaded.visions;
    this.#visionLoads = loaded.visions.map(() => 0);
    const fixedBatch = loaded.visions[0]!.fixedBatch !== undefined;
    this.embeddingSize = embeddingSize;
    this.contextLength = loaded.tokenizer.contextLength;
    this.imageSize = loaded.spec.image.cropHeight;
    this.scoring = scoring.scoring;
    this.logitScale = scoring.scoring.logitScale;
    this.logitScaleSource = scoring.scaleSource;
    this.logitBiasSource = scoring.biasSource;
    this.#textCache = new EmbeddingCache(options.textCacheSize);
    this.#imageCache = new EmbeddingCache(options.imageCacheSize);
    this.#preprocessLimit = pLimit(options.preprocessConcurrency);
    this.#imageBatcher = new Batcher({
      name: `${options.name} image`,
      maxBatchSize: options.maxBatchSize,
      maxWaitMs: options.maxBatchWaitMs,
      maxQueued: options.maxQueuedImages,
      // A fixed-batch graph runs its items one by one, so a big batch buys nothing and one replica must not take them
      // all; and a replica gets its next batch while it runs the current one, so it never waits for the event loop.
      concurrency: loaded.visions.length * (fixedBatch ? FIXED_BATCH_BATCHES_PER_REPLICA : 1),
      fairShare: fixedBatch,
      run: (pixels, deliver) => this.#runVision(pixels, deliver),
      onBatch: (size, ms) => options.onBatch?.('image', size, ms),
    });
    this.#textBatcher = new Batcher({
      name: `${options.name} text`,
      maxBatchSize: options.maxTextBatchSize,
      maxWaitMs: options.maxBatchWaitMs,
      // Text work per job is bounded by the class limit; the image queue is the admission bound.
      maxQueued: Number.MAX_SAFE_INTEGER,
      run: (prompts, deliver) => this.#runText(prompts, deliver),
      onBatch: (size, ms) => options.onBatch?.('text', size, ms),
    });
  }

  /** The trained SigLIP bias; undefined for softmax models. */
  get logitBias(): number | undefined {
    return this.scoring.kind === 'sigmoid' ? this.scoring.logitBias : undefined;
  }

  /** Reads the files (any layout), loads the graphs and the tokenizer, resolves the scoring, and warms both towers up. */
  static async load(options: ClipModelOptions): Promise<ClipModel> {
    const loadStarted = performance.now();
    const spec = await loadModelSpec(options.dir, options.precision);
    const graphs = await loadGraphs(spec, options.session, options.visionReplicas, options.logger, options.name);
    const warmStarted = performance.now();
    options.logger.info(
      { model: options.name, loadMs: Math.round(warmStarted - loadStarted) },
      'model loaded; warming up',
    );
    try {
      const loaded = await describeTowers(spec, graphs);
      const scoring = await resolveModelScoring(spec, loaded, options);
      const log = {
        model: options.name,
        layout: spec.layout,
        scoring: scoring.scoring.kind,
        logitScale: scoring.scoring.logitScale,
        logitScaleSource: scoring.scaleSource,
      };
      if (scoring.scaleSource === 'default') {
        options.logger.warn(
          log,
          'the trained logit scale is known neither from the model files nor from the catalogue; using 100, as for OpenAI CLIP. Set LOGIT_SCALE or the per-model logitScale option to override',
        );
      }
      if (scoring.scoring.kind === 'sigmoid' && options.logitScale !== undefined) {
        options.logger.info(
          log,
          'LOGIT_SCALE does not apply to this sigmoid-scored (SigLIP) model; its per-model logitScale option does',
        );
      }
      const probe = (await loaded.visions[0]!.embed([new Float32Array(loaded.visions[0]!.pixelCount)]))[0]!;
      if (spec.embeddingSize !== undefined && spec.embeddingSize !== probe.length && spec.layout === 'immich') {
        throw new AppError(
          ErrorCode.ModelUnavailable,
          `${spec.dir}: config.json declares embed_dim ${spec.embeddingSize}, but ${spec.graphs.kind === 'towers' ? spec.graphs.vision : 'the graph'} gives ${probe.length}-d embeddings`,
        );
      }
      const model = new ClipModel(options, loaded, scoring, probe.length, await sessionBytesOf(graphs));
      const warm = await model.#runText([loaded.tokenizer.encode('warm up')]);
      if (warm[0]!.length !== probe.length) {
        throw new AppError(
          ErrorCode.ModelUnavailable,
          `${spec.dir}: the text graph gives ${warm[0]!.length}-d embeddings, the image graph ${probe.length}-d`,
        );
      }
      options.logger.info(
        { model: options.name, warmMs: Math.round(performance.now() - warmStarted) },
        'model warmed up',
      );
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
  async classify(
    images: readonly Uint8Array[],
    labels: readonly string[],
    prompt: PromptConfig,
    signal?: AbortSignal,
  ): Promise<number[][]> {
    // A chunk of labels at a time: 1000 classes × 100 templates of 1000 characters would otherwise be
    // 200 MB of prompt strings created in one go (issue 5); a chunk still fills many text batches.
    const classEmbeddings = buildZeroShotWeights(labels, templatesOf(prompt), (p) => this.embedPrompt(p), {
      promptsInFlight: LABELS_IN_FLIGHT * templatesOf(prompt).length,
    });
    const imageEmbeddings = Promise.all(images.map((bytes, i) => this.embedImage(bytes, i, signal)));
    // Settle both before throwing, so no rejection goes unobserved.
    const [classes, pictures] = await Promise.allSettled([classEmbeddings, imageEmbeddings]);
    if (pictures.status === 'rejected') throw pictures.reason;
    if (classes.status === 'rejected') throw classes.reason;
    return scoreClasses(pictures.value, classes.value, this.scoring);
  }

  /** The normalised embedding of one prompt (cached by prompt text). */
  embedPrompt(prompt: string): Promise<Float32Array> {
    return this.#textCache.get(
      prompt,
      async () => this.#textBatcher.add(await this.#tokenize(prompt)),
      (hit) => this.#options.onCacheLookup?.('text', hit),
    );
  }

  /** The normalised embedding of one prompt, past the text cache: a classifier's build would evict every job's prompts. */
  async embedPromptUncached(prompt: string): Promise<Float32Array> {
    return this.#textBatcher.add(await this.#tokenize(prompt));
  }

  /** How many token ids the text tower reads for a prompt (special tokens included, after truncation): usage reports count them. */
  async countTokens(prompt: string): Promise<number> {
    return (await this.#tokenize(prompt)).length;
  }

  /**
   * Tokenizing is synchronous JavaScript: a job may bring up to classes × templates prompts (100,000 at
   * the default limits), which in one tick would hold the event loop for seconds or minutes. One prompt
   * per event-loop turn, in order, so requests, health checks and websockets are served in between (issue 5).
   */
  #tokenize(prompt: string): Promise<number[]> {
    const ids = this.#tokenizeTurn
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => this.#tokenizer.encode(prompt));
    this.#tokenizeTurn = ids.catch(() => undefined);
    return ids;
  }

  /** The normalised embedding of one encoded image (cached by a hash of its bytes). `index` names it in errors. */
  embedImage(bytes: Uint8Array, index: number, signal?: AbortSignal): Promise<Float32Array> {
    const key = this.#imageCache.enabled ? createHash('sha256').update(bytes).digest('base64') : '';
    return this.#imageCache.get(
      key,
      async () => {
        const options: PreprocessOptions = {
          field: `images[${index}]`,
          ...(this.#options.exactResizeMaxPixels === undefined
            ? {}
            : { exactResizeMaxPixels: this.#options.exactResizeMaxPixels }),
        };
        const pool = this.#options.preprocessPool;
        const pixels = await this.#preprocessLimit(() =>
          // The job keeps its bytes (retries, other models), so the pool copies them rather than taking them.
          (pool
            ? pool.preprocess(bytes, this.#spec.image, this.#options.imageLimits, options)
            : preprocessImage(bytes, this.#spec.image, this.#options.imageLimits, options)
          ).catch((error: unknown) => {
            throw isAppError(error)
              ? error
              : new AppError(ErrorCode.BadUserInput, `images[${index}] could not be decoded`, { cause: error });
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
    await releaseGraphs(this.#graphs);
  }

  /** Runs queued work now instead of waiting for fuller batches (see Batcher.hurry): the model is being stopped. */
  hurry(): void {
    this.#imageBatcher.hurry();
    this.#textBatcher.hurry();
  }

  /** Finishes queued work, then releases the ONNX sessions. */
  async stop(): Promise<void> {
    await Promise.all([this.#imageBatcher.stop(), this.#textBatcher.stop()]);
    await releaseGraphs(this.#graphs);
  }

  async #runVision(pixels: Float32Array[], deliver?: Deliver): Promise<Float32Array[]> {
    // The least busy replica (the batcher bounds the batches in flight, so the loads stay even).
    const index = this.#visionLoads.indexOf(Math.min(...this.#visionLoads));
    this.#visionLoads[index]!++;
    try {
      return await embedNormalised((onEach) => this.#visions[index]!.embed(pixels, onEach), deliver);
    } finally {
      this.#visionLoads[index]!--;
    }
  }

  async #runText(prompts: readonly PromptIds[], deliver?: Deliver): Promise<Float32Array[]> {
    return embedNormalised((onEach) => this.#text.embed(prompts, onEach), deliver);
  }
}

type Deliver = (index: number, embedding: Float32Array) => void;

/** Runs a tower and normalises its embeddings, each exactly once; those a fixed-batch graph hands over early go to `deliver` at once. */
async function embedNormalised(
  embed: (onEach: ((index: number, embedding: Float32Array) => void) | undefined) => Promise<Float32Array[]>,
  deliver: Deliver | undefined,
): Promise<Float32Array[]> {
  const early: Float32Array[] = [];
  const results = await embed(
    deliver === undefined
      ? undefined
      : (index, embedding) => {
          early[index] = normalize(embedding);
          deliver(index, early[index]);
        },
  );
  return results.map((embedding, i) => early[i] ?? normalize(embedding));
}

interface Graphs {
  text: OnnxGraph;
  /** Image-tower replicas; for a combined-only model, the combined graph itself (once). */
  visions: readonly OnnxGraph[];
  /** The combined graph when the towers came without it but it exists (a source of the trained scale). */
  combinedPath: string | undefined;
}

/** The graphs, tokenizer and towers of a model, before its scoring is known. */
interface Loaded {
  spec: ModelSpec;
  graphs: Graphs;
  tokenizer: TextTokenizer;
  text: TextTower;
  visions: readonly ImageTower[];
}

type ResolvedScoring = ReturnType<typeof resolveScoring>;

async function loadGraphs(
  spec: ModelSpec,
  session: OnnxSessionOptions,
  visionReplicas: number | undefined,
  logger: Logger,
  name: string,
): Promise<Graphs> {
  const files = spec.graphs;
  if (files.kind === 'towers') {
    // The replicas share the threads (one two-threaded copy, or two single-threaded ones, on 2 cores), so the plan
    // is made from the file's declared inputs before any session exists.
    const inputs =
      visionReplicas === undefined
        ? await declaredInputs(files.vision).catch((error: unknown) => {
            // ONNX Runtime has the last word on the file: if it loads it, one copy on every thread is always right.
            logger.warn(
              { model: name, err: error },
              'could not read the image graph inputs ahead of loading; running one copy of it',
            );
            return [];
          })
        : [];
    const plan = planVisionReplicas(visionReplicas, session.intraOpThreads, inputs);
    logger.info(
      { model: name, visionReplicas: plan.replicas, threadsEach: plan.threadsEach, reason: plan.reason },
      'image tower replicas',
    );
    const visionSession = { ...session, intraOpThreads: plan.threadsEach };
    // All settle before anything is decided: a tower still loading in its worker when another failed would
    // outlive the model, and a process exiting under a busy worker aborts in native code (issue 5).
    const loads = await Promise.allSettled([
      OnnxGraph.load(files.text, session),
      ...Array.from({ length: plan.replicas }, () => OnnxGraph.load(files.vision, visionSession)),
    ]);
    const failed = loads.find((load): load is PromiseRejectedResult => load.status === 'rejected');
    const loaded = loads.flatMap((load) => (load.status === 'fulfilled' ? [load.value] : []));
    if (failed) {
      await Promise.allSettled(loaded.map((graph) => graph.release()));
      throw failed.reason;
    }
    const [text, ...visions] = loaded;
    return { text: text!, visions, combinedPath: files.combined };
  }
  const combined = await OnnxGraph.load(files.combined, session);
  return { text: combined, visions: [combined], combinedPath: files.combined };
}

async function releaseGraphs(graphs: Graphs): Promise<void> {
  const distinct = new Set([graphs.text, ...graphs.visions]);
  await Promise.allSettled([...distinct].map((graph) => graph.release()));
}

/** The graph files behind the sessions, with the external weights of graphs over 2 GB (`model.onnx_data`). */
async function sessionBytesOf(graphs: Graphs): Promise<number> {
  const sizeOf = (file: string): Promise<number> =>
    stat(file).then(
      (s) => s.size,
      () => 0,
    );
  const sessions = [...new Set([graphs.text, ...graphs.visions])];
  const sizes = await Promise.all(
    sessions.map(async (graph) => (await sizeOf(graph.path)) + (await sizeOf(`${graph.path}_data`))),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

function pixelCount(pre: PreprocessorConfig): number {
  return 3 * pre.cropHeight * pre.cropWidth;
}

/** Towers over the loaded graphs (names, dtypes, fixed dims from the sessions), and the tokenizer the text graph fits. */
async function describeTowers(spec: ModelSpec, graphs: Graphs): Promise<Loaded> {
  const crop = { height: spec.image.cropHeight, width: spec.image.cropWidth };
  const combined = graphs.text === graphs.visions[0];
  // A combined graph needs both inputs on every run: a blank image for text runs, a minimal prompt for image runs.
  let textForImages: TextTower | undefined;
  let minimalIds: readonly number[] = [];
  const also = spec.embeddingOutputs ?? { image: [], text: [] };
  const text = new TextTower(
    graphs.text,
    combined
      ? () => ({
          pixel_values: {
            kind: 'float',
            data: new Float32Array(pixelCount(spec.image)),
            dims: [1, 3, crop.height, crop.width],
          },
        })
      : undefined,
    also.text,
  );
  const visions = graphs.visions.map(
    (graph) => new ImageTower(graph, crop, combined ? () => textForImages!.feeds([minimalIds]) : undefined, also.image),
  );
  const { contextLength, clean } = spec.text.resolve({
    fixedLength: text.fixedLength,
    takesAttentionMask: text.maskInput !== undefined,
  });
  const tokenizer = await loadTextTokenizer(spec.text.tokenizerDir, { contextLength, clean });
  text.setPadding(tokenizer.padId, spec.text.padToContext ? tokenizer.contextLength : undefined);
  textForImages = text;
  minimalIds = tokenizer.minimalIds;
  return { spec, graphs, tokenizer, text, visions };
}

/** The scoring from the candidates in order (see resolveScoring); the combined graph is measured only when it can decide. */
async function resolveModelScoring(
  spec: ModelSpec,
  loaded: Loaded,
  options: ClipModelOptions,
): Promise<ResolvedScoring> {
  const needsMeasure =
    options.modelScoring?.logitScale === undefined &&
    (spec.scoring === 'sigmoid' || options.logitScale === undefined) &&
    loaded.graphs.combinedPath !== undefined;
  const measured = needsMeasure
    ? await measureLogitScale(
        loaded.graphs.combinedPath!,
        spec.image,
        loaded.tokenizer,
        options.session,
        spec.scoring === 'sigmoid',
      )
    : null;
  return resolveScoring({
    kind: spec.scoring,
    model: options.name,
    option: options.modelScoring,
    setting: options.logitScale,
    measured: measured ?? undefined,
    catalogue: options.known,
  });
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
 * The trained scale (and, with `withBias`, a SigLIP bias) read from a combined graph (Hugging Face layout): one run,
 * its logits fitted against the cosines of its own embeddings by least squares (logits = s · cos [+ b]).
 * config.json's `logit_scale_init_value` is the *initial* value before training and is never used.
 */
async function measureLogitScale(
  path: string,
  pre: PreprocessorConfig,
  tokenizer: TextTokenizer,
  session: OnnxSessionOptions,
  withBias: boolean,
): Promise<{ logitScale: number; logitBias?: number } | null> {
  // A child process: the combined graph is as big as both towers, and memory a worker thread's session frees stays
  // in the server's heap (glibc), which made the fp32 ViT-B/32 server's RSS 2.2 GB instead of 1.1 (issue 12).
  const graph = await OnnxGraph.load(path, session, 'process');
  try {
    if (!graph.hasOutput('logits_per_image')) return null;
    const pixels = new Float32Array(pixelCount(pre));
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.sin(i * 0.37);
    const prompts = [
      tokenizer.encode('a photo of a cat.'),
      tokenizer.encode('a diagram'),
      tokenizer.encode('x'),
      tokenizer.encode('two dogs playing in the snow'),
    ];
    const out = await graph.run(
      {
        pixel_values: { kind: 'float', data: pixels, dims: [1, 3, pre.cropHeight, pre.cropWidth] },
        ...textFeeds(prompts, tokenizer.padId),
      },
      ['logits_per_image', 'image_embeds', 'text_embeds'],
    );
    const image = splitRows(out.image_embeds!.data, 1)[0]!;
    const texts = splitRows(out.text_embeds!.data, prompts.length);
    const cosines = texts.map((t) => t.reduce((sum, v, k) => sum + v * image[k]!, 0));
    const logits = Array.from(out.logits_per_image!.data.slice(0, prompts.length));
    if (withBias) {
      const n = cosines.length;
      const mx = cosines.reduce((a, b) => a + b, 0) / n;
      const my = logits.reduce((a, b) => a + b, 0) / n;
      let sxy = 0;
      let sxx = 0;
      cosines.forEach((x, j) => {
        sxy += (x - mx) * (logits[j]! - my);
        sxx += (x - mx) ** 2;
      });
      const scale = sxy / sxx;
      return sxx > 1e-10 && Number.isFinite(scale) && scale > 0
        ? { logitScale: scale, logitBias: my - scale * mx }
        : null;
    }
    // Least squares over the prompts: logits = s · cos, robust when one cosine is near 0.
    let num = 0;
    let den = 0;
    cosines.forEach((cos, j) => {
      num += logits[j]! * cos;
      den += cos * cos;
    });
    const scale = num / den;
    return den > 1e-8 && Number.isFinite(scale) && scale > 0 ? { logitScale: scale } : null;
  } finally {
    await graph.release();
  }
}
