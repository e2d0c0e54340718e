/**
 * The inference service the job layer talks to: every configured model, loaded once and shared by
 * all jobs. The default model must load for the server to be ready; extra models load in the
 * background and a failure there only marks that model failed.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { AppError, ErrorCode, badUserInput, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { findCatalogueEntry, normaliseModelName, resolveModelSource } from './catalogue.js';
import { ClipModel } from './ClipModel.js';
import { parseModelOptions } from '../config.js';
import { fetchModelFiles } from './hub/fetchModel.js';
import { decodeImageString, inspectImage } from './image/imageInput.js';
import type { GraphOptimizationLevel } from './runtime/onnx.js';
import type { ExecutionProvider } from './runtime/executionProviders.js';
import { embeddingTemplatesOf, toVector } from './embeddings.js';
import { PreprocessPool } from './image/preprocessPool.js';
import { applyTemplate, ensemble, parsePromptConfig } from './scoring.js';
import type {
  ClassifyRequest,
  ClassifyResult,
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
}

export type ClipEvents = {
  batchCompleted: [{ model: string; kind: 'image' | 'text'; size: number; durationMs: number }];
  cacheLookup: [{ model: string; kind: 'image' | 'text'; hit: boolean }];
  modelStatusChanged: [ModelInfo];
};

/** Texts whose prompts are built and embedded at once by `embedTexts`. */
const TEXTS_IN_FLIGHT = 256;

type Entry = {
  /** The operator's source string (may be a server path: never shown to clients). */
  source: string;
  info: ModelInfo;
  /** Settles when loading ends; never rejects (failure is recorded in `info`). */
  loaded: Promise<ClipModel | null>;
  model: ClipModel | null;
  /** Why loading failed, kept as the cause of start()'s rejection (main explains it to the operator). */
  failure?: unknown;
};

export class ClipService {
  readonly events = new EventEmitter<ClipEvents>();
  readonly defaultModelName: string;
  readonly #options: ClipServiceOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #specs: { name: string; source: string }[];
  #started: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  /** One pool for every model: the cores are shared anyway. */
  readonly #preprocessPool: PreprocessPool | undefined;

  constructor(options: ClipServiceOptions) {
    this.#options = options;
    const workers = options.inference.preprocessWorkers ?? 0;
    this.#preprocessPool = workers > 0 ? new PreprocessPool({ size: workers }) : undefined;
    this.defaultModelName = defaultNameOf(options.defaultModel);
    this.#specs = [{ name: this.defaultModelName, source: options.defaultModel }];
    for (const extra of options.extraModels) {
      if (this.#specs.some((s) => normaliseModelName(s.name) === normaliseModelName(extra.name))) {
        throw new TypeError(`Expected distinct model names, got ${extra.name} twice`);
      }
      this.#specs.push(extra);
    }
    for (const spec of this.#specs) {
      this.#entries.set(spec.name, {
        source: spec.source,
        info: {
          name: spec.name,
          source: publicSourceOf(spec.source),
          precision: options.precision,
          status: 'loading',
          embeddingSize: null,
          contextLength: null,
          imageSize: null,
          logitScale: null,
          scoring: null,
          logitBias: null,
          layout: null,
          error: null,
        },
        loaded: Promise.resolve(null),
        model: null,
      });
    }
  }

  /** Starts loading every model; resolves once the default is loaded and warmed, rejects if it fails. */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    for (const [name, entry] of this.#entries) entry.loaded = this.#load(name, entry);
    const defaultEntry = this.#entries.get(this.defaultModelName)!;
    const model = await defaultEntry.loaded;
    if (!model) throw new Error(`The default model ${this.defaultModelName} could not be loaded: ${defaultEntry.info.error}`, { cause: defaultEntry.failure });
  }

  async #load(name: string, entry: Entry): Promise<ClipModel | null> {
    const { logger, inference, caches, hub, precision } = this.#options;
    const started = performance.now();
    try {
      logger.info({ model: name, source: entry.info.source, precision }, 'loading model');
      const { source: sourceText, options: modelOptions } = parseModelOptions(entry.source);
      const source = resolveModelSource(sourceText);
      // A model configured under a catalogue name (e.g. FES's open-clip-vit-b32=<dir>) gets that entry's published values.
      const known = findCatalogueEntry(sourceText) ?? findCatalogueEntry(name);
      // A SigLIP export's trained scale and bias are in its combined graph alone: fetched unless the model's option or
      // the catalogue already gives them.
      const scaleKnown = modelOptions.logitScale !== undefined || known?.logitScale !== undefined;
      const dir =
        source.kind === 'local' ? source.path : await fetchModelFiles(source, precision, { ...hub, logger, withCombined: scaleKnown ? false : 'for-siglip' });
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
        onBatch: (kind, size, durationMs) => this.events.emit('batchCompleted', { model: name, kind, size, durationMs }),
        onCacheLookup: (kind, hit) => this.events.emit('cacheLookup', { model: name, kind, hit }),
      });
      if (this.#stopping) {
        await model.stop();
        return null;
      }
      entry.model = model;
      entry.info = {
        ...entry.info,
        status: 'ready',
        embeddingSize: model.embeddingSize,
        contextLength: model.contextLength,
        imageSize: model.imageSize,
        logitScale: model.logitScale,
        scoring: model.scoring.kind,
        logitBias: model.logitBias ?? null,
        layout: model.layout,
      };
      logger.info(
        {
          model: name,
          ms: Math.round(performance.now() - started),
          layout: model.layout,
          scoring: model.scoring.kind,
          logitScale: model.logitScale,
          logitScaleSource: model.logitScaleSource,
          ...(model.logitBias === undefined ? {} : { logitBias: model.logitBias, logitBiasSource: model.logitBiasSource }),
        },
        'model ready',
      );
      this.events.emit('modelStatusChanged', entry.info);
      return model;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      entry.info = { ...entry.info, status: 'failed', error: withoutServerPaths(message) };
      entry.failure = error;
      logger.error({ model: name, err: error }, 'model failed to load');
      this.events.emit('modelStatusChanged', entry.info);
      return null;
    }
  }

  /** The canonical name of a configured model: exact, case-insensitive, kebab or snake case, or its source / hub id. */
  resolveModelName(name: string): string | undefined {
    if (this.#entries.has(name)) return name;
    const wanted = normaliseModelName(name);
    for (const [key, entry] of this.#entries) {
      const source = sourceOf(entry.source);
      if (normaliseModelName(key) === wanted || normaliseModelName(source) === wanted) return key;
    }
    // Then through the catalogue: FES's `open-clip-vit-b32` finds the model configured as `xlm-roberta-base-ViT-B-32`,
    // or under any name whose source is that hub repo.
    const catalogue = findCatalogueEntry(name);
    if (catalogue === undefined) return undefined;
    for (const [key, entry] of this.#entries) {
      const source = sourceOf(entry.source);
      const configured = findCatalogueEntry(source) ?? findCatalogueEntry(key);
      if (configured === catalogue) return key;
    }
    return undefined;
  }

  models(): ModelInfo[] {
    return [...this.#entries.values()].map((e) => e.info);
  }

  readiness(): { ready: boolean; reason: string | null } {
    const info = this.#entries.get(this.defaultModelName)!.info;
    if (this.#stopping) return { ready: false, reason: 'shutting down' };
    switch (info.status) {
      case 'ready':
        return { ready: true, reason: null };
      case 'loading':
        return { ready: false, reason: `loading the default model ${info.name}` };
      case 'failed':
        return { ready: false, reason: `the default model ${info.name} failed to load: ${info.error}` };
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
    const name = this.resolveModelName(request.model);
    const entry = name === undefined ? undefined : this.#entries.get(name);
    if (!entry) throw badUserInput(`model: unknown model ${request.model}`, 'model');
    const model = entry.model ?? (await entry.loaded);
    if (!model) {
      throw new AppError(ErrorCode.ModelUnavailable, `The model ${entry.info.name} is not available: ${entry.info.error ?? 'not loaded'}`);
    }
    try {
      const probabilities = await model.classify(request.images, request.labels, request.prompt, request.signal);
      return { probabilities };
    } catch (error) {
      if (isAppError(error) || request.signal?.aborted) throw error;
      throw new AppError(ErrorCode.InferenceFailed, `Inference failed on ${entry.info.name}`, { cause: error });
    }
  }

  /**
   * One normalised image-tower vector per image, in order. Shares the model's image cache (and batcher) with
   * `classify`: an image embedded first and classified later runs the image tower once.
   */
  async embedImages(request: EmbedImagesRequest): Promise<EmbeddingVectors> {
    const { model, name } = await this.#readyModel(request.model);
    return this.#inferring(name, request.signal, async () => {
      const vectors = await Promise.all(request.images.map((bytes, i) => model.embedImage(bytes, i, request.signal)));
      return { embeddings: vectors.map(toVector) };
    });
  }

  /**
   * One normalised text-tower vector per text, in order: verbatim unless `prompt` names templates (several are
   * averaged, as classification's ensemble). Shares the prompt cache with `classify`, keyed by the final prompt.
   */
  async embedTexts(request: EmbedTextsRequest): Promise<EmbeddingVectors> {
    const { model, name } = await this.#readyModel(request.model);
    const templates = embeddingTemplatesOf(request.prompt);
    return this.#inferring(name, request.signal, async () => {
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
    });
  }

  /** The loaded model a request names; BAD_USER_INPUT when unknown, MODEL_UNAVAILABLE when it failed to load. */
  async #readyModel(requested: string): Promise<{ model: ClipModel; name: string }> {
    const name = this.resolveModelName(requested);
    const entry = name === undefined ? undefined : this.#entries.get(name);
    if (!entry) throw badUserInput(`model: unknown model ${requested}`, 'model');
    const model = entry.model ?? (await entry.loaded);
    if (!model) {
      throw new AppError(ErrorCode.ModelUnavailable, `The model ${entry.info.name} is not available: ${entry.info.error ?? 'not loaded'}`);
    }
    return { model, name: entry.info.name };
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
    for (const entry of this.#entries.values()) total += entry.model?.queuedImages ?? 0;
    return total;
  }

  /** Cache sizes per model, for metrics. */
  cacheSizes(): { model: string; text: number; image: number }[] {
    return [...this.#entries.values()]
      .filter((e) => e.model)
      .map((e) => ({ model: e.info.name, text: e.model!.textCacheSize, image: e.model!.imageCacheSize }));
  }

  /**
   * The emergency stop (a second SIGTERM): queued inference is rejected with SHUTTING_DOWN, only the batches
   * already inside ONNX Runtime finish, then every session is released. Exiting the process while a worker is
   * inside onnxruntime-node can abort it in native code, so this must precede process.exit.
   */
  async abort(): Promise<void> {
    const reason = new AppError(ErrorCode.ShuttingDown, 'The server stopped before this job finished');
    await Promise.allSettled([...this.#entries.values()].flatMap((e) => (e.model ? [e.model.abort(reason)] : [])));
    await this.#preprocessPool?.close();
  }

  /** Finishes queued inference, then releases every session. Idempotent; a second call awaits the first. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await Promise.allSettled([...this.#entries.values()].map((e) => e.loaded));
      await Promise.allSettled([...this.#entries.values()].flatMap((e) => (e.model ? [e.model.stop()] : [])));
      await this.#preprocessPool?.close();
    })();
    return this.#stopping;
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
