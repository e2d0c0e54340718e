/**
 * The pieces both CLIP towers are made of: linear layers, layer norms, quick-GELU and the pre-LN
 * transformer block (HF `CLIPEncoderLayer`), emitted as plain ONNX ops so any runtime can load them.
 */
import { attr, type GraphBuilder } from './onnxGraph.js';
import { weight, type ClipWeights } from './clipWeights.js';
import { type TransformerShape } from './presets.js';

/** CLIP's layer_norm_eps. */
export const LAYER_NORM_EPS = 1e-5;

/** `input · W (+ b)`, W stored [in, out]; the bias is skipped when `withBias` is false (the projections). */
export function linear(
  builder: GraphBuilder,
  weights: ClipWeights,
  prefix: string,
  input: string,
  withBias = true,
): string {
  const product = builder.op('MatMul', [input, builder.initializer(weight(weights, `${prefix}.weight`))]);
  if (!withBias) return product;
  return builder.op('Add', [product, builder.initializer(weight(weights, `${prefix}.bias`))]);
}

/** LayerNormalization over the last axis (opset 17). */
export function layerNorm(builder: GraphBuilder, weights: ClipWeights, prefix: string, input: string): string {
  return builder.op(
    'LayerNormalization',
    [
      input,
      builder.initializer(weight(weights, `${prefix}.weight`)),
      builder.initializer(weight(weights, `${prefix}.bias`)),
    ],
    [attr.int('axis', -1), attr.float('epsilon', LAYER_NORM_EPS)],
  );
}

/** CLIP's activation, x · sigmoid(1.702 x), written the way ORT's QuickGelu fusion recognises. */
export function quickGelu(builder: GraphBuilder, input: string): string {
  const gate = builder.op('Sigmoid', [builder.op('Mul', [input, builder.float([1.702], [])])]);
  return builder.op('Mul', [input, gate]);
}

export interface EncoderLayerArgs {
  builder: GraphBuilder;
  weights: ClipWeights;
  /** State-dict prefix, e.g. `vision_model.encoder.layers.3`. */
  prefix: string;
  shape: TransformerShape;
  /** Residual stream [batch, sequence, hidden]. */
  hidden: string;
  /** Additive attention mask broadcastable to [batch, heads, sequence, sequence] (0 keep, large negative drop). */
  attentionMask?: string;
}

function splitHeads(builder: GraphBuilder, input: string, shape: TransformerShape, perm: number[]): string {
  const headDim = shape.hiddenSize / shape.numAttentionHeads;
  const heads = builder.op('Reshape', [input, builder.int64([0, 0, shape.numAttentionHeads, headDim])]);
  return builder.op('Transpose', [heads], [attr.ints('perm', perm)]);
}

function selfAttention(args: EncoderLayerArgs, input: string): string {
  const { builder, weights, prefix, shape } = args;
  const headDim = shape.hiddenSize / shape.numAttentionHeads;
  const query = builder.op('Mul', [
    linear(builder, weights, `${prefix}.self_attn.q_proj`, input),
    builder.float([headDim ** -0.5], []),
  ]);
  const key = linear(builder, weights, `${prefix}.self_attn.k_proj`, input);
  const value = linear(builder, weights, `${prefix}.self_attn.v_proj`, input);
  let scores = builder.op('MatMul', [
    splitHeads(builder, query, shape, [0, 2, 1, 3]),
    splitHeads(builder, key, shape, [0, 2, 3, 1]),
  ]);
  if (args.attentionMask !== undefined) scores = builder.op('Add', [scores, args.attentionMask]);
  const probabilities = builder.op('Softmax', [scores], [attr.int('axis', -1)]);
  const context = builder.op('MatMul', [probabilities, splitHeads(builder, value, shape, [0, 2, 1, 3])]);
  const merged = builder.op('Reshape', [
    builder.op('Transpose', [context], [attr.ints('perm', [0, 2, 1, 3])]),
    builder.int64([0, 0, shape.hiddenSize]),
  ]);
  return linear(builder, weights, `${prefix}.self_attn.out_proj`, merged);
}

/** One pre-LN block: x + attn(LN1 x), then x + MLP(LN2 x). Returns the new residual stream. */
export function addEncoderLayer(args: EncoderLayerArgs): string {
  const { builder, weights, prefix, shape } = args;
  if (shape.hiddenSize % shape.numAttentionHeads !== 0) {
    throw new RangeError(
      `Expected hiddenSize divisible by numAttentionHeads, got ${shape.hiddenSize} and ${shape.numAttentionHeads}`,
    );
  }
  return builder.scoped(prefix, () => {
    const attended = builder.op('Add', [
      args.hidden,
      selfAttention(args, layerNorm(builder, weights, `${prefix}.layer_norm1`, args.hidden)),
    ]);
    const normed = layerNorm(builder, weights, `${prefix}.layer_norm2`, attended);
    const activated = quickGelu(builder, linear(builder, weights, `${prefix}.mlp.fc1`, normed));
    return builder.op('Add', [attended, linear(builder, weights, `${prefix}.mlp.fc2`, activated)]);
  });
}
