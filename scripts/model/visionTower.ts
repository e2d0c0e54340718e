/**
 * HF `CLIPVisionModelWithProjection` as ONNX ops: patch embedding, class token, position
 * embeddings, pre-layernorm, pre-LN encoder, class-token pooling, post-layernorm, projection.
 */
import { attr, type GraphBuilder } from './onnxGraph.js';
import { weight, type ClipWeights } from './clipWeights.js';
import { addEncoderLayer, layerNorm, linear } from './encoderLayer.js';
import { type ClipPreset } from './presets.js';

/**
 * Appends the image tower reading `pixelValues` [batch, 3, imageSize, imageSize].
 * @returns the name of the unnormalised image embeddings [batch, projectionDim].
 */
export function addVisionTower(
  builder: GraphBuilder,
  weights: ClipWeights,
  preset: ClipPreset,
  pixelValues: string,
): string {
  const { vision } = preset;
  const d = vision.hiddenSize;
  return builder.scoped('vision_model', () => {
    const patches = builder.op(
      'Conv',
      [pixelValues, builder.initializer(weight(weights, 'vision_model.embeddings.patch_embedding.weight'))],
      [
        attr.ints('kernel_shape', [vision.patchSize, vision.patchSize]),
        attr.ints('strides', [vision.patchSize, vision.patchSize]),
      ],
    );
    // [B, D, g, g] → [B, g·g, D], row-major over the grid like torch's flatten(2).transpose(1, 2).
    const tokens = builder.op(
      'Transpose',
      [builder.op('Reshape', [patches, builder.int64([0, d, -1])])],
      [attr.ints('perm', [0, 2, 1])],
    );
    const batch = builder.op('Shape', [pixelValues], [attr.int('start', 0), attr.int('end', 1)]);
    const classShape = builder.op('Concat', [batch, builder.int64([1, d])], [attr.int('axis', 0)]);
    const classToken = builder.op('Expand', [
      builder.initializer(weight(weights, 'vision_model.embeddings.class_embedding')),
      classShape,
    ]);
    const embedded = builder.op('Add', [
      builder.op('Concat', [classToken, tokens], [attr.int('axis', 1)]),
      builder.initializer(weight(weights, 'vision_model.embeddings.position_embedding.weight')),
    ]);
    let hidden = layerNorm(builder, weights, 'vision_model.pre_layrnorm', embedded);
    for (let layer = 0; layer < vision.numHiddenLayers; layer++) {
      hidden = addEncoderLayer({
        builder,
        weights,
        prefix: `vision_model.encoder.layers.${layer}`,
        shape: vision,
        hidden,
      });
    }
    const pooled = builder.op('Gather', [hidden, builder.int64([0], [])], [attr.int('axis', 1)]);
    const normed = layerNorm(builder, weights, 'vision_model.post_layernorm', pooled);
    return linear(builder, weights, 'visual_projection', normed, false);
  });
}
