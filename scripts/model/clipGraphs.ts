/**
 * The three graphs of a CLIP ONNX export in the HF hub layout: the two towers
 * (`vision_model.onnx`, `text_model.onnx`) and the combined `model.onnx`, all built over one
 * set of weights so they agree to float rounding.
 */
import { attr, DataType, GraphBuilder, type Graph } from './onnxGraph.js';
import { weight, type ClipWeights } from './clipWeights.js';
import { type ClipPreset } from './presets.js';
import { addTextTower } from './textTower.js';
import { addVisionTower } from './visionTower.js';

/** ONNX opset of every graph: 17 is the first with LayerNormalization. */
export const OPSET_VERSION = 17;
/** The IR version that goes with opset 17. */
export const IR_VERSION = 8;

export function pixelValuesInput(builder: GraphBuilder, preset: ClipPreset, batch: string): string {
  const { numChannels, imageSize } = preset.vision;
  return builder.input({
    name: 'pixel_values',
    elemType: DataType.Float,
    shape: [batch, numChannels, imageSize, imageSize],
  });
}

export function textInput(builder: GraphBuilder, name: 'input_ids' | 'attention_mask', batch: string): string {
  return builder.input({ name, elemType: DataType.Int64, shape: [batch, 'sequence_length'] });
}

/** `vision_model.onnx`: pixel_values [batch_size, 3, H, W] → image_embeds [batch_size, projection_dim], unnormalised. */
export function buildVisionGraph(preset: ClipPreset, weights: ClipWeights): Graph {
  const builder = new GraphBuilder('clip_vision_model');
  const embeds = addVisionTower(builder, weights, preset, pixelValuesInput(builder, preset, 'batch_size'));
  builder.op('Identity', [embeds], [], { outputs: ['image_embeds'] });
  builder.output({ name: 'image_embeds', elemType: DataType.Float, shape: ['batch_size', preset.projectionDim] });
  return builder.build();
}

/** `text_model.onnx`: input_ids, attention_mask [batch_size, sequence_length] → text_embeds [batch_size, projection_dim], unnormalised. */
export function buildTextGraph(preset: ClipPreset, weights: ClipWeights): Graph {
  const builder = new GraphBuilder('clip_text_model');
  const inputIds = textInput(builder, 'input_ids', 'batch_size');
  const attentionMask = textInput(builder, 'attention_mask', 'batch_size');
  const embeds = addTextTower(builder, weights, preset, inputIds, attentionMask);
  builder.op('Identity', [embeds], [], { outputs: ['text_embeds'] });
  builder.output({ name: 'text_embeds', elemType: DataType.Float, shape: ['batch_size', preset.projectionDim] });
  return builder.build();
}

/** `output` = `input` / ‖input‖ along the last axis. */
export function l2Normalize(builder: GraphBuilder, input: string, output: string): string {
  const norm = builder.op('ReduceL2', [input], [attr.ints('axes', [-1]), attr.int('keepdims', 1)]);
  return builder.op('Div', [input, norm], [], { outputs: [output] });
}

/**
 * `model.onnx` (HF CLIPModel): L2-normalised `text_embeds` and `image_embeds`, and
 * logits = exp(logit_scale) · image · textᵀ, with `logit_scale` a scalar initializer holding the trained log scale.
 */
export function buildCombinedGraph(preset: ClipPreset, weights: ClipWeights): Graph {
  const builder = new GraphBuilder('clip_model');
  // HF's input order: input_ids, pixel_values, attention_mask.
  const inputIds = textInput(builder, 'input_ids', 'text_batch_size');
  const pixelValues = pixelValuesInput(builder, preset, 'image_batch_size');
  const attentionMask = textInput(builder, 'attention_mask', 'text_batch_size');
  const textEmbeds = l2Normalize(
    builder,
    addTextTower(builder, weights, preset, inputIds, attentionMask),
    'text_embeds',
  );
  const imageEmbeds = l2Normalize(builder, addVisionTower(builder, weights, preset, pixelValues), 'image_embeds');
  addCombinedOutputs(builder, preset, {
    textEmbeds,
    imageEmbeds,
    logScale: builder.initializer(weight(weights, 'logit_scale')),
  });
  return builder.build();
}

/**
 * The logits and outputs of a combined graph (HF CLIPModel and SiglipModel) over its L2-normalised `text_embeds` and
 * `image_embeds` (see {@link l2Normalize}): logits_per_text = exp(logScale) · text · imageᵀ (+ bias, SigLIP's), and
 * logits_per_image its transpose.
 */
export function addCombinedOutputs(
  builder: GraphBuilder,
  preset: ClipPreset,
  towers: { textEmbeds: string; imageEmbeds: string; logScale: string; bias?: string },
): void {
  const { textEmbeds, imageEmbeds } = towers;
  const scale = builder.op('Exp', [towers.logScale]);
  const similarity = builder.op('MatMul', [
    textEmbeds,
    builder.op('Transpose', [imageEmbeds], [attr.ints('perm', [1, 0])]),
  ]);
  if (towers.bias === undefined) {
    builder.op('Mul', [similarity, scale], [], { outputs: ['logits_per_text'] });
  } else {
    builder.op('Add', [builder.op('Mul', [similarity, scale]), towers.bias], [], { outputs: ['logits_per_text'] });
  }
  builder.op('Transpose', ['logits_per_text'], [attr.ints('perm', [1, 0])], { outputs: ['logits_per_image'] });
  builder.output({
    name: 'logits_per_image',
    elemType: DataType.Float,
    shape: ['image_batch_size', 'text_batch_size'],
  });
  builder.output({ name: 'logits_per_text', elemType: DataType.Float, shape: ['text_batch_size', 'image_batch_size'] });
  builder.output({ name: 'text_embeds', elemType: DataType.Float, shape: ['text_batch_size', preset.projectionDim] });
  builder.output({ name: 'image_embeds', elemType: DataType.Float, shape: ['image_batch_size', preset.projectionDim] });
}
