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

/** Token plus position embeddings of `ids` (int64 [B, S]); `sequence` is S as a 1-element int64 tensor. */
export function embedTokens(
  builder: GraphBuilder,
  weights: ClipWeights,
  ids: string,
): { hidden: string; sequence: string } {
  const tokens = builder.op(
    'Gather',
    [builder.initializer(weight(weights, 'text_model.embeddings.token_embedding.weight')), ids],
    [attr.int('axis', 0)],
  );
  const sequence = builder.op('Shape', [ids], [attr.int('start', 1), attr.int('end', 2)]);
  const positions = builder.op('Slice', [
    builder.initializer(weight(weights, 'text_model.embeddings.position_embedding.weight')),
    builder.int64([0]),
    sequence,
    builder.int64([0]),
  ]);
  return { hidden: builder.op('Add', [tokens, positions]), sequence };
}

/** The causal mask [S, S], sliced from the full context's to the runtime length. */
export function slicedCausalMask(builder: GraphBuilder, contextLength: number, sequence: string): string {
  return builder.op('Slice', [
    builder.initializer(
      floatTensor('text_model.causal_mask', [contextLength, contextLength], causalMask(contextLength)),
    ),
    builder.int64([0, 0]),
    builder.op('Concat', [sequence, sequence], [attr.int('axis', 0)]),
    builder.int64([0, 1]),
  ]);
}

/** (1 - keep) · MASKED_SCORE: 0 for real tokens, MASKED_SCORE for padding keys, as [B, 1, 1, S]. */
export function paddingMask(builder: GraphBuilder, keep: string): string {
  const padding = builder.op('Mul', [
    builder.op('Sub', [builder.float([1], []), keep]),
    builder.float([MASKED_SCORE], []),
  ]);
  return builder.op('Unsqueeze', [padding, builder.int64([1, 2])]);
}

/** Pools at each row's first `<|endoftext|>`: argmax of the ids (49407 is the largest; ArgMax returns the first maximum). */
export function poolAtEndOfText(builder: GraphBuilder, hidden: string, ids: string): string {
  const endOfText = builder.op(
    'ArgMax',
    [builder.op('Cast', [ids], [attr.int('to', DataType.Int32)])],
    [attr.int('axis', 1), attr.int('keepdims', 1)],
  );
  return builder.op('GatherND', [hidden, endOfText], [attr.int('batch_dims', 1)]);
}

/**
 * Appends the text tower reading `inputIds` and `attentionMask` (both int64 [batch, sequence], sequence ≤ context).
 * Pools at each row's first `<|endoftext|>`, as HF's CLIPTextTransformer does.
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
  return builder.scoped('text_model', () => {
    let { hidden, sequence } = embedTokens(builder, weights, inputIds);
    const causal = slicedCausalMask(builder, text.maxPositionEmbeddings, sequence);
    const keep = builder.op('Cast', [attentionMask], [attr.int('to', DataType.Float)]);
    const mask = builder.op('Add', [causal, paddingMask(builder, keep)]);

    for (let layer = 0; layer < text.numHiddenLayers; layer++) {
      hidden = addEncoderLayer({
        builder,
        weights,
        prefix: `text_model.encoder.layers.${layer}`,
        shape: text,
        hidden,
        attentionMask: mask,
      });
    }
    hidden = layerNorm(builder, weights, 'text_model.final_layer_norm', hidden);
    return linear(builder, weights, 'text_projection', poolAtEndOfText(builder, hidden, inputIds), false);
  });
}
