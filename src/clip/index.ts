/** The clip folder's public surface: other folders import from here, never from its modules. */
export { ClipService } from './ClipService.js';
export { ModelCatalogue } from './ModelCatalogue.js';
export type { ConfiguredModel, ModelCatalogueOptions } from './ModelCatalogue.js';
export type { LoadPolicy } from '../config.js';
export type { ClipServiceOptions, ClipEvents, HubSettings, InferenceSettings } from './serviceOptions.js';
export type { GraphOptimizationLevel } from '../config.js';
export {
  EXECUTION_PROVIDERS,
  ExecutionProviderUnavailableError,
  howToInstall,
  INSTALL_CUDA_COMMAND,
} from './runtime/executionProviders.js';
export type { ExecutionProvider, ProviderFailureReason } from './runtime/executionProviders.js';
export { onnxCpuSeconds, onnxThreadCount, onnxThreadCpu } from './runtime/threadCpu.js';
export { HubError } from './hub/index.js';
export type { HubErrorReason } from './hub/index.js';
export { PRECISIONS, DEFAULT_PROMPT_TEMPLATE, PROMPT_CONFIG_KEYS } from './types.js';
export { VERBATIM_TEMPLATE } from './embeddings.js';
export type { LayoutName } from './layouts/index.js';
export { packWeights, unpackWeights } from './zeroShotWeights.js';
export { templatesOf } from './scoring.js';
export type {
  BuildWeightsRequest,
  ClassifyWithWeightsRequest,
  ClassifyRequest,
  ClassifyResult,
  EmbeddingVectors,
  EmbedImagesRequest,
  EmbedTextsRequest,
  ImageInfo,
  ImageLimits,
  ModelInfo,
  ModelStatus,
  ScoringKind,
  Precision,
  PromptConfig,
} from './types.js';
