/**
 * The inference service the job layer talks to: every configured model, loaded once and shared by
 * all jobs. The default model must load for the server to be ready; extra models load in the
 * background and a failure there only marks that model failed. What happens behind its surface lives
 * beside it: loading (loadConfiguredModel.ts), each model's lifecycle (ModelSlot.ts), idle stops
 * (idleStops.ts), the embedding task (embeddings.ts), the recipe of one model (ClipModel.ts), what stored
 * classifiers need of a model (storedWeights.ts).
 */
import { EventEmitter } from 'node:events';
import { AppError, ErrorCode, badUserInput, isAppError } from '../errors.js';
import type { ClipModel } from './ClipModel.js';
import { ModelCatalogue, publicSourceOf, withoutServerPaths } from './ModelCatalogue.js';
import { ModelSlot } from './ModelSlot.js';
import { embedImagesOn, embedTextsOn } from './embeddings.js';
import { IdleStops } from './idleStops.js';
import { loadConfiguredModel } from './loadConfiguredModel.js';
import { PreprocessPool } from './image/preprocessPool.js';
import type { ClipEvents, ClipServiceOptions } from './serviceOptions.js';
import { StoredWeights } from './storedWeights.js';
import type {
  BuildWeightsRequest,
  ClassifyRequest,
  ClassifyResult,
  ClassifyWithWeightsRequest,
  EmbeddingVectors,
  EmbedImagesRequest,
  EmbedTextsRequest,
  ImageInfo,
  ModelInfo,
  PromptConfig,
} from './types.js';

export class ClipService {
  readonly events = new EventEmitter<ClipEvents>();
  readonly defaultModelName: string;
  readonly #options: ClipServiceOptions;
  readonly #slots = new Map<string, ModelSlot>();
  /** Names, sources and input checks (ROLE=api uses the catalogue alone). */
  readonly #catalogue: ModelCatalogue;
  #started: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  readonly #idleStops: IdleStops;
  readonly #clock: () => number;
  /** One pool for every model: the cores are shared anyway. */
  readonly #preprocessPool: PreprocessPool | undefined;
  readonly #storedWeights: StoredWeights;

  constructor(options: ClipServiceOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#idleStops = new IdleStops({
      idleStopSeconds: options.idleStopSeconds,
      slots: () => this.#slots.values(),
      stopping: () => this.#stopping !== null,
      logger: options.logger,
    });
    this.#catalogue = new ModelCatalogue(options);
    this.#storedWeights = new StoredWeights({
      precision: options.precision,
      maxTextBatchSize: options.inference.maxTextBatchSize,
    });
    const workers = options.inference.preprocessWorkers;
    this.#preprocessPool = workers > 0 ? new PreprocessPool({ size: workers }) : undefined;
    this.defaultModelName = this.#catalogue.defaultModelName;
    for (const spec of this.#catalogue.configured()) {
      this.#slots.set(
        spec.name,
        new ModelSlot({
          info: this.#catalogue.infoBeforeLoad(spec),
          load: this.#catalogue.loadPolicyOf(spec),
          loader: (onLoading) => this.#load(spec.name, spec.source, onLoading),
          describeFailure: (error) => withoutServerPaths(error instanceof Error ? error.message : String(error)),
          clock: this.#clock,
          onChange: (info) => this.events.emit('modelStatusChanged', info),
        }),
      );
    }
  }

  /**
   * Starts every eager model (lazy ones wait for their first job); resolves once the default model is loaded and
   * warmed (at once when it is lazy), rejects if it fails.
   */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    this.#idleStops.start();
    for (const slot of this.#slots.values()) if (slot.load === 'eager') void slot.start();
    const slot = this.#slots.get(this.defaultModelName)!;
    if (slot.load === 'lazy') return;
    await slot.start();
    if (slot.status === 'failed') {
      throw new Error(`The default model ${this.defaultModelName} could not be loaded: ${slot.info().error}`, {
        cause: slot.failure,
      });
    }
  }

  /** Fetches the model's files, then loads and warms it; throws what went wrong (logged here). */
  #load(name: string, rawSource: string, onLoading: () => void): Promise<ClipModel> {
    return loadConfiguredModel(
      { name, rawSource, publicSource: publicSourceOf(rawSource) },
      {
        options: this.#options,
        preprocessPool: this.#preprocessPool,
        events: this.events,
        onLoading,
        onFilesReady: (dir) => this.#storedWeights.filesReady(name, dir),
      },
    );
  }

  /** The canonical name of a configured model: exact, case-insensitive, kebab or snake case, or its source / hub id. */
  resolveModelName(name: string): string | undefined {
    return this.#catalogue.resolveModelName(name);
  }

  models(): ModelInfo[] {
    return [...this.#slots.values()].map((slot) => slot.info());
  }

  /** The model's current state; NOT_FOUND when no configured model has that name. */
  modelInfo(name: string): ModelInfo {
    return this.#slotNamed(name).info();
  }

  /**
   * Starts a model (idempotent); resolves once it runs or failed to (see its status). NOT_FOUND when unknown,
   * SHUTTING_DOWN once the service stops.
   */
  async startModel(name: string): Promise<ModelInfo> {
    const slot = this.#slotNamed(name);
    if (this.#stopping) throw new AppError(ErrorCode.ShuttingDown, 'The server is shutting down and starts no model');
    await slot.start();
    return slot.info();
  }

  /**
   * Stops a model (idempotent): its running inference finishes, then its sessions, worker threads and caches are
   * released. Resolves once stopped. NOT_FOUND when unknown.
   */
  async stopModel(name: string): Promise<ModelInfo> {
    const slot = this.#slotNamed(name);
    await slot.stop();
    return slot.info();
  }

  /**
   * Waits until the model runs, starting it if it is lazy or stopped: what a job does before it runs.
   * Throws BAD_USER_INPUT for an unknown model, MODEL_UNAVAILABLE (with the reason) when it failed to load.
   */
  async prepareModel(name: string): Promise<void> {
    await this.#slotFor(name).ready();
  }

  /** Stops every model idle for `idleStopSeconds` or longer; resolves with their names once they are stopped. */
  stopIdleModels(): Promise<string[]> {
    return this.#idleStops.stopIdleModels();
  }

  /** Ready unless shutting down or the default model is not (see ModelSlot.readinessAsDefault); other models never count. */
  readiness(): { ready: boolean; reason: string | null } {
    if (this.#stopping) return { ready: false, reason: 'shutting down' };
    return this.#slots.get(this.defaultModelName)!.readinessAsDefault();
  }

  decodeImage(input: string, field: string): Buffer {
    return this.#catalogue.decodeImage(input, field);
  }

  inspectImage(bytes: Uint8Array, field: string): Promise<ImageInfo> {
    return this.#catalogue.inspectImage(bytes, field);
  }

  validatePrompt(config: unknown, field: string): PromptConfig {
    return this.#catalogue.validatePrompt(config, field);
  }

  async classify(request: ClassifyRequest): Promise<ClassifyResult> {
    const slot = this.#slotFor(request.model);
    return this.#inferring(slot.name, request.signal, () =>
      slot.use(async (model) => ({
        probabilities: await model.classify(request.images, request.labels, request.prompt, request.signal),
      })),
    );
  }

  /**
   * One normalised image-tower vector per image, in order. Shares the model's image cache (and batcher) with
   * `classify`: an image embedded first and classified later runs the image tower once.
   */
  async embedImages(request: EmbedImagesRequest): Promise<EmbeddingVectors> {
    const slot = this.#slotFor(request.model);
    return this.#inferring(slot.name, request.signal, () =>
      slot.use((model) => embedImagesOn(model, request.images, request.signal)),
    );
  }

  /**
   * One normalised text-tower vector per text, in order: verbatim unless `prompt` names templates (several are
   * averaged, as classification's ensemble). Shares the prompt cache with `classify`, keyed by the final prompt.
   */
  async embedTexts(request: EmbedTextsRequest): Promise<EmbeddingVectors> {
    const slot = this.#slotFor(request.model);
    return this.#inferring(slot.name, request.signal, () =>
      slot.use((model) => embedTextsOn(model, request.texts, request.prompt, request.signal)),
    );
  }

  /** The fingerprint of the model's files (starting it if needed): what stored weights are keyed by. */
  async modelFingerprint(model: string): Promise<string> {
    const slot = this.#slotFor(model);
    await slot.ready();
    return this.#storedWeights.fingerprintOf(slot.name);
  }

  /** open_clip's zero-shot weights (one row per label), embedded past the text cache, with progress. */
  async buildWeights(request: BuildWeightsRequest): Promise<Float32Array[]> {
    const slot = this.#slotFor(request.model);
    return this.#inferring(slot.name, request.signal, () =>
      slot.use((model) => this.#storedWeights.build(model, request)),
    );
  }

  /** Per image, the probability of each row of `weights`: only the image tower runs. */
  async classifyWithWeights(request: ClassifyWithWeightsRequest): Promise<ClassifyResult> {
    const slot = this.#slotFor(request.model);
    return this.#inferring(slot.name, request.signal, () =>
      slot.use(async (model) => ({ probabilities: await this.#storedWeights.score(model, request) })),
    );
  }

  /** The slot of the model a request names; BAD_USER_INPUT when unknown. */
  #slotFor(requested: string): ModelSlot {
    const name = this.resolveModelName(requested);
    const slot = name === undefined ? undefined : this.#slots.get(name);
    if (!slot) throw badUserInput(`model: unknown model ${requested}`, 'model');
    return slot;
  }

  /** The slot of the model a control request names; NOT_FOUND when unknown (the model is the resource asked for). */
  #slotNamed(requested: string): ModelSlot {
    const name = this.resolveModelName(requested);
    const slot = name === undefined ? undefined : this.#slots.get(name);
    if (!slot) throw new AppError(ErrorCode.NotFound, `Unknown model "${requested.slice(0, 100)}"`);
    return slot;
  }

  /** Runs inference, turning an unexpected failure into INFERENCE_FAILED (coded errors and aborts pass through). */
  async #inferring<T>(name: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isAppError(error) || signal?.aborted) throw error;
      throw new AppError(ErrorCode.InferenceFailed, `Inference failed on ${name}`, { cause: error });
    }
  }

  queuedImages(): number {
    let total = 0;
    for (const slot of this.#slots.values()) total += slot.model?.queuedImages ?? 0;
    return total;
  }

  /** Cache sizes per model, for metrics. */
  cacheSizes(): { model: string; text: number; image: number }[] {
    return [...this.#slots.values()].flatMap((slot) => {
      const model = slot.model;
      return model === undefined ? [] : [{ model: slot.name, text: model.textCacheSize, image: model.imageCacheSize }];
    });
  }

  /**
   * The emergency stop (a second SIGTERM): queued inference is rejected with SHUTTING_DOWN, only the batches
   * already inside ONNX Runtime finish, then every session is released. Exiting the process while a worker is
   * inside onnxruntime-node can abort it in native code, so this must precede process.exit.
   */
  async abort(): Promise<void> {
    const reason = new AppError(ErrorCode.ShuttingDown, 'The server stopped before this job finished');
    this.#idleStops.stop();
    await Promise.allSettled([...this.#slots.values()].map((slot) => slot.abort(reason)));
    await this.#preprocessPool?.close();
  }

  /** Finishes queued inference, then releases every session. Idempotent; a second call awaits the first. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#idleStops.stop();
      await Promise.allSettled([...this.#slots.values()].map((slot) => slot.close()));
      await this.#preprocessPool?.close();
    })();
    return this.#stopping;
  }
}

export { withoutServerPaths };
