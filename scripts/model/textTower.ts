/**
 * HF `CLIPTextModelWithProjection` as ONNX ops, with a dynamic sequence length: position embeddings
 * and the causal mask are sliced to the runtime length, so a batch can run at its longest real
 * prompt instead of a padded 77.
 */
import { attr, DataType, floatTensor, type GraphBuilder } from './onnxGraph.js';
import { weight, type ClipWeights } from './clipWeights.js';
import { addEncoderLayer, layerNorm, linear } from './encoderLayer.js';
import { type ClipPreset } from './presets.js';

/**
 * Added to masked attention scores. Finite, unlike -inf, so even a row with every key masked
 * (a left-padded prompt) gives a uniform softmax instead of NaN; exp(-1e9) is exactly 0 in float32.
 */
export const MASKED_SCORE = -1e9;

function causalMask(contextLength: number): Float32Array {
  const mask = new Float32Array(contextLength * contextLength);
  for (let row = 0; row < contextLength; row++) {
    for (let column = row + 1; column < contextLength; column++) mask[row * contextLength + column] = MASKED_SCORE;
  }
  return mask;
}

/**
 * Appends the text tower reading `inputIds` and `attentionMask` (both int64 [batch, sequence], sequence ≤ context).
 * Pools at each row's first `<|endoftext|>`, found as argmax(input_ids): 49407 is the largest id and
 * ArgMax returns the first maximum, as HF's CLIPTextTransformer does.
 * @returns the name of the unnormalised text embeddings [batch, projectionDim].
 */
export function addTextTower(
  builder: GraphBuilder,
  weights: ClipWeights,
  preset: ClipPreset,
  inputIds: string,
  attentionMask: string,
): string {
  const { text } = preset;
  const context = text.maxPositionEmbeddings;
  return builder.scoped('text_model', () => {
    const tokens = builder.op('Gather', [builder.initializer(weight(weights, 'text_model.embeddings.token_embedding.weight')), inputIds], [attr.int('axis', 0)]);
    const sequence = builder.op('Shape', [inputIds], [attr.int('start', 1), attr.int('end', 2)]);
    const positions = builder.op('Slice', [
      builder.initializer(weight(weights, 'text_model.embeddings.position_embedding.weight')),
      builder.int64([0]),
      sequence,
      builder.int64([0]),
    ]);
    let hidden = builder.op('Add', [tokens, positions]);

    const causal = builder.op('Slice', [
      builder.initializer(floatTensor('text_model.causal_mask', [context, context], causalMask(context))),
      builder.int64([0, 0]),
      builder.op('Concat', [sequence, sequence], [attr.int('axis', 0)]),
      builder.int64([0, 1]),
    ]);
    // (1 - mask) · MASKED_SCORE: 0 for real tokens, MASKED_SCORE for padding keys → [B, 1, 1, S].
    const keep = builder.op('Cast', [attentionMask], [attr.int('to', DataType.Float)]);
    const padding = builder.op('Mul', [builder.op('Sub', [builder.float([1], []), keep]), builder.float([MASKED_SCORE], [])]);
    const mask = builder.op('Add', [causal, builder.op('Unsqueeze', [padding, builder.int64([1, 2])])]);

    for (let layer = 0; layer < text.numHiddenLayers; layer++) {
      hidden = addEncoderLayer({ builder, weights, prefix: `text_model.encoder.layers.${layer}`, shape: text, hidden, attentionMask: mask });
    }
    hidden = layerNorm(builder, weights, 'text_model.final_layer_norm', hidden);

    const endOfText = builder.op('ArgMax', [builder.op('Cast', [inputIds], [attr.int('to', DataType.Int32)])], [attr.int('axis', 1), attr.int('keepdims', 1)]);
    const pooled = builder.op('GatherND', [hidden, endOfText], [attr.int('batch_dims', 1)]);
    return linear(builder, weights, 'text_projection', pooled, false);
  });
}
