/**
 * The inference service the job layer talks to: every configured model, loaded once and shared by
 * all jobs. The default model must load for the server to be ready; extra models load in the
 * background and a failure there only marks that model failed.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { AppError, ErrorCode, UnreachableCaseError, badUserInput, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { findCatalogueEntry, normaliseModelName, resolveModelSource } from './catalogue.js';
import { ClipModel } from './ClipModel.js';
import { parseModelOptions, type LoadPolicy } from '../config.js';
import { ModelSlot } from './ModelSlot.js';
import { fetchModelFiles } from './hub/fetchModel.js';
import { decodeImageString, inspectImage } from './image/imageInput.js';
import type { GraphOptimizationLevel } from './runtime/onnx.js';
import type { ExecutionProvider } from './runtime/executionProviders.js';
import { embeddingTemplatesOf, toVector } from './embeddings.js';
import { PreprocessPool } from './image/preprocessPool.js';
import { applyTemplate, ensemble, parsePromptConfig } from './scoring.js';
import { modelFingerprint } from './modelFingerprint.js';
import { buildZeroShotWeights, scoreAgainstWeights } from './zeroShotWeights.js';
import type {
  BuildWeightsRequest,
  ClassifyRequest,
  ClassifyResult,
  ClassifyWithWeightsRequest,
  EmbeddingVectors,
  EmbedImagesRequest,
  EmbedTextsRequest,
  ImageInfo,
  ImageLimits,
  ModelInfo,
  Precision,
  PromptConfig,
} from './types.js';

export interface HubSettings {
  /** Where downloaded models are kept. */
  cacheDir: string;
  /** The hub (or a mirror). @default 'https://huggingface.co' */
  endpoint: string;
  /** Sent as a bearer token, for gated or private repos. */
  token?: string | undefined;
  /** Use only the cache; never the network. */
  offline: boolean;
  /** Draw a progress bar on stderr while downloading. */
  progress: boolean;
}

export interface InferenceSettings {
  /** @default 32 */
  maxBatchSize: number;
  /** @default 5 */
  maxBatchWaitMs: number;
  /** @default 64 */
  maxTextBatchSize: number;
  /** Images waiting per model before OVERLOADED. */
  maxQueuedImages: number;
  /** ONNX Runtime intra-op threads per model (the text tower's; image-tower replicas share them). */
  intraOpThreads: number;
  /** Copies of the image tower running batches side by side; undefined: decided by the graph (runtime/replicas.ts). */
  visionReplicas?: number | undefined;
  graphOptimizationLevel: GraphOptimizationLevel;
  /** Let idle ONNX Runtime threads spin for work. @default false */
  allowSpinning?: boolean | undefined;
  /** ONNX Runtime execution providers, in priority order. @default ['cpu'] */
  executionProviders?: readonly ExecutionProvider[] | undefined;
  /** Overrides the trained logit scale of every model. */
  logitScale?: number | undefined;
  /** Whether ONNX Runtime may queue its usage telemetry (ORT_TELEMETRY); absent: it may not. */
  ortTelemetry?: boolean | undefined;
  /** Images decoded and resized at once. */
  preprocessConcurrency: number;
  /** Worker threads preprocessing images, shared by every model; 0 preprocesses on the event loop. @default 0 */
  preprocessWorkers?: number | undefined;
  /** Downscales reading more source pixels than this use libvips instead of the exact PIL port. @default 400000 */
  exactResizeMaxPixels?: number | undefined;
}

export interface ClipServiceOptions {
  /** Source of the default model: catalogue name, hub id `owner/name[@rev]`, or a local directory. */
  defaultModel: string;
  /** More models; a failure to load one never takes the default down. */
  extraModels: { name: string; source: string }[];
  precision: Precision;
  hub: HubSettings;
  inference: InferenceSettings;
  /** LRU capacities, in entries. */
  caches: { textEmbeddings: number; imageEmbeddings: number };
  imageLimits: ImageLimits;
  logger: Logger;
  /** Stop a model that ran no inference for this long, in seconds (it starts again on its next job); 0: never. See MODEL_IDLE_STOP_SECONDS. */
  idleStopSeconds?: number | undefined;
  /** Milliseconds since an epoch, for idle times; tests pass their own. @default Date.now */
  clock?: (() => number) | undefined;
}

export type ClipEvents = {
  batchCompleted: [{ model: string; kind: 'image' | 'text'; size: number; durationMs: number }];
  cacheLookup: [{ model: string; kind: 'image' | 'text'; hit: boolean }];
  modelStatusChanged: [ModelInfo];
};

/** Texts whose prompts are built and embedded at once by `embedTexts`. */
const TEXTS_IN_FLIGHT = 256;

export class ClipService {
  readonly events = new EventEmitter<ClipEvents>();
  readonly defaultModelName: string;
  readonly #options: ClipServiceOptions;
  readonly #slots = new Map<string, ModelSlot>();
  /** The operator's source string per model (may be a server path: never shown to clients). */
  readonly #sources = new Map<string, string>();
  #started: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  readonly #clock: () => number;
  /** One pool for every model: the cores are shared anyway. */
  readonly #preprocessPool: PreprocessPool | undefined;
  /** Per model, the fingerprint of the files it was last loaded from (see modelFingerprint.ts). */
  readonly #fingerprints = new Map<string, Promise<string>>();

  constructor(options: ClipServiceOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    const idle = options.idleStopSeconds ?? 0;
    if (!Number.isFinite(idle) || idle < 0)
      throw new TypeError(`Expected idleStopSeconds to be a number >= 0, got ${idle}`);
    const workers = options.inference.preprocessWorkers ?? 0;
    this.#preprocessPool = workers > 0 ? new PreprocessPool({ size: workers }) : undefined;
    this.defaultModelName = defaultNameOf(options.defaultModel);
    const specs = [{ name: this.defaultModelName, source: options.defaultModel }];
    for (const extra of options.extraModels) {
      if (specs.some((s) => normaliseModelName(s.name) === normaliseModelName(extra.name))) {
        throw new TypeError(`Expected distinct model names, got ${extra.name} twice`);
      }
      specs.push(extra);
    }
    for (const spec of specs) {
      this.#sources.set(spec.name, spec.source);
      this.#slots.set(
        spec.name,
        new ModelSlot({
          info: {
            name: spec.name,
            source: publicSourceOf(spec.source),
            precision: options.precision,
            status: 'uninitialized',
            embeddingSize: null,
            contextLength: null,
            imageSize: null,
            logitScale: null,
            scoring: null,
            logitBias: null,
            layout: null,
            sessionBytes: null,
            error: null,
          },
          load: loadPolicyOf(spec.source),
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
    const idleSeconds = this.#options.idleStopSeconds ?? 0;
    if (idleSeconds > 0) {
      // A quarter of the idle time between checks: a model is stopped at most 25 % later than due.
      this.#idleTimer = setInterval(() => void this.stopIdleModels(), Math.max(250, (idleSeconds * 1000) / 4));
      this.#idleTimer.unref();
    }
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
  async #load(name: string, rawSource: string, onLoading: () => void): Promise<ClipModel> {
    const { logger, inference, caches, hub, precision } = this.#options;
    const started = performance.now();
    try {
      logger.info({ model: name, source: publicSourceOf(rawSource), precision }, 'loading model');
      const { source: sourceText, options: modelOptions } = parseModelOptions(rawSource);
      const source = resolveModelSource(sourceText);
      // A model configured under a catalogue name (e.g. FES's open-clip-vit-b32=<dir>) gets that entry's published values.
      const known = findCatalogueEntry(sourceText) ?? findCatalogueEntry(name);
      // A SigLIP export's trained scale and bias are in its combined graph alone: fetched unless the model's option or
      // the catalogue already gives them.
      const scaleKnown = modelOptions.logitScale !== undefined || known?.logitScale !== undefined;
      const dir =
        source.kind === 'local'
          ? source.path
          : await fetchModelFiles(source, precision, {
              ...hub,
              logger,
              withCombined: scaleKnown ? false : 'for-siglip',
            });
      onLoading();
      this.#fingerprints.set(name, modelFingerprint(dir, precision));
      const model = await ClipModel.load({
        name,
        dir,
        precision,
        session: {
          intraOpThreads: inference.intraOpThreads,
          graphOptimizationLevel: inference.graphOptimizationLevel,
          allowSpinning: inference.allowSpinning ?? false,
          ...(inference.executionProviders === undefined ? {} : { executionProviders: inference.executionProviders }),
          telemetry: inference.ortTelemetry ?? false,
        },
        visionReplicas: inference.visionReplicas,
        maxBatchSize: inference.maxBatchSize,
        maxBatchWaitMs: inference.maxBatchWaitMs,
        maxTextBatchSize: inference.maxTextBatchSize,
        maxQueuedImages: inference.maxQueuedImages,
        preprocessConcurrency: inference.preprocessConcurrency,
        preprocessPool: this.#preprocessPool,
        exactResizeMaxPixels: inference.exactResizeMaxPixels,
        textCacheSize: caches.textEmbeddings,
        imageCacheSize: caches.imageEmbeddings,
        imageLimits: this.#options.imageLimits,
        logitScale: inference.logitScale,
        modelScoring: modelOptions,
        known: known === undefined ? undefined : { logitScale: known.logitScale, logitBias: known.logitBias },
        logger: logger.child({ model: name }),
        onBatch: (kind, size, durationMs) =>
          this.events.emit('batchCompleted', { model: name, kind, size, durationMs }),
        onCacheLookup: (kind, hit) => this.events.emit('cacheLookup', { model: name, kind, hit }),
      });
      logger.info(
        {
          model: name,
          ms: Math.round(performance.now() - started),
          layout: model.layout,
          scoring: model.scoring.kind,
          logitScale: model.logitScale,
          logitScaleSource: model.logitScaleSource,
          ...(model.logitBias === undefined
            ? {}
            : { logitBias: model.logitBias, logitBiasSource: model.logitBiasSource }),
        },
        'model ready',
      );
      return model;
    } catch (error) {
      logger.error({ model: name, err: error }, 'model failed to load');
      throw error;
    }
  }

  /** The canonical name of a configured model: exact, case-insensitive, kebab or snake case, or its source / hub id. */
  resolveModelName(name: string): string | undefined {
    if (this.#slots.has(name)) return name;
    const wanted = normaliseModelName(name);
    for (const [key, raw] of this.#sources) {
      const source = sourceOf(raw);
      if (normaliseModelName(key) === wanted || normaliseModelName(source) === wanted) return key;
    }
    // Then through the catalogue: FES's `open-clip-vit-b32` finds the model configured as `xlm-roberta-base-ViT-B-32`,
    // or under any name whose source is that hub repo.
    const catalogue = findCatalogueEntry(name);
    if (catalogue === undefined) return undefined;
    for (const [key, raw] of this.#sources) {
      const source = sourceOf(raw);
      const configured = findCatalogueEntry(source) ?? findCatalogueEntry(key);
      if (configured === catalogue) return key;
    }
    return undefined;
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
  async stopIdleModels(): Promise<string[]> {
    const idleMs = (this.#options.idleStopSeconds ?? 0) * 1000;
    if (idleMs <= 0 || this.#stopping) return [];
    const idle = [...this.#slots.values()].filter((slot) => slot.status === 'ready' && slot.idleMs() >= idleMs);
    for (const slot of idle)
      this.#options.logger.info(
        { model: slot.name, idleSeconds: Math.round(slot.idleMs() / 1000) },
        'stopping an idle model',
      );
    await Promise.all(idle.map((slot) => slot.stop()));
    return idle.map((slot) => slot.name);
  }

  /**
   * Ready unless the default model failed, or is eager and has not finished its first load. A stopped (or lazy, not
   * yet started) default model leaves the server ready: its next job starts it. Other models never count.
   */
  readiness(): { ready: boolean; reason: string | null } {
    const slot = this.#slots.get(this.defaultModelName)!;
    const info = slot.info();
    if (this.#stopping) return { ready: false, reason: 'shutting down' };
    switch (info.status) {
      case 'ready':
      case 'stopping':
      case 'stopped':
        return { ready: true, reason: null };
      case 'uninitialized':
      case 'starting':
      case 'loading':
        return slot.hasRun || slot.load === 'lazy'
          ? { ready: true, reason: null }
          : { ready: false, reason: `loading the default model ${info.name}` };
      case 'failed':
        return { ready: false, reason: `the default model ${info.name} failed to load: ${info.error}` };
      default:
        throw new UnreachableCaseError(info.status);
    }
  }

  decodeImage(input: string, field: string): Buffer {
    return decodeImageString(input, field, this.#options.imageLimits.maxBytes);
  }

  inspectImage(bytes: Uint8Array, field: string): Promise<ImageInfo> {
    return inspectImage(bytes, field, this.#options.imageLimits);
  }

  validatePrompt(config: unknown, field: string): PromptConfig {
    return parsePromptConfig(config, field);
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
      slot.use(async (model) => {
        const vectors = await Promise.all(request.images.map((bytes, i) => model.embedImage(bytes, i, request.signal)));
        return { embeddings: vectors.map(toVector) };
      }),
    );
  }

  /**
   * One normalised text-tower vector per text, in order: verbatim unless `prompt` names templates (several are
   * averaged, as classification's ensemble). Shares the prompt cache with `classify`, keyed by the final prompt.
   */
  async embedTexts(request: EmbedTextsRequest): Promise<EmbeddingVectors> {
    const slot = this.#slotFor(request.model);
    const templates = embeddingTemplatesOf(request.prompt);
    return this.#inferring(slot.name, request.signal, () =>
      slot.use(async (model) => {
        const embeddings: number[][] = [];
        let tokens = 0;
        // A chunk at a time, as classify does for labels: bounded prompt strings and promises in flight.
        for (let start = 0; start < request.texts.length; start += TEXTS_IN_FLIGHT) {
          request.signal?.throwIfAborted();
          const chunk = request.texts.slice(start, start + TEXTS_IN_FLIGHT);
          const vectors = await Promise.all(
            chunk.map(async (text) => {
              const prompts = templates.map((template) => applyTemplate(template, text));
              const [vectors, counts] = await Promise.all([
                Promise.all(prompts.map((prompt) => model.embedPrompt(prompt))),
                Promise.all(prompts.map((prompt) => model.countTokens(prompt))),
              ]);
              for (const count of counts) tokens += count;
              return ensemble(vectors);
            }),
          );
          for (const vector of vectors) embeddings.push(toVector(vector));
        }
        return { embeddings, tokens };
      }),
    );
  }

  // ---- stored zero-shot classifiers: built once, then scored without the text tower ----

  /** The fingerprint of the model's files (starting it if needed): what stored weights are keyed by. */
  async modelFingerprint(model: string): Promise<string> {
    const slot = this.#slotFor(model);
    await slot.ready();
    return this.#fingerprints.get(slot.name)!;
  }

  /** open_clip's zero-shot weights (one row per label), embedded past the text cache, with progress. */
  async buildWeights(request: BuildWeightsRequest): Promise<Float32Array[]> {
    const slot = this.#slotFor(request.model);
    return this.#inferring(slot.name, request.signal, () =>
      slot.use((model) =>
        buildZeroShotWeights(request.labels, request.templates, (prompt) => model.embedPromptUncached(prompt), {
          promptsInFlight: this.#options.inference.maxTextBatchSize * 4,
          onProgress: request.onProgress,
          signal: request.signal,
        }),
      ),
    );
  }

  /** Per image, the probability of each row of `weights`: only the image tower runs. */
  async classifyWithWeights(request: ClassifyWithWeightsRequest): Promise<ClassifyResult> {
    const slot = this.#slotFor(request.model);
    return this.#inferring(slot.name, request.signal, () =>
      slot.use(async (model) => {
        const images = await Promise.all(request.images.map((bytes, i) => model.embedImage(bytes, i, request.signal)));
        return { probabilities: scoreAgainstWeights(images, request.weights, model.scoring) };
      }),
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
    this.#stopIdleTimer();
    await Promise.allSettled([...this.#slots.values()].map((slot) => slot.abort(reason)));
    await this.#preprocessPool?.close();
  }

  /** Finishes queued inference, then releases every session. Idempotent; a second call awaits the first. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopIdleTimer();
      await Promise.allSettled([...this.#slots.values()].map((slot) => slot.close()));
      await this.#preprocessPool?.close();
    })();
    return this.#stopping;
  }

  #stopIdleTimer(): void {
    if (this.#idleTimer !== null) clearInterval(this.#idleTimer);
    this.#idleTimer = null;
  }
}

/** A model's `load` option; an unparsable source is eager (loading it at start reports why). */
function loadPolicyOf(raw: string): LoadPolicy {
  try {
    return parseModelOptions(raw).options.load ?? 'eager';
  } catch {
    return 'eager';
  }
}

/** How a source is shown to clients: hub ids and catalogue names as they are, a local directory as `local:<folder>`. */
function publicSourceOf(raw: string): string {
  const source = sourceOf(raw);
  try {
    const resolved = resolveModelSource(source);
    return resolved.kind === 'local' ? `local:${path.basename(resolved.path)}` : source;
  } catch {
    return withoutServerPaths(source);
  }
}

/**
 * Load errors name the file at fault, but clients must not learn the server's directory layout:
 * an absolute path keeps only its last two segments (`…/onnx/text_model.onnx`). The full message is logged.
 */
export function withoutServerPaths(message: string): string {
  // The look-behind leaves URLs (`https://host/…`) and hub ids (`owner/name`) alone.
  return message.replace(/(?<![\w:/.~-])(?:\/[^\s/'"`:,;()]+)*\/([^\s/'"`:,;()]+\/[^\s/'"`:,;()]+)/g, '…/$1');
}

/** A catalogue model is called by its short name, a local directory by its folder name, a hub model by its id. */
function defaultNameOf(raw: string): string {
  const source = sourceOf(raw);
  const catalogue = findCatalogueEntry(source);
  if (catalogue) return catalogue.name;
  try {
    const resolved = resolveModelSource(source);
    if (resolved.kind === 'local') return path.basename(resolved.path);
  } catch {
    // An unusable source keeps its own string as its name; loading it reports why.
  }
  return source;
}

/** The source without its per-model options (`source;logitScale=…`); an unparsable string is kept whole (loading reports it). */
function sourceOf(raw: string): string {
  try {
    return parseModelOptions(raw).source;
  } catch {
    return raw.split(';')[0]!.trim();
  }
}
