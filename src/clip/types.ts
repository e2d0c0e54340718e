/**
 * The contract of the clip folder: what the rest of the server may know about models,
 * requests and results. Model JSON arrives in snake_case and becomes these camelCase types
 * at the parse boundary (layouts/hfClip.ts), never deeper.
 */

import type { LoadPolicy, Precision } from '../config.js';

// What CLIP_PRECISION accepts is the setting's vocabulary, so config.ts declares it; the clip folder's contract shows it.
export { PRECISIONS } from '../config.js';
export type { Precision };

/** Where a model's files come from, after a user's string has been resolved. */
export type ModelSource = { kind: 'local'; path: string } | { kind: 'hub'; repo: string; revision: string };

/** `preprocessor_config.json`, parsed. */
export interface PreprocessorConfig {
  doConvertRgb: boolean;
  doResize: boolean;
  /** Target of the shortest edge after resizing, in pixels. */
  shortestEdge: number;
  /** PIL resample filter id (3 = bicubic, 2 = bilinear). */
  resample: number;
  doCenterCrop: boolean;
  cropHeight: number;
  cropWidth: number;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  /**
   * How the image is fitted to the crop, as open_clip's `resize_mode` (immich layout); absent: Hugging Face's
   * CLIPImageProcessor (shortest-edge resize, centre crop at `(size - crop) // 2`). See image/resizeMode.ts.
   */
  resizeMode?: ResizeMode | undefined;
  /** Pad value (0–255, every channel, before normalising) where `longest` leaves borders. @default 0 */
  fillColor?: number | undefined;
}

/**
 * open_clip's `resize_mode`: `shortest` = shortest edge to the size, then centre crop; `squash` = resize to the
 * size ignoring aspect; `longest` = longest edge to the size, then centre pad with `fill_color`.
 */
export type ResizeMode = 'shortest' | 'squash' | 'longest';
export const RESIZE_MODES: readonly ResizeMode[] = ['shortest', 'squash', 'longest'];

/**
 * How cosine similarities become probabilities. `softmax`: over the classes of `scale · cos` (CLIP; rows sum to 1).
 * `sigmoid`: each class on its own, `σ(scale · cos + bias)` (SigLIP; rows do not sum to 1).
 */
export type Scoring =
  { kind: 'softmax'; logitScale: number } | { kind: 'sigmoid'; logitScale: number; logitBias: number };
export type ScoringKind = Scoring['kind'];

/** Where a model's scale (and bias) came from, as logged and shown. */
export type ScoringSource = 'setting' | 'model-option' | 'model' | 'catalogue' | 'default';

/** `config.json` (HF CLIPConfig), parsed: only what the server needs. */
export interface ClipModelConfig {
  projectionDim: number;
  /** Text context length (text_config.max_position_embeddings), 77 for CLIP. */
  contextLength: number;
  imageSize: number;
  /** `logit_scale_init_value`: NOT the trained scale; kept only for reporting. */
  logitScaleInitValue: number | undefined;
}

/** Per-job prompt settings (GraphQL `ClassifyInput.config`, REST `config`). */
export interface PromptConfig {
  /** A string with `{}` where the class name goes; `"{}"` means the class text verbatim. */
  promptTemplate?: string;
  /** Several templates: their normalised text embeddings are averaged per class (OpenAI's ensemble). */
  promptTemplates?: string[];
}

export const DEFAULT_PROMPT_TEMPLATE = 'a photo of a {}.';

/** The keys of {@link PromptConfig}: what a job's `config` may hold. */
export const PROMPT_CONFIG_KEYS: readonly (keyof PromptConfig)[] = ['promptTemplate', 'promptTemplates'];

/** What a model looks like from outside, e.g. for GraphQL `models`. */
/**
 * Where a model is in its lifecycle (see ModelSlot): never started (`uninitialized`, a lazy model), fetching its files
 * (`starting`), loading its sessions (`loading`), `ready`, releasing them (`stopping`), `stopped`, or `failed` to load.
 */
export type ModelStatus = 'uninitialized' | 'starting' | 'loading' | 'ready' | 'stopping' | 'stopped' | 'failed';

export interface ModelInfo {
  name: string;
  /** The user's source string: catalogue name, hub id (`owner/name@rev`) or local path. */
  source: string;
  precision: Precision;
  status: ModelStatus;
  /** When the model is loaded: at start (`eager`) or on its first job (`lazy`). */
  load?: LoadPolicy;
  /**
   * Bytes of ONNX graph the model's sessions hold (each image-tower replica counted), from the last load; null until
   * loaded. The weights dominate a session's memory; ONNX Runtime's working buffers come on top.
   */
  sessionBytes?: number | null;
  /** Size of the joint embedding space; null until loaded. */
  embeddingSize: number | null;
  contextLength: number | null;
  imageSize: number | null;
  logitScale: number | null;
  /** `softmax` (CLIP) or `sigmoid` (SigLIP); null until loaded. */
  scoring?: ScoringKind | null;
  /** The sigmoid's bias (SigLIP); null for softmax models and until loaded. */
  logitBias?: number | null;
  /** The file layout it was loaded from (`hf-clip`, `hf-siglip`, `immich`); null until loaded. */
  layout?: string | null;
  /** Why loading failed, when status is 'failed'. */
  error: string | null;
}

/** One classification request: raw encoded image bytes (already decoded from base64) against labels. */
export interface ClassifyRequest {
  model: string;
  images: Uint8Array[];
  labels: string[];
  prompt: PromptConfig;
  signal?: AbortSignal;
}

/** Per image (in request order), the probability of each label (in label order); each row sums to 1 for softmax models. */
export interface ClassifyResult {
  probabilities: number[][];
}

/** Per-image limits enforced before decoding. */
export interface ImageLimits {
  /** Largest encoded image, in bytes. */
  maxBytes: number;
  /** Largest width × height; checked from the header, before any pixel is decoded (decompression bombs). */
  maxPixels: number;
}

/** What a header-only inspection of an image tells. */
export interface ImageInfo {
  format: string;
  width: number;
  height: number;
  /** Frames of an animated image (only the first is classified). */
  pages?: number;
}

/** Image embeddings: raw encoded image bytes (already decoded from base64). */
export interface EmbedImagesRequest {
  model: string;
  images: Uint8Array[];
  signal?: AbortSignal;
}

/**
 * Text embeddings. Unlike classification, a text is embedded verbatim unless `prompt` names a template
 * (`promptTemplate`, or `promptTemplates` averaged as an ensemble).
 */
export interface EmbedTextsRequest {
  model: string;
  texts: string[];
  prompt: PromptConfig;
  signal?: AbortSignal;
}

/** One L2-normalised vector per input, in input order, each `embeddingSize` long (JSON-ready numbers). */
export interface EmbeddingVectors {
  embeddings: number[][];
  /** Text embeddings only: the token ids the text tower read for all the texts (special tokens included, after truncation). */
  tokens?: number;
}

/** A zero-shot classifier's weights to build: every label under every template (see zeroShotWeights.ts). */
export interface BuildWeightsRequest {
  model: string;
  labels: readonly string[];
  templates: readonly string[];
  /** Called as groups of prompts are embedded, with the number embedded so far. */
  onProgress?: (builtPrompts: number) => void;
  signal?: AbortSignal;
}

/** Images scored against built weights (one unit row per class) instead of labels. */
export interface ClassifyWithWeightsRequest {
  model: string;
  images: Uint8Array[];
  weights: readonly Float32Array[];
  signal?: AbortSignal;
}
