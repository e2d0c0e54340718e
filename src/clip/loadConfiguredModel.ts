/**
 * How the service loads one configured model: where its files are (a local directory, or the hub's cache after a
 * download), then ClipModel.load with the service's settings mapped onto the model's options, its events forwarded
 * under the model's name. Logs the outcome; throws what went wrong.
 */
import type { EventEmitter } from 'node:events';
import { parseModelOptions } from '../config.js';
import { findCatalogueEntry, resolveModelSource } from './catalogue.js';
import { ClipModel } from './ClipModel.js';
import { fetchModelFiles } from './hub/index.js';
import type { PreprocessPool } from './image/preprocessPool.js';
import type { OnnxSessionOptions } from './runtime/onnx.js';
import type { ClipEvents, ClipServiceOptions, InferenceSettings } from './serviceOptions.js';

export interface ConfiguredModel {
  name: string;
  /** The operator's source string, with its per-model options (may be a server path: never shown to clients). */
  rawSource: string;
  /** How the source is shown to clients and in the log. */
  publicSource: string;
}

export interface ModelLoadContext {
  options: ClipServiceOptions;
  /** The service's one preprocessing pool, shared by every model. */
  preprocessPool: PreprocessPool | undefined;
  events: EventEmitter<ClipEvents>;
  /** Called once the files are in place and the sessions start loading. */
  onLoading: () => void;
  /** Called with the model's directory once its files are in place (what stored weights are keyed by). */
  onFilesReady: (dir: string) => void;
}

/** Fetches the model's files, then loads and warms it; throws what went wrong (logged here). */
export async function loadConfiguredModel(model: ConfiguredModel, context: ModelLoadContext): Promise<ClipModel> {
  const { name, rawSource } = model;
  const { logger, inference, caches, hub, precision, imageLimits } = context.options;
  const started = performance.now();
  try {
    logger.info({ model: name, source: model.publicSource, precision }, 'loading model');
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
            withScaleFiles: scaleKnown ? 'never' : 'when-needed',
          });
    context.onLoading();
    context.onFilesReady(dir);
    const { events } = context;
    const loaded = await ClipModel.load({
      name,
      dir,
      precision,
      session: sessionOptionsOf(inference),
      visionReplicas: inference.visionReplicas,
      maxBatchSize: inference.maxBatchSize,
      maxBatchWaitMs: inference.maxBatchWaitMs,
      maxTextBatchSize: inference.maxTextBatchSize,
      maxQueuedImages: inference.maxQueuedImages,
      preprocessConcurrency: inference.preprocessConcurrency,
      preprocessPool: context.preprocessPool,
      exactResizeMaxPixels: inference.exactResizeMaxPixels,
      textCacheSize: caches.textEmbeddings,
      imageCacheSize: caches.imageEmbeddings,
      imageLimits,
      logitScale: inference.logitScale,
      modelScoring: modelOptions,
      known: known === undefined ? undefined : { logitScale: known.logitScale, logitBias: known.logitBias },
      logger: logger.child({ model: name }),
      onBatch: (kind, size, durationMs) => events.emit('batchCompleted', { model: name, kind, size, durationMs }),
      onCacheLookup: (kind, hit) => events.emit('cacheLookup', { model: name, kind, hit }),
    });
    logger.info(
      {
        model: name,
        ms: Math.round(performance.now() - started),
        layout: loaded.layout,
        scoring: loaded.scoring.kind,
        logitScale: loaded.logitScale,
        logitScaleSource: loaded.logitScaleSource,
        ...(loaded.logitBias === undefined
          ? {}
          : { logitBias: loaded.logitBias, logitBiasSource: loaded.logitBiasSource }),
      },
      'model ready',
    );
    return loaded;
  } catch (error) {
    logger.error({ model: name, err: error }, 'model failed to load');
    throw error;
  }
}

function sessionOptionsOf(inference: InferenceSettings): OnnxSessionOptions {
  return {
    intraOpThreads: inference.intraOpThreads,
    graphOptimizationLevel: inference.graphOptimizationLevel,
    allowSpinning: inference.allowSpinning,
    executionProviders: inference.executionProviders,
    telemetry: inference.ortTelemetry,
  };
}
