/**
 * Writes a random-weight model in immich's ONNX layout (the `immich-app/<name>` hub repos), as immich's exporter
 * writes it (`machine-learning/export/immich_model_exporter/exporters/onnx/models/{openclip,mclip}.py`):
 * ```
 * config.json                 open_clip's model config (embed_dim, vision_cfg, text_cfg; init_logit_bias on SigLIP)
 * visual/model.onnx           image float32 [1,3,S,S] → embedding (L2-normalised)
 * visual/preprocess_cfg.json  size, mode, mean, std, interpolation, resize_mode, fill_color
 * textual/model.onnx          text int32 [1,L] → embedding; M-CLIP: input_ids + attention_mask int32 [1,77]
 * textual/tokenizer.json …    the family's tokenizer files (scripts/model/text)
 * ```
 * Batch and length are fixed at 1 and L, as immich exports them; `dynamic` writes the older exports' dynamic batch
 * and `image_embedding`/`text_embedding` outputs instead; `externalData` stores the larger weights as ONNX external
 * data, one file per tensor beside each model.onnx, as torch.onnx.export does for big models.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TokenizerFamily } from '../../src/clip/text/index.js';
import { IR_VERSION, OPSET_VERSION } from './clipGraphs.js';
import { createClipWeights, type ClipWeights } from './clipWeights.js';
import { CLIP_IMAGE_MEAN, CLIP_IMAGE_STD } from './configFiles.js';
import { attr, DataType, GraphBuilder, type Graph } from './onnxGraph.js';
import { addOpenClipTextTower, type TextTowerKind } from './openClipTextTower.js';
import { PRESETS, type ClipPreset } from './presets.js';
import { writeTokenizerFiles } from './text/index.js';
import { addVisionTower } from './visionTower.js';
import { writeOnnxModel, type OnnxModel } from './writeOnnxModel.js';
import type { ResizeMode } from '../../src/clip/types.js';

export type ImmichPresetName = 'openclip-tiny' | 'xlmr-tiny' | 'siglip-tiny' | 'mclip-tiny' | 'openclip-vit-b-32';
export const IMMICH_PRESET_NAMES: readonly ImmichPresetName[] = [
  'openclip-tiny',
  'xlmr-tiny',
  'siglip-tiny',
  'mclip-tiny',
  'openclip-vit-b-32',
];

interface ImmichPreset {
  name: ImmichPresetName;
  /** Tower shapes (the text vocabulary is replaced by the tokenizer's). */
  base: ClipPreset;
  family: TokenizerFamily;
  textTower: TextTowerKind;
  contextLength: number;
  resizeMode: ResizeMode;
  /** open_clip's architecture name recorded in config.json. */
  architecture: string;
}

const SIGLIP_MEAN = [0.5, 0.5, 0.5] as const;

export const IMMICH_PRESETS: Readonly<Record<ImmichPresetName, ImmichPreset>> = {
  // An OpenAI/OpenCLIP CLIP-BPE model (ViT-B-32__openai shaped like the tiny preset).
  'openclip-tiny': {
    name: 'openclip-tiny',
    base: PRESETS.tiny,
    family: 'clip-bpe',
    textTower: 'clip',
    contextLength: 77,
    resizeMode: 'shortest',
    architecture: 'ViT-B-32',
  },
  // The seed's xlm-roberta-base-ViT-B-32: an XLM-R text tower (mask from ids != pad, mean pooling).
  'xlmr-tiny': {
    name: 'xlmr-tiny',
    base: PRESETS.tiny,
    family: 'xlm-r',
    textTower: 'xlm-r',
    contextLength: 77,
    resizeMode: 'shortest',
    architecture: 'xlm-roberta-base-ViT-B-32',
  },
  // ViT-B-16-SigLIP: T5 SentencePiece, L = 64, squash resize, sigmoid scoring (init_logit_bias in config.json).
  'siglip-tiny': {
    name: 'siglip-tiny',
    base: PRESETS.tiny,
    family: 'siglip',
    textTower: 'siglip',
    contextLength: 64,
    resizeMode: 'squash',
    architecture: 'ViT-B-16-SigLIP',
  },
  // M-CLIP XLM-Roberta-Large-Vit-B-16Plus: text input_ids + attention_mask, root config of its image model.
  'mclip-tiny': {
    name: 'mclip-tiny',
    base: PRESETS.tiny,
    family: 'xlm-r',
    textTower: 'mclip',
    contextLength: 77,
    resizeMode: 'shortest',
    architecture: 'ViT-B-16-plus-240',
  },
  // The benchmark's: ViT-B/32 shapes, fixed batch 1.
  'openclip-vit-b-32': {
    name: 'openclip-vit-b-32',
    base: PRESETS['vit-b-32'],
    family: 'clip-bpe',
    textTower: 'clip',
    contextLength: 77,
    resizeMode: 'shortest',
    architecture: 'ViT-B-32',
  },
};

export function isImmichPresetName(value: string): value is ImmichPresetName {
  return (IMMICH_PRESET_NAMES as readonly string[]).includes(value);
}

export interface MakeImmichModelOptions {
  out: string;
  preset: ImmichPresetName;
  seed?: number;
  /** Older exports: dynamic batch, outputs `image_embedding` / `text_embedding`. Default false. */
  dynamic?: boolean;
  /** Store initializers of at least 64 KiB as external data files. Default false. */
  externalData?: boolean;
  /** Override the preset's resize mode (preprocess_cfg.json). */
  resizeMode?: ResizeMode;
  onFile?: (file: string, bytes: number) => void;
}

export interface ImmichModelSummary {
  dir: string;
  preset: ImmichPresetName;
  family: TokenizerFamily;
  files: { path: string; bytes: number }[];
  embeddingSize: number;
  contextLength: number;
  padId: number;
}

const EXTERNAL_MIN_BYTES = 64 * 1024;

function toOnnxModel(graph: Graph): OnnxModel {
  return {
    graph,
    irVersion: IR_VERSION,
    opsetImports: [{ domain: '', version: OPSET_VERSION }],
    producerName: 'clip-classify-server make-test-model --layout immich',
    producerVersion: '1',
  };
}

function l2Normalize(builder: GraphBuilder, input: string, output: string): void {
  const norm = builder.op('ReduceL2', [input], [attr.ints('axes', [-1]), attr.int('keepdims', 1)]);
  builder.op('Div', [input, norm], [], { outputs: [output] });
}

function visualGraph(preset: ClipPreset, weights: ClipWeights, dynamic: boolean): Graph {
  const builder = new GraphBuilder('main_graph');
  const { numChannels, imageSize } = preset.vision;
  const batch = dynamic ? 'batch_size' : 1;
  const image = builder.input({
    name: 'image',
    elemType: DataType.Float,
    shape: [batch, numChannels, imageSize, imageSize],
  });
  const output = dynamic ? 'image_embedding' : 'embedding';
  l2Normalize(builder, addVisionTower(builder, weights, preset, image), output);
  builder.output({ name: output, elemType: DataType.Float, shape: [batch, preset.projectionDim] });
  return builder.build();
}

function textualGraph(
  preset: ClipPreset,
  weights: ClipWeights,
  kind: TextTowerKind,
  padId: number,
  dynamic: boolean,
): Graph {
  const builder = new GraphBuilder('main_graph');
  const batch = dynamic ? 'batch_size' : 1;
  const length = preset.text.maxPositionEmbeddings;
  const output = dynamic ? 'text_embedding' : 'embedding';
  let embeds: string;
  if (kind === 'mclip') {
    const inputIds = builder.input({ name: 'input_ids', elemType: DataType.Int32, shape: [batch, length] });
    const attentionMask = builder.input({ name: 'attention_mask', elemType: DataType.Int32, shape: [batch, length] });
    embeds = addOpenClipTextTower(builder, weights, preset, kind, { inputIds, attentionMask, padId });
  } else {
    const text = builder.input({ name: 'text', elemType: DataType.Int32, shape: [batch, length] });
    embeds = addOpenClipTextTower(builder, weights, preset, kind, { inputIds: text, padId });
  }
  l2Normalize(builder, embeds, output);
  builder.output({ name: output, elemType: DataType.Float, shape: [batch, preset.projectionDim] });
  return builder.build();
}

/** open_clip's model config, as `open_clip.get_model_config(name)` returns it (what immich saves as config.json). */
function openClipConfig(preset: ImmichPreset, shapes: ClipPreset, seed: number): Record<string, unknown> {
  const textCfg: Record<string, unknown> = {
    context_length: shapes.text.maxPositionEmbeddings,
    vocab_size: shapes.text.vocabSize,
    width: shapes.text.hiddenSize,
    heads: shapes.text.numAttentionHeads,
    layers: shapes.text.numHiddenLayers,
  };
  if (preset.family === 'xlm-r' && preset.textTower === 'xlm-r') {
    Object.assign(textCfg, {
      hf_model_name: 'xlm-roberta-base',
      hf_tokenizer_name: 'xlm-roberta-base',
      hf_pooler_type: 'mean_pooler',
      proj_type: 'mlp',
    });
  }
  if (preset.family === 'siglip') {
    Object.assign(textCfg, {
      hf_tokenizer_name: 'timm/ViT-B-16-SigLIP',
      tokenizer_kwargs: { clean: 'canonicalize' },
      no_causal_mask: true,
      pool_type: 'last',
    });
  }
  return {
    embed_dim: shapes.projectionDim,
    ...(preset.family === 'siglip' ? { init_logit_bias: -10, custom_text: true } : {}),
    vision_cfg: {
      image_size: shapes.vision.imageSize,
      layers: shapes.vision.numHiddenLayers,
      width: shapes.vision.hiddenSize,
      patch_size: shapes.vision.patchSize,
    },
    text_cfg: textCfg,
    test_model: {
      generator: 'npm run make-test-model -- --layout immich',
      preset: preset.name,
      seed,
      architecture: preset.architecture,
      weights: 'random: this model has never been trained',
    },
  };
}

/** Generates the model directory; see the module comment. */
export async function makeImmichModel(options: MakeImmichModelOptions): Promise<ImmichModelSummary> {
  if (!isImmichPresetName(options.preset))
    throw new TypeError(
      `Expected preset to be one of ${IMMICH_PRESET_NAMES.join(', ')}, got ${String(options.preset)}`,
    );
  const preset = IMMICH_PRESETS[options.preset];
  const seed = options.seed ?? 0;
  const dynamic = options.dynamic ?? false;
  const out = path.resolve(options.out);
  const files: { path: string; bytes: number }[] = [];
  const record = (file: string, bytes: number): void => {
    files.push({ path: file, bytes });
    options.onFile?.(file, bytes);
  };
  await mkdir(path.join(out, 'visual'), { recursive: true });
  await mkdir(path.join(out, 'textual'), { recursive: true });

  const tokenizer = await writeTokenizerFiles(path.join(out, 'textual'), preset.family, {
    contextLength: preset.contextLength,
  });
  for (const file of tokenizer.files) record(`textual/${file}`, 0);
  const shapes: ClipPreset = {
    ...preset.base,
    text: { ...preset.base.text, vocabSize: tokenizer.vocabSize, maxPositionEmbeddings: preset.contextLength },
  };
  const weights = createClipWeights(shapes, seed);

  const writeJson = async (file: string, value: unknown): Promise<void> => {
    const text = `${JSON.stringify(value, null, 2)}\n`;
    await writeFile(path.join(out, file), text);
    record(file, Buffer.byteLength(text));
  };
  await writeJson('config.json', openClipConfig(preset, shapes, seed));
  const siglip = preset.family === 'siglip';
  await writeJson('visual/preprocess_cfg.json', {
    size: [shapes.vision.imageSize, shapes.vision.imageSize],
    mode: 'RGB',
    mean: siglip ? SIGLIP_MEAN : CLIP_IMAGE_MEAN,
    std: siglip ? SIGLIP_MEAN : CLIP_IMAGE_STD,
    interpolation: 'bicubic',
    resize_mode: options.resizeMode ?? preset.resizeMode,
    fill_color: 0,
  });

  for (const [folder, graph] of [
    ['visual', visualGraph(shapes, weights, dynamic)],
    ['textual', textualGraph(shapes, weights, preset.textTower, tokenizer.padId, dynamic)],
  ] as const) {
    const external =
      options.externalData === true
        ? { minBytes: EXTERNAL_MIN_BYTES, onFile: (name: string, bytes: number) => record(`${folder}/${name}`, bytes) }
        : undefined;
    record(
      `${folder}/model.onnx`,
      await writeOnnxModel(path.join(out, folder, 'model.onnx'), toOnnxModel(graph), external),
    );
  }
  return {
    dir: out,
    preset: preset.name,
    family: preset.family,
    files,
    embeddingSize: shapes.projectionDim,
    contextLength: preset.contextLength,
    padId: tokenizer.padId,
  };
}

/** Writes into a temporary directory renamed into place (readers never see half a model). */
export async function makeImmichModelAtomically(options: MakeImmichModelOptions): Promise<ImmichModelSummary> {
  const temporary = `${path.resolve(options.out)}.tmp-${process.pid}`;
  await rm(temporary, { recursive: true, force: true });
  try {
    const summary = await makeImmichModel({ ...options, out: temporary });
    await rm(options.out, { recursive: true, force: true });
    await rename(temporary, options.out);
    return { ...summary, dir: path.resolve(options.out) };
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
}
