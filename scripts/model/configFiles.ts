/**
 * `config.json` (HF CLIPConfig) and `preprocessor_config.json` (CLIPImageProcessor), with the field
 * names and values of openai/clip-vit-base-patch32 and the shapes of the chosen preset.
 */
import { type ClipPreset, type TransformerShape } from './presets.js';

/** config.json's `logit_scale_init_value`: the untrained init, NOT the scale the graphs hold (ln 100). */
export const LOGIT_SCALE_INIT_VALUE = 2.6592;

export const CLIP_IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_IMAGE_STD = [0.26862954, 0.26130258, 0.27577711] as const;

function towerConfig(shape: TransformerShape, projectionDim: number): Record<string, unknown> {
  return {
    attention_dropout: 0.0,
    dropout: 0.0,
    hidden_act: 'quick_gelu',
    hidden_size: shape.hiddenSize,
    initializer_factor: 1.0,
    initializer_range: 0.02,
    intermediate_size: shape.intermediateSize,
    layer_norm_eps: 1e-5,
    num_attention_heads: shape.numAttentionHeads,
    num_hidden_layers: shape.numHiddenLayers,
    projection_dim: projectionDim,
  };
}

/** `config.json`; `generator` records what wrote it (HF ignores unknown keys). */
export function configJson(preset: ClipPreset, generator: Record<string, unknown>): string {
  const { text, vision, projectionDim } = preset;
  const config = {
    _name_or_path: `random-clip-${preset.name}`,
    architectures: ['CLIPModel'],
    initializer_factor: 1.0,
    logit_scale_init_value: LOGIT_SCALE_INIT_VALUE,
    model_type: 'clip',
    projection_dim: projectionDim,
    text_config: {
      ...towerConfig(text, projectionDim),
      bos_token_id: 49406,
      eos_token_id: 49407,
      pad_token_id: 1,
      max_position_embeddings: text.maxPositionEmbeddings,
      model_type: 'clip_text_model',
      vocab_size: text.vocabSize,
    },
    torch_dtype: 'float32',
    transformers_version: '4.48.0',
    vision_config: {
      ...towerConfig(vision, projectionDim),
      image_size: vision.imageSize,
      model_type: 'clip_vision_model',
      num_channels: vision.numChannels,
      patch_size: vision.patchSize,
    },
    test_model: { ...generator, weights: 'random: this model has never been trained' },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** `preprocessor_config.json`: shortest-edge bicubic resize, centre crop, rescale, CLIP mean/std. */
export function preprocessorConfigJson(preset: ClipPreset): string {
  const size = preset.vision.imageSize;
  const config = {
    crop_size: { height: size, width: size },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    feature_extractor_type: 'CLIPFeatureExtractor',
    image_mean: CLIP_IMAGE_MEAN,
    image_processor_type: 'CLIPImageProcessor',
    image_std: CLIP_IMAGE_STD,
    resample: 3,
    rescale_factor: 1 / 255,
    size: { shortest_edge: size },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}
