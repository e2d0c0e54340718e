/**
 * From the settings to the options of what a role builds: the inference service, the model catalogue, the jobs
 * layer and the image-URL fetcher. The one place that maps Config fields onto those modules' options.
 */
import { ClipService, ModelCatalogue } from '../clip/index.js';
import type { Config } from '../config.js';
import { createImageUrlFetcher, type ImageUrlFetcher } from '../imageUrls/index.js';
import {
  createJobs,
  type JobClassifier,
  type JobClassifiers,
  type JobRunner,
  type Jobs,
  type JobsLimits,
} from '../jobs/index.js';
import type { Logger } from '../logger.js';

/** Names this server to the hosts it fetches image URLs from. */
const IMAGE_URL_USER_AGENT = 'clip-classify-server (image URL fetcher)';

/** The models a role's jobs layer validates with, and, where models run (all, worker), runs jobs on. */
export type JobsModels =
  { role: 'api'; clip: JobClassifier } | { role: 'all' | 'worker'; clip: JobClassifier & JobRunner };

/** The configured models' names and the input checks, with no inference code (ROLE=api). */
export function catalogueFromConfig(config: Config): ModelCatalogue {
  return new ModelCatalogue({
    defaultModel: config.clipModel,
    extraModels: config.clipModels,
    precision: config.clipPrecision,
    imageLimits: { maxBytes: config.maxImageBytes, maxPixels: config.maxImagePixels },
  });
}

/** The inference service of the roles that run models (all, worker). */
export function createClip(config: Config, logger: Logger): ClipService {
  return new ClipService({
    defaultModel: config.clipModel,
    extraModels: config.clipModels.map((model) => ({ name: model.name, source: model.source })),
    precision: config.clipPrecision,
    hub: {
      cacheDir: config.modelCacheDir,
      endpoint: config.hfEndpoint,
      token: config.hfToken,
      offline: config.hfHubOffline,
      progress: config.downloadProgress,
    },
    inference: {
      maxBatchSize: config.maxBatchSize,
      maxBatchWaitMs: config.maxBatchWaitMs,
      maxTextBatchSize: config.maxTextBatchSize,
      maxQueuedImages: config.maxQueuedImages,
      intraOpThreads: config.ortIntraOpThreads,
      visionReplicas: config.visionReplicas,
      graphOptimizationLevel: config.ortGraphOptimization,
      allowSpinning: config.ortAllowSpinning,
      executionProviders: config.ortExecutionProviders,
      ortTelemetry: config.ortTelemetry,
      logitScale: config.logitScale,
      preprocessConcurrency: config.preprocessConcurrency,
      preprocessWorkers: config.preprocessWorkers,
      exactResizeMaxPixels: config.exactResizeMaxPixels,
    },
    caches: { textEmbeddings: config.textCacheSize, imageEmbeddings: config.imageCacheSize },
    imageLimits: { maxBytes: config.maxImageBytes, maxPixels: config.maxImagePixels },
    logger: logger.child({ component: 'clip' }),
    idleStopSeconds: config.modelIdleStopSeconds,
  });
}

/**
 * The jobs layer of a role, with the settings of `config`: in memory, or on Redis when REDIS_URL is set; with the
 * stored classifiers where this process keeps them.
 */
export function jobsFromConfig(config: Config, models: JobsModels, logger: Logger, classifiers?: JobClassifiers): Jobs {
  return createJobs({
    ...models,
    classifiers,
    redis:
      config.redisUrl === undefined
        ? undefined
        : {
            url: config.redisUrl,
            keyPrefix: config.redisKeyPrefix,
            stall: {
              lockDurationMs: config.lockDurationMs,
              stalledIntervalMs: config.stalledIntervalMs,
              maxStalledCount: config.maxStalledCount,
            },
          },
    logger: logger.child({ component: 'jobs' }),
    // Only the API side submits jobs: a worker process never fetches URLs.
    ...(models.role === 'worker' ? {} : { fetchImageUrl: imageUrlFetcherFromConfig(config).fetch }),
    limits: jobsLimitsFromConfig(config),
  });
}

/** The guarded image-URL fetcher of this process (src/imageUrls/), from the IMAGE_URL* settings. */
export function imageUrlFetcherFromConfig(config: Config): ImageUrlFetcher {
  return createImageUrlFetcher({
    mode: config.imageUrls,
    allowedNetworks: config.imageUrlAllowedNetworks,
    maxRedirects: config.imageUrlMaxRedirects,
    timeoutMs: config.imageUrlTimeoutMs,
    maxBytes: config.maxImageBytes,
    concurrency: config.imageUrlConcurrency,
    userAgent: IMAGE_URL_USER_AGENT,
  });
}

/** The jobs layer's limits: the MAX_* settings, MAX_CONCURRENT_JOBS, JOB_TTL_SECONDS and MAX_RETAINED_JOB_BYTES. */
export function jobsLimitsFromConfig(config: Config): JobsLimits {
  return {
    maxImagesPerJob: config.maxImagesPerJob,
    maxClassesPerJob: config.maxClassesPerJob,
    maxClassLength: config.maxClassLength,
    maxTextsPerJob: config.maxTextsPerJob,
    maxTextLength: config.maxTextLength,
    maxPromptsPerJob: config.maxPromptsPerJob,
    maxQueuedJobs: config.maxQueuedJobs,
    maxQueuedImages: config.maxQueuedImages,
    maxPendingImageBytes: config.maxPendingImageBytes,
    maxQueuedJobsPerKey: config.maxQueuedJobsPerKey,
    maxQueuedImagesPerKey: config.maxQueuedImagesPerKey,
    maxConcurrentJobs: config.maxConcurrentJobs,
    ttlSeconds: config.jobTtlSeconds,
    maxRetainedJobBytes: config.maxRetainedJobBytes,
  };
}
