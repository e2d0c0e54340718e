/**
 * One loaded CLIP-style model (any layout: see layouts/): its towers, tokenizer and preprocessor, the image and text
 * batchers every job shares, and the embedding caches. The recipe for a classification is short: prompts → (cached)
 * text embeddings → per-class ensemble; images → (cached) image embeddings; the model's scoring (softmax of
 * scale · cosine, or SigLIP's per-class sigmoid of scale · cosine + bias). Loading is modelLoading.ts, the scale's
 * origin logitScaleFit.ts, the first runs warmUp.ts, the image-tower copies runtime/replicas.ts.
 */
import { createHash } from 'node:crypto';
import pLimit, { type LimitFunction } from 'p-limit';
import { AppError, ErrorCode, isAppError } from '../errors.js';
import { EmbeddingCache } from './EmbeddingCache.js';
import { loadModelSpec, type LayoutName } from './layouts/index.js';
import { preprocessImage, type PreprocessOptions } from './image/preprocess.js';
import type { PreprocessPool } from './image/preprocessPool.js';
import { resolveModelScoring, type ModelScoringSettings, type ResolvedScoring } from './logitScaleFit.js';
import { describeTowers, loadGraphs, releaseGraphs, sessionBytesOf, type LoadedModel } from './modelLoading.js';
import { Batcher } from './runtime/Batcher.js';
import { FIXED_BATCH_BATCHES_PER_REPLICA, VisionReplicas } from './runtime/replicas.js';
import type { TextTower } from './runtime/towers.js';
import { normalize, scoreClasses, templatesOf } from './scoring.js';
import type { TextTokenizer } from './tokenizer.js';
import type { ImageLimits, Precision, PreprocessorConfig, PromptConfig, Scoring, ScoringSource } from './types.js';
import { warmUp } from './warmUp.js';
import { buildZeroShotWeights } from './zeroShotWeights.js';

export interface ClipModelOptions extends ModelScoringSettings {
  /** A local model directory in a known layout (already downloaded). */
  dir: string;
  precision: Precision;
  /** Largest image batch: see MAX_BATCH_SIZE. */
  maxBatchSize: number;
  /** How long a lone request waits for company, ms: see MAX_BATCH_WAIT_MS. */
  maxBatchWaitMs: number;
  /** Largest text batch (prompts): see MAX_TEXT_BATCH_SIZE. */
  maxTextBatchSize: number;
  /** Images allowed to wait for the image batcher; past it → OVERLOADED. See MAX_QUEUED_IMAGES. */
  maxQueuedImages: number;
  /**
   * Copies of the image tower, each in its own worker, running batches side by side and sharing the threads. Two
   * single-threaded copies beat one two-threaded copy on throughput (no thread-pool barriers stalling when image
   * decoding takes a core). Undefined: the runtime decides by the graph (runtime/replicas.ts). See VISION_REPLICAS.
   */
  visionReplicas: number | undefined;
  /** Images decoded and resized at once (sharp work runs off the event loop): see PREPROCESS_CONCURRENCY. */
  preprocessConcurrency: number;
  /** Worker threads to preprocess on (see PreprocessPool); absent: on the event loop. Not closed by the model. */
  preprocessPool: PreprocessPool | undefined;
  /** See EXACT_RESIZE_MAX_PIXELS and PreprocessOptions.exactResizeMaxPixels. */
  exactResizeMaxPixels: number;
  /** LRU capacity (entries) of the text-embedding cache; 0 disables. See TEXT_CACHE_SIZE. */
  textCacheSize: number;
  /** LRU capacity (entries) of the image-embedding cache; 0 disables. See IMAGE_CACHE_SIZE. */
  imageCacheSize: number;
  imageLimits: ImageLimits;
  onBatch?: (kind: 'image' | 'text', size: number, durationMs: number) => void;
  onCacheLookup?: (kind: 'image' | 'text', hit: boolean) => void;
}

/** Labels whose prompts are built and embedded at once by `classify`. */
const LABELS_IN_FLIGHT = 256;

/** Input ids of one prompt at its real length, specials included (CLIP: `<|startoftext|>` … `<|endoftext|>`). */
type PromptIds = readonly number[];

type Deliver = (index: number, embedding: Float32Array) => void;

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
  readonly logitScaleSource: ScoringSource;
  readonly logitBiasSource: ScoringSource | undefined;
  /** Bytes of ONNX graph (and external weight data) the sessions hold, each image-tower replica counted. */
  readonly sessionBytes: number;

  readonly #loaded: LoadedModel;
  readonly #preprocessor: PreprocessorConfig;
  readonly #tokenizer: TextTokenizer;
  readonly #text: TextTower;
  readonly #visions: VisionReplicas;
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
    loaded: LoadedModel,
    scoring: ResolvedScoring,
    embeddingSize: number,
    sessionBytes: number,
  ) {
    this.sessionBytes = sessionBytes;
    this.#options = options;
    this.name = options.name;
    this.precision = options.precision;
    this.#loaded = loaded;
    this.#preprocessor = loaded.spec.image;
    this.layout = loaded.spec.layout;
    this.#tokenizer = loaded.tokenizer;
    this.#text = loaded.text;
    this.#visions = new VisionReplicas(loaded.visions);
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
    const fixedBatch = this.#visions.fixedBatch;
    this.#imageBatcher = new Batcher({
      name: `${options.name} image`,
      maxBatchSize: options.maxBatchSize,
      maxWaitMs: options.maxBatchWaitMs,
      maxQueued: options.maxQueuedImages,
      // A fixed-batch graph runs its items one by one, so a big batch buys nothing and one replica must not take them
      // all; and a replica gets its next batch while it runs the current one, so it never waits for the event loop.
      concurrency: this.#visions.count * (fixedBatch ? FIXED_BATCH_BATCHES_PER_REPLICA : 1),
      fairShare: fixedBatch,
      run: (pixels, deliver) => embedNormalised((onEach) => this.#visions.embed(pixels, onEach), deliver),
      onBatch: (size, ms) => options.onBatch?.('image', size, ms),
    });
    this.#textBatcher = new Batcher({
      name: `${options.name} text`,
      maxBatchSize: options.maxTextBatchSize,
      maxWaitMs: options.maxBatchWaitMs,
      // Text work per job is bounded by the class limit; the image queue is the admission bound.
      maxQueued: Number.MAX_SAFE_INTEGER,
      run: (prompts, deliver) => embedNormalised((onEach) => this.#text.embed(prompts, onEach), deliver),
      onBatch: (size, ms) => options.onBatch?.('text', size, ms),
    });
  }

  /** Reads the files (any layout), loads the graphs and the tokenizer, resolves the scoring, and warms both towers up. */
  static async load(options: ClipModelOptions): Promise<ClipModel> {
    const loadStarted = performance.now();
    const spec = await loadModelSpec(options.dir, options.precision);
    const graphs = await loadGraphs(spec, options);
    const warmStarted = performance.now();
    options.logger.info(
      { model: options.name, loadMs: Math.round(warmStarted - loadStarted) },
      'model loaded; warming up',
    );
    try {
      const loaded = await describeTowers(spec, graphs);
      const scoring = await resolveModelScoring(loaded, options);
      const embeddingSize = await warmUp(loaded);
      const model = new ClipModel(options, loaded, scoring, embeddingSize, await sessionBytesOf(graphs));
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

  /** The trained SigLIP bias; undefined for softmax models. */
  get logitBias(): number | undefined {
    return this.scoring.kind === 'sigmoid' ? this.scoring.logitBias : undefined;
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
    const classEmbeddings = this.#embedClasses(labels, templatesOf(prompt));
    const imageEmbeddings = Promise.all(images.map((bytes, i) => this.embedImage(bytes, i, signal)));
    // Settle both before throwing, so no rejection goes unobserved.
    const [classes, pictures] = await Promise.allSettled([classEmbeddings, imageEmbeddings]);
    if (pictures.status === 'rejected') throw pictures.reason;
    if (classes.status === 'rejected') throw classes.reason;
    return scoreClasses(pictures.value, classes.value, this.scoring);
  }

  /**
   * One embedding per label: the ensemble of its prompts (zeroShotWeights.ts, the recipe stored classifiers share).
   * A chunk of labels at a time, because 1000 classes × 100 templates of 1000 characters would otherwise be 200 MB
   * of prompt strings created in one go; a chunk still fills many text batches.
   */
  #embedClasses(labels: readonly string[], templates: readonly string[]): Promise<Float32Array[]> {
    return buildZeroShotWeights(labels, templates, (prompt) => this.embedPrompt(prompt), {
      promptsInFlight: LABELS_IN_FLIGHT * templates.length,
    });
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
   * Tokenizing is synchronous JavaScript: a job may bring up to classes × templates prompts (see MAX_PROMPTS_PER_JOB),
   * which in one tick would hold the event loop for seconds or minutes. One prompt per event-loop turn, in order, so
   * requests, health checks and websockets are served in between.
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
        const pixels = await this.#preprocessLimit(() => this.#pixelValues(bytes, index));
        // A cached promise is shared by later jobs, so it must not die with this job's signal.
        return this.#imageBatcher.add(pixels, this.#imageCache.enabled ? undefined : signal);
      },
      (hit) => this.#options.onCacheLookup?.('image', hit),
    );
  }

  /** The image's `pixel_values`, on the preprocessing pool when there is one; BAD_USER_INPUT when it cannot be decoded. */
  async #pixelValues(bytes: Uint8Array, index: number): Promise<Float32Array> {
    const options: PreprocessOptions = {
      field: `images[${index}]`,
      exactResizeMaxPixels: this.#options.exactResizeMaxPixels,
    };
    const pool = this.#options.preprocessPool;
    const limits = this.#options.imageLimits;
    try {
      // The job keeps its bytes (retries, other models), so the pool copies them rather than taking them.
      return await (pool
        ? pool.preprocess(bytes, this.#preprocessor, limits, options)
        : preprocessImage(bytes, this.#preprocessor, limits, options));
    } catch (error) {
      throw isAppError(error)
        ? error
        : new AppError(ErrorCode.BadUserInput, `images[${index}] could not be decoded`, { cause: error });
    }
  }

  /** Abandons queued work (rejected with `reason`), waits for the runs in flight, then releases the sessions. */
  async abort(reason: Error): Promise<void> {
    await Promise.all([this.#imageBatcher.abort(reason), this.#textBatcher.abort(reason)]);
    await releaseGraphs(this.#loaded.graphs);
  }

  /** Runs queued work now instead of waiting for fuller batches (see Batcher.hurry): the model is being stopped. */
  hurry(): void {
    this.#imageBatcher.hurry();
    this.#textBatcher.hurry();
  }

  /** Finishes queued work, then releases the ONNX sessions. */
  async stop(): Promise<void> {
    await Promise.all([this.#imageBatcher.stop(), this.#textBatcher.stop()]);
    await releaseGraphs(this.#loaded.graphs);
  }
}

/** Runs a tower and normalises its embeddings, each exactly once; those a fixed-batch graph hands over early go to `deliver` at once. */
async function embedNormalised(
  embed: (onEach: Deliver | undefined) => Promise<Float32Array[]>,
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
