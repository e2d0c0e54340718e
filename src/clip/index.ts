/** The clip folder's public surface: other folders import from here, never from its modules. */
export { ClipService } from './ClipService.js';
export type { ClipServiceOptions, ClipEvents, HubSettings, InferenceSettings } from './ClipService.js';
export type { GraphOptimizationLevel } from './runtime/onnx.js';
export { PRECISIONS, DEFAULT_PROMPT_TEMPLATE } from './types.js';
export { VERBATIM_TEMPLATE } from './embeddings.js';
export type {
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
