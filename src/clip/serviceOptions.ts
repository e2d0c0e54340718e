/**
 * What a ClipService is built from: the settings it takes (each field points to its setting in config.ts, the one
 * home of every default) and the events it emits.
 */
import type { GraphOptimizationLevel } from '../config.js';
import type { Logger } from '../logger.js';
import type { ExecutionProvider } from './runtime/executionProviders.js';
import type { ImageLimits, ModelInfo, Precision } from './types.js';

export interface HubSettings {
  /** Where downloaded models are kept: see MODEL_CACHE_DIR. */
  cacheDir: string;
  /** The hub (or a mirror): see HF_ENDPOINT. */
  endpoint: string;
  /** Sent as a bearer token, for gated or private repos: see HF_TOKEN. */
  token?: string | undefined;
  /** Use only the cache; never the network: see HF_HUB_OFFLINE. */
  offline: boolean;
  /** Draw a progress bar on stderr while downloading: see DOWNLOAD_PROGRESS. */
  progress: boolean;
}

export interface InferenceSettings {
  /** See MAX_BATCH_SIZE. */
  maxBatchSize: number;
  /** See MAX_BATCH_WAIT_MS. */
  maxBatchWaitMs: number;
  /** See MAX_TEXT_BATCH_SIZE. */
  maxTextBatchSize: number;
  /** Images waiting per model before OVERLOADED: see MAX_QUEUED_IMAGES. */
  maxQueuedImages: number;
  /** ONNX Runtime intra-op threads per model (the text tower's; image-tower replicas share them): see ORT_INTRA_OP_THREADS. */
  intraOpThreads: number;
  /** Copies of the image tower running batches side by side; undefined: decided by the graph (runtime/replicas.ts). See VISION_REPLICAS. */
  visionReplicas?: number | undefined;
  /** See ORT_GRAPH_OPTIMIZATION. */
  graphOptimizationLevel: GraphOptimizationLevel;
  /** Let idle ONNX Runtime threads spin for work: see ORT_ALLOW_SPINNING. */
  allowSpinning: boolean;
  /** ONNX Runtime execution providers, in priority order: see ORT_EXECUTION_PROVIDERS. */
  executionProviders: readonly ExecutionProvider[];
  /** Overrides the trained logit scale of every softmax model: see LOGIT_SCALE; undefined: each model's own. */
  logitScale?: number | undefined;
  /** Whether ONNX Runtime may queue its usage telemetry: see ORT_TELEMETRY. */
  ortTelemetry: boolean;
  /** Images decoded and resized at once: see PREPROCESS_CONCURRENCY. */
  preprocessConcurrency: number;
  /** Worker threads preprocessing images, shared by every model; 0 preprocesses on the event loop. See PREPROCESS_WORKERS. */
  preprocessWorkers: number;
  /** Downscales reading more source pixels than this use libvips instead of the exact PIL port: see EXACT_RESIZE_MAX_PIXELS. */
  exactResizeMaxPixels: number;
}

export interface ClipServiceOptions {
  /** Source of the default model: catalogue name, hub id `owner/name[@rev]`, or a local directory. See CLIP_MODEL. */
  defaultModel: string;
  /** More models; a failure to load one never takes the default down. See CLIP_MODELS. */
  extraModels: { name: string; source: string }[];
  /** See CLIP_PRECISION. */
  precision: Precision;
  hub: HubSettings;
  inference: InferenceSettings;
  /** LRU capacities, in entries: see TEXT_CACHE_SIZE and IMAGE_CACHE_SIZE. */
  caches: { textEmbeddings: number; imageEmbeddings: number };
  /** See MAX_IMAGE_BYTES and MAX_IMAGE_PIXELS. */
  imageLimits: ImageLimits;
  logger: Logger;
  /** Stop a model that ran no inference for this long, in seconds (it starts again on its next job); 0: never. See MODEL_IDLE_STOP_SECONDS. */
  idleStopSeconds: number;
  /** Milliseconds since an epoch, for idle times; tests pass their own. Absent: Date.now. */
  clock?: (() => number) | undefined;
}

export type ClipEvents = {
  batchCompleted: [{ model: string; kind: 'image' | 'text'; size: number; durationMs: number }];
  cacheLookup: [{ model: string; kind: 'image' | 'text'; hit: boolean }];
  modelStatusChanged: [ModelInfo];
};
