/**
 * Model shapes the generator can write, and the parameter and FLOP counts they imply.
 * Field names follow HF CLIPConfig's text_config / vision_config.
 */

export interface TransformerShape {
  hiddenSize: number;
  intermediateSize: number;
  numAttentionHeads: number;
  numHiddenLayers: number;
}

export interface VisionShape extends TransformerShape {
  imageSize: number;
  patchSize: number;
  numChannels: number;
}

export interface TextShape extends TransformerShape {
  vocabSize: number;
  /** Context length: 77 for CLIP. */
  maxPositionEmbeddings: number;
}

export interface ClipPreset {
  name: PresetName;
  vision: VisionShape;
  text: TextShape;
  projectionDim: number;
}

export type PresetName = 'tiny' | 'vit-b-32' | 'slow';
export const PRESET_NAMES: readonly PresetName[] = ['tiny', 'vit-b-32', 'slow'];

/** CLIP's BPE vocabulary: 256 bytes, 256 bytes + `</w>`, 48,894 merges, 2 special tokens. */
export const CLIP_VOCAB_SIZE = 49408;
export const CLIP_CONTEXT_LENGTH = 77;

export const PRESETS: Readonly<Record<PresetName, ClipPreset>> = {
  // Unit-test size: the real vocabulary and context, everything else as small as multi-head attention allows.
  tiny: {
    name: 'tiny',
    vision: {
      hiddenSize: 32,
      intermediateSize: 64,
      numAttentionHeads: 2,
      numHiddenLayers: 2,
      imageSize: 224,
      patchSize: 32,
      numChannels: 3,
    },
    text: {
      hiddenSize: 32,
      intermediateSize: 64,
      numAttentionHeads: 2,
      numHiddenLayers: 2,
      vocabSize: CLIP_VOCAB_SIZE,
      maxPositionEmbeddings: CLIP_CONTEXT_LENGTH,
    },
    projectionDim: 16,
  },
  // openai/clip-vit-base-patch32.
  'vit-b-32': {
    name: 'vit-b-32',
    vision: {
      hiddenSize: 768,
      intermediateSize: 3072,
      numAttentionHeads: 12,
      numHiddenLayers: 12,
      imageSize: 224,
      patchSize: 32,
      numChannels: 3,
    },
    text: {
      hiddenSize: 512,
      intermediateSize: 2048,
      numAttentionHeads: 8,
      numHiddenLayers: 12,
      vocabSize: CLIP_VOCAB_SIZE,
      maxPositionEmbeddings: CLIP_CONTEXT_LENGTH,
    },
    projectionDim: 512,
  },
  // Slow by design, small on disk: an image tower of 2.8 GFLOP per image (a third of ViT-B/32's; attention over 785
  // tokens of 8 px patches) in 2.6 MB of weights that load in a moment, beside tiny's text tower. For tests where an
  // inference run must take a while but a model of real size would only add minutes of loading.
  slow: {
    name: 'slow',
    vision: {
      hiddenSize: 64,
      intermediateSize: 256,
      numAttentionHeads: 2,
      numHiddenLayers: 12,
      imageSize: 224,
      patchSize: 8,
      numChannels: 3,
    },
    text: {
      hiddenSize: 32,
      intermediateSize: 64,
      numAttentionHeads: 2,
      numHiddenLayers: 2,
      vocabSize: CLIP_VOCAB_SIZE,
      maxPositionEmbeddings: CLIP_CONTEXT_LENGTH,
    },
    projectionDim: 16,
  },
};

export function isPresetName(value: string): value is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(value);
}

/** Parameter counts, split the way HF reports them (`vision_model` and `visual_projection` are separate modules). */
export interface ParameterCounts {
  visionModel: number;
  visualProjection: number;
  textModel: number;
  textProjection: number;
  /** `vision_model` + `visual_projection`: what "the image tower" means in our benchmarks (87,849,216 for ViT-B/32). */
  imageTower: number;
  /** `text_model` + `text_projection`. */
  textTower: number;
  /** Everything in CLIPModel, including the scalar `logit_scale` (151,277,313 for ViT-B/32). */
  total: number;
}

function encoderParameters(shape: TransformerShape): number {
  const d = shape.hiddenSize;
  const attention = 4 * (d * d + d);
  const mlp = d * shape.intermediateSize + shape.intermediateSize + shape.intermediateSize * d + d;
  const layerNorms = 2 * 2 * d;
  return shape.numHiddenLayers * (attention + mlp + layerNorms);
}

export function countParameters(preset: ClipPreset): ParameterCounts {
  const { vision, text, projectionDim } = preset;
  const patches = (vision.imageSize / vision.patchSize) ** 2;
  const visionModel =
    vision.hiddenSize * vision.numChannels * vision.patchSize ** 2 + // patch embedding (no bias)
    vision.hiddenSize + // class embedding
    (patches + 1) * vision.hiddenSize + // position embedding
    2 * vision.hiddenSize + // pre_layrnorm
    encoderParameters(vision) +
    2 * vision.hiddenSize; // post_layernorm
  const textModel =
    text.vocabSize * text.hiddenSize +
    text.maxPositionEmbeddings * text.hiddenSize +
    encoderParameters(text) +
    2 * text.hiddenSize;
  const visualProjection = vision.hiddenSize * projectionDim;
  const textProjection = text.hiddenSize * projectionDim;
  return {
    visionModel,
    visualProjection,
    textModel,
    textProjection,
    imageTower: visionModel + visualProjection,
    textTower: textModel + textProjection,
    total: visionModel + visualProjection + textModel + textProjection + 1,
  };
}

/** Floating-point operations (2 per multiply-add) of one image through the image tower, matrix products only. */
export function imageTowerFlops(preset: ClipPreset): number {
  const { vision, projectionDim } = preset;
  const d = vision.hiddenSize;
  const patches = (vision.imageSize / vision.patchSize) ** 2;
  const tokens = patches + 1;
  const patchEmbedding = patches * d * vision.numChannels * vision.patchSize ** 2;
  const perLayer = tokens * 4 * d * d + 2 * tokens * tokens * d + tokens * 2 * d * vision.intermediateSize;
  return 2 * (patchEmbedding + vision.numHiddenLayers * perLayer + d * projectionDim);
}
