/**
 * The text towers of immich's exports, as ONNX ops over the same weight names as the CLIP text tower
 * (`text_model.*`, `text_projection`), L2-normalised as `encode_text(normalize=True)` returns them:
 * - `clip`: open_clip's CLIP text transformer: causal mask, pooled at the end token (argmax of the ids).
 * - `xlm-r`: open_clip's HFTextEncoder over XLM-R: bidirectional attention masked where `ids == pad_id` (the graph
 *   builds the mask from the ids, so the pad id matters), mean-pooled over the real tokens, then projected.
 * - `siglip`: open_clip's SigLIP text transformer: no mask at all (padding is attended), pooled at the last position
 *   (so only a prompt padded to exactly L gives the trained embedding).
 * - `mclip`: M-CLIP: like `xlm-r`, but the mask comes from the `attention_mask` input.
 * The encoder blocks are the generator's pre-LN CLIP blocks (encoderLayer.ts) in every case: random weights, the real
 * masking and pooling that decide how padding and batching must be done.
 */
import { attr, DataType, type GraphBuilder } from './onnxGraph.js';
import { type ClipWeights } from './clipWeights.js';
import { addEncoderLayer, layerNorm, linear } from './encoderLayer.js';
import { type ClipPreset } from './presets.js';
import { embedTokens, paddingMask, poolAtEndOfText, slicedCausalMask } from './textTower.js';

export type TextTowerKind = 'clip' | 'xlm-r' | 'siglip' | 'mclip';

export interface TextTowerInputs {
  inputIds: string;
  /** `mclip` only: the int attention mask input. */
  attentionMask?: string;
  /** `xlm-r`: the pad id the mask is built from. */
  padId: number;
}

/** Appends the tower; returns the name of the unnormalised embeddings [batch, projectionDim]. */
export function addOpenClipTextTower(
  builder: GraphBuilder,
  weights: ClipWeights,
  preset: ClipPreset,
  kind: TextTowerKind,
  inputs: TextTowerInputs,
): string {
  const { text } = preset;
  const context = text.maxPositionEmbeddings;
  return builder.scoped('text_model', () => {
    const ids64 = builder.op('Cast', [inputs.inputIds], [attr.int('to', DataType.Int64)]);
    let { hidden, sequence } = embedTokens(builder, weights, ids64);

    // keep: float [B, S], 1 on real tokens (xlm-r: ids != pad; mclip: attention_mask).
    let keep: string | undefined;
    if (kind === 'xlm-r') {
      keep = builder.op(
        'Cast',
        [builder.op('Not', [builder.op('Equal', [ids64, builder.int64([inputs.padId], [])])])],
        [attr.int('to', DataType.Float)],
      );
    } else if (kind === 'mclip') {
      if (inputs.attentionMask === undefined) throw new Error('the mclip text tower needs an attention_mask input');
      keep = builder.op('Cast', [inputs.attentionMask], [attr.int('to', DataType.Float)]);
    }
    let mask: string | undefined;
    if (kind === 'clip') {
      mask = slicedCausalMask(builder, context, sequence);
    } else if (keep !== undefined) {
      mask = paddingMask(builder, keep);
    }
    for (let layer = 0; layer < text.numHiddenLayers; layer++) {
      hidden = addEncoderLayer({
        builder,
        weights,
        prefix: `text_model.encoder.layers.${layer}`,
        shape: text,
        hidden,
        ...(mask === undefined ? {} : { attentionMask: mask }),
      });
    }
    hidden = layerNorm(builder, weights, 'text_model.final_layer_norm', hidden);

    let pooled: string;
    if (kind === 'clip') {
      pooled = poolAtEndOfText(builder, hidden, ids64);
    } else if (kind === 'siglip') {
      const last = builder.op('Sub', [sequence, builder.int64([1])]);
      pooled = builder.op('Squeeze', [builder.op('Gather', [hidden, last], [attr.int('axis', 1)]), builder.int64([1])]);
    } else {
      // Mean over the real tokens: sum(hidden · keep) / sum(keep).
      const weightsPerToken = builder.op('Unsqueeze', [keep!, builder.int64([2])]);
      const summed = builder.op(
        'ReduceSum',
        [builder.op('Mul', [hidden, weightsPerToken]), builder.int64([1])],
        [attr.int('keepdims', 0)],
      );
      const count = builder.op('ReduceSum', [keep!, builder.int64([1])], [attr.int('keepdims', 1)]);
      pooled = builder.op('Div', [summed, count]);
    }
    return linear(builder, weights, 'text_projection', pooled, false);
  });
}
