/**
 * Writes a random-weight SigLIP model in Hugging Face's ONNX layout, as the exports transformers.js loads
 * (`Xenova/siglip-base-patch16-224`) have it:
 * ```
 * config.json                model_type "siglip", text_config (max_position_embeddings 64), vision_config
 * preprocessor_config.json   SiglipImageProcessor: size {height, width}, bicubic, mean/std 0.5, no crop
 * tokenizer.json …           SigLIP's SentencePiece tokenizer files (scripts/model/text)
 * onnx/text_model.onnx       input_ids int64 [batch, sequence] → last_hidden_state, pooler_output (unnormalised)
 * onnx/vision_model.onnx     pixel_values [batch, 3, S, S] → last_hidden_state, pooler_output (unnormalised)
 * onnx/model.onnx            input_ids, pixel_values → logits_per_image = exp(t) · cos + b, logits_per_text, text_embeds, image_embeds
 * ```
 * The text tower is open_clip's SigLIP one (no mask, pooled at the last position), so only a prompt padded to the full
 * context gives the embedding the combined graph gives; the scale and bias exist only in the combined graph, as in the
 * real exports. `last_hidden_state` here is a stand-in (the pooled state again) that only has to be there: the real
 * towers have two outputs, so the server must pick `pooler_output` by name.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  addCombinedOutputs,
  IR_VERSION,
  l2Normalize,
  OPSET_VERSION,
  pixelValuesInput,
  textInput,
} from './clipGraphs.js';
import { createClipWeights, type ClipWeights } from './clipWeights.js';
import { DataType, GraphBuilder, type Graph } from './onnxGraph.js';
import { addOpenClipTextTower } from './openClipTextTower.js';
import { PRESETS, type ClipPreset } from './presets.js';
import { writeTokenizerFiles } from './text/index.js';
import { addVisionTower } from './visionTower.js';
import { writeOnnxModel } from './writeOnnxModel.js';

/** The test model's own scale and bias, baked into its combined graph (made-up values: it has never been trained). */
export const HF_SIGLIP_TEST_SCORING = Object.freeze({ logitScale: 20, logitBias: -1.5 });

export interface MakeHfSiglipModelOptions {
  out: string;
  seed?: number;
}

export interface HfSiglipModelSummary {
  dir: string;
  files: string[];
  embeddingSize: number;
  contextLength: number;
}

const CONTEXT_LENGTH = 64;

/** A tower graph with SigLIP's two outputs; `pooler_output` is the embedding. */
function towerGraph(name: string, shapes: ClipPreset, build: (builder: GraphBuilder) => string): Graph {
  const builder = new GraphBuilder(name);
  const pooled = build(builder);
  builder.op('Identity', [pooled], [], { outputs: ['last_hidden_state'] });
  builder.op('Identity', [pooled], [], { outputs: ['pooler_output'] });
  builder.output({ name: 'last_hidden_state', elemType: DataType.Float, shape: ['batch_size', shapes.projectionDim] });
  builder.output({ name: 'pooler_output', elemType: DataType.Float, shape: ['batch_size', shapes.projectionDim] });
  return builder.build();
}

/** HF SiglipModel: the combined outputs with SigLIP's bias (logits_per_text = exp(t) · text · imageᵀ + b). */
function combinedGraph(shapes: ClipPreset, weights: ClipWeights, padId: number): Graph {
  const builder = new GraphBuilder('siglip_model');
  const ids = textInput(builder, 'input_ids', 'text_batch_size');
  const pixels = pixelValuesInput(builder, shapes, 'image_batch_size');
  addCombinedOutputs(builder, shapes, {
    textEmbeds: l2Normalize(
      builder,
      addOpenClipTextTower(builder, weights, shapes, 'siglip', { inputIds: ids, padId }),
      'text_embeds',
    ),
    imageEmbeds: l2Normalize(builder, addVisionTower(builder, weights, shapes, pixels), 'image_embeds'),
    logScale: builder.float([Math.log(HF_SIGLIP_TEST_SCORING.logitScale)], []),
    bias: builder.float([HF_SIGLIP_TEST_SCORING.logitBias], []),
  });
  return builder.build();
}

/** Generates the model directory; see the module comment. */
export async function makeHfSiglipModel(options: MakeHfSiglipModelOptions): Promise<HfSiglipModelSummary> {
  const out = path.resolve(options.out);
  const seed = options.seed ?? 0;
  const files: string[] = [];
  await mkdir(path.join(out, 'onnx'), { recursive: true });
  const tokenizer = await writeTokenizerFiles(out, 'siglip', { contextLength: CONTEXT_LENGTH });
  files.push(...tokenizer.files);
  const base = PRESETS.tiny;
  const shapes: ClipPreset = {
    ...base,
    text: { ...base.text, vocabSize: tokenizer.vocabSize, maxPositionEmbeddings: CONTEXT_LENGTH },
  };
  const weights = createClipWeights(shapes, seed);

  const writeJson = async (file: string, value: unknown): Promise<void> => {
    await writeFile(path.join(out, file), `${JSON.stringify(value, null, 2)}\n`);
    files.push(file);
  };
  await writeJson('config.json', {
    _name_or_path: 'test/siglip-tiny',
    architectures: ['SiglipModel'],
    model_type: 'siglip',
    initializer_factor: 1.0,
    text_config: {
      model_type: 'siglip_text_model',
      hidden_size: shapes.text.hiddenSize,
      max_position_embeddings: CONTEXT_LENGTH,
      vocab_size: shapes.text.vocabSize,
      projection_size: shapes.projectionDim,
    },
    vision_config: {
      model_type: 'siglip_vision_model',
      hidden_size: shapes.projectionDim,
      image_size: shapes.vision.imageSize,
      patch_size: shapes.vision.patchSize,
    },
    test_model: {
      generator: 'npm run make-test-model -- --layout hf-siglip',
      seed,
      weights: 'random: this model has never been trained',
      ...HF_SIGLIP_TEST_SCORING,
    },
  });
  await writeJson('preprocessor_config.json', {
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_processor_type: 'SiglipImageProcessor',
    image_std: [0.5, 0.5, 0.5],
    processor_class: 'SiglipProcessor',
    resample: 3,
    rescale_factor: 1 / 255,
    size: { height: shapes.vision.imageSize, width: shapes.vision.imageSize },
  });

  const graphs: [string, Graph][] = [
    ['onnx/model.onnx', combinedGraph(shapes, weights, tokenizer.padId)],
    [
      'onnx/vision_model.onnx',
      towerGraph('siglip_vision_model', shapes, (b) =>
        addVisionTower(b, weights, shapes, pixelValuesInput(b, shapes, 'batch_size')),
      ),
    ],
    [
      'onnx/text_model.onnx',
      towerGraph('siglip_text_model', shapes, (b) =>
        addOpenClipTextTower(b, weights, shapes, 'siglip', {
          inputIds: textInput(b, 'input_ids', 'batch_size'),
          padId: tokenizer.padId,
        }),
      ),
    ],
  ];
  for (const [file, graph] of graphs) {
    await writeOnnxModel(path.join(out, file), {
      graph,
      irVersion: IR_VERSION,
      opsetImports: [{ domain: '', version: OPSET_VERSION }],
      producerName: 'clip-classify-server make-test-model --layout hf-siglip',
      producerVersion: '1',
    });
    files.push(file);
  }
  return { dir: out, files, embeddingSize: shapes.projectionDim, contextLength: CONTEXT_LENGTH };
}
