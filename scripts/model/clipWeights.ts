/**
 * Deterministic random CLIP weights, named as in HF's CLIPModel state dict.
 *
 * Scales follow HF's `CLIPPreTrainedModel._init_weights` (std 0.02 embeddings, attention and MLP
 * weights scaled by width and depth, layer norms 1/0), so activations stay well-scaled through 12
 * layers. Linear weights are stored transposed, [in, out], the layout torch.onnx gives MatMul
 * initializers. Linear biases get a small random value instead of HF's zeros, so a graph that drops
 * or mixes up a bias changes the output and a test can notice.
 */
import { createRng, fillNormal } from './rng.js';
import { floatTensor, type Tensor } from './onnxGraph.js';
import { type ClipPreset, type TransformerShape } from './presets.js';

/** Weight tensors by HF state-dict name. */
export type ClipWeights = ReadonlyMap<string, Tensor>;

/** The trained logit scale of OpenAI CLIP, ln(100): deliberately not config.json's init value 2.6592. */
export const TRAINED_LOGIT_SCALE = Math.log(100);

/** Std of the random linear biases (HF initialises them to 0). */
const BIAS_STD = 0.02;

/** Called as weights are drawn: parameters done so far and in all. */
export type WeightProgress = (doneParameters: number, totalParameters: number) => void;

interface WeightSpec {
  name: string;
  dims: number[];
  init: { kind: 'normal'; std: number } | { kind: 'constant'; value: number };
}

function layerNormSpecs(prefix: string, width: number): WeightSpec[] {
  return [
    { name: `${prefix}.weight`, dims: [width], init: { kind: 'constant', value: 1 } },
    { name: `${prefix}.bias`, dims: [width], init: { kind: 'constant', value: 0 } },
  ];
}

function linearSpecs(prefix: string, inFeatures: number, outFeatures: number, std: number): WeightSpec[] {
  return [
    { name: `${prefix}.weight`, dims: [inFeatures, outFeatures], init: { kind: 'normal', std } },
    { name: `${prefix}.bias`, dims: [outFeatures], init: { kind: 'normal', std: BIAS_STD } },
  ];
}

function encoderSpecs(prefix: string, shape: TransformerShape): WeightSpec[] {
  const d = shape.hiddenSize;
  const inProjStd = d ** -0.5 * (2 * shape.numHiddenLayers) ** -0.5;
  const outProjStd = d ** -0.5;
  const fcStd = (2 * d) ** -0.5;
  const specs: WeightSpec[] = [];
  for (let layer = 0; layer < shape.numHiddenLayers; layer++) {
    const p = `${prefix}.encoder.layers.${layer}`;
    specs.push(
      ...linearSpecs(`${p}.self_attn.k_proj`, d, d, inProjStd),
      ...linearSpecs(`${p}.self_attn.v_proj`, d, d, inProjStd),
      ...linearSpecs(`${p}.self_attn.q_proj`, d, d, inProjStd),
      ...linearSpecs(`${p}.self_attn.out_proj`, d, d, outProjStd),
      ...layerNormSpecs(`${p}.layer_norm1`, d),
      ...linearSpecs(`${p}.mlp.fc1`, d, shape.intermediateSize, fcStd),
      ...linearSpecs(`${p}.mlp.fc2`, shape.intermediateSize, d, inProjStd),
      ...layerNormSpecs(`${p}.layer_norm2`, d),
    );
  }
  return specs;
}

/** Every parameter of the preset, in HF state-dict order. */
export function clipWeightSpecs(preset: ClipPreset): WeightSpec[] {
  const { text, vision, projectionDim } = preset;
  const patches = (vision.imageSize / vision.patchSize) ** 2;
  return [
    { name: 'logit_scale', dims: [], init: { kind: 'constant', value: TRAINED_LOGIT_SCALE } },
    {
      name: 'text_model.embeddings.token_embedding.weight',
      dims: [text.vocabSize, text.hiddenSize],
      init: { kind: 'normal', std: 0.02 },
    },
    {
      name: 'text_model.embeddings.position_embedding.weight',
      dims: [text.maxPositionEmbeddings, text.hiddenSize],
      init: { kind: 'normal', std: 0.02 },
    },
    ...encoderSpecs('text_model', text),
    ...layerNormSpecs('text_model.final_layer_norm', text.hiddenSize),
    {
      name: 'vision_model.embeddings.class_embedding',
      dims: [vision.hiddenSize],
      init: { kind: 'normal', std: vision.hiddenSize ** -0.5 },
    },
    {
      name: 'vision_model.embeddings.patch_embedding.weight',
      dims: [vision.hiddenSize, vision.numChannels, vision.patchSize, vision.patchSize],
      init: { kind: 'normal', std: 0.02 },
    },
    {
      name: 'vision_model.embeddings.position_embedding.weight',
      dims: [patches + 1, vision.hiddenSize],
      init: { kind: 'normal', std: 0.02 },
    },
    ...layerNormSpecs('vision_model.pre_layrnorm', vision.hiddenSize),
    ...encoderSpecs('vision_model', vision),
    ...layerNormSpecs('vision_model.post_layernorm', vision.hiddenSize),
    {
      name: 'visual_projection.weight',
      dims: [vision.hiddenSize, projectionDim],
      init: { kind: 'normal', std: vision.hiddenSize ** -0.5 },
    },
    {
      name: 'text_projection.weight',
      dims: [text.hiddenSize, projectionDim],
      init: { kind: 'normal', std: text.hiddenSize ** -0.5 },
    },
  ];
}

/** Draws all weights of `preset` from `seed`; each tensor has its own stream keyed by its name. */
export function createClipWeights(preset: ClipPreset, seed: number, onProgress?: WeightProgress): ClipWeights {
  const specs = clipWeightSpecs(preset);
  const total = specs.reduce((sum, spec) => sum + spec.dims.reduce((a, b) => a * b, 1), 0);
  const weights = new Map<string, Tensor>();
  let done = 0;
  for (const spec of specs) {
    const tensor = floatTensor(spec.name, spec.dims);
    const data = tensor.data as Float32Array;
    if (spec.init.kind === 'constant') data.fill(spec.init.value);
    else fillNormal(data, createRng(seed, spec.name), spec.init.std);
    weights.set(spec.name, tensor);
    done += data.length;
    onProgress?.(done, total);
  }
  return weights;
}

/** The weight `name`, or a clear error naming it (a graph builder asked for a tensor the preset lacks). */
export function weight(weights: ClipWeights, name: string): Tensor {
  const tensor = weights.get(name);
  if (tensor === undefined) throw new Error(`No weight named ${name}`);
  return tensor;
}
