/**
 * Hugging Face's SigLIP ONNX exports (`Xenova/siglip-base-patch16-224`, what transformers.js users load): the same
 * files as the CLIP layout (hfClip.ts), told apart by `config.json`'s `model_type: "siglip"`, with SigLIP's own
 * meaning for them:
 * ```
 * config.json                 model_type "siglip"; text_config.max_position_embeddings (64), vision_config.image_size, hidden_size
 * preprocessor_config.json    SiglipImageProcessor: size {height, width}, resample, rescale, mean/std 0.5; no crop
 * tokenizer.json …            SigLIP's SentencePiece (T5) tokenizer: `</s>` appended, padded to 64
 * onnx/text_model.onnx        input_ids → pooler_output (+ last_hidden_state), unnormalised
 * onnx/vision_model.onnx      pixel_values → pooler_output (+ last_hidden_state), unnormalised
 * onnx/model.onnx             input_ids, pixel_values → logits_per_image (= exp(t)·cos + b), text_embeds, image_embeds
 * ```
 * - Images are resized to size.height × size.width ignoring the aspect ratio (SiglipImageProcessor's `resize`, the
 *   same PIL resize as open_clip's `squash`), never cropped.
 * - Prompts are padded to the full context: the text tower pools its last position, so only a prompt padded to
 *   exactly L gives the trained embedding (transformers' docs: `padding="max_length"`).
 * - The text is cleaned as open_clip's SigLIP tokenizer does (`canonicalize`: punctuation removed, lower-cased,
 *   whitespace folded), which is also what transformers' SiglipTokenizer does, but for `_`, which open_clip turns into
 *   a space and transformers removes (see Tokenizer families in the README).
 * - Scoring is SigLIP's per-class sigmoid; the trained scale and bias are in the combined graph only (its logits are
 *   fitted against its own embeddings at load, ClipModel), since config.json holds no trained values.
 */
import path from 'node:path';
import type { Precision, PreprocessorConfig } from '../types.js';
import { CONFIG_FILE, combinedModelFile, hfFilePlan, loadModelFiles, PREPROCESSOR_CONFIG_FILE } from './hfClip.js';
import { FieldReader, readJsonFile } from './jsonFields.js';
import type { LayoutModule } from './layoutModule.js';
import type { GraphFiles, ModelSpec } from './modelSpec.js';

/** The `model_type` that makes a Hugging Face-layout directory this layout. */
export const SIGLIP_MODEL_TYPE = 'siglip';

/** SiglipConfig's and SiglipImageProcessor's defaults (transformers), for fields a file leaves out. */
const SIGLIP_DEFAULTS = { contextLength: 64, imageSize: 224, hiddenSize: 768, resample: 3, mean: 0.5, std: 0.5 };

/** True when a Hugging Face-layout directory's config.json says `model_type: "siglip"`. */
export async function isHfSiglipDir(dir: string): Promise<boolean> {
  const config = await readJsonFile(path.join(dir, CONFIG_FILE)).catch(() => undefined);
  return (
    typeof config === 'object' &&
    config !== null &&
    (config as Record<string, unknown>)['model_type'] === SIGLIP_MODEL_TYPE
  );
}

/** What SigLIP's config.json says that the server needs. `file` names the file in errors. */
export function parseSiglipConfig(
  json: unknown,
  file: string = CONFIG_FILE,
): { contextLength: number; embeddingSize: number; architecture: string | undefined } {
  const read = new FieldReader(json, file);
  const text = read.section('text_config');
  const vision = read.section('vision_config');
  const name = read.root['_name_or_path'];
  return {
    contextLength: read.positiveInt(text, 'max_position_embeddings', 'text_config.') ?? SIGLIP_DEFAULTS.contextLength,
    // The image embedding is the vision tower's pooled state (no projection): vision_config.hidden_size.
    embeddingSize: read.positiveInt(vision, 'hidden_size', 'vision_config.') ?? SIGLIP_DEFAULTS.hiddenSize,
    architecture: typeof name === 'string' && name !== '' ? name : undefined,
  };
}

/**
 * Parses SiglipImageProcessor's `preprocessor_config.json` into a squash resize to `size` (no crop). Absent fields take
 * its defaults: 224 × 224, bicubic, rescale 1/255, mean and std 0.5. `file` names the file in errors.
 */
export function parseSiglipPreprocessorConfig(
  json: unknown,
  file: string = PREPROCESSOR_CONFIG_FILE,
): PreprocessorConfig {
  const read = new FieldReader(json, file);
  const root = read.root;
  const size = read.size(root, 'size') ?? { height: SIGLIP_DEFAULTS.imageSize, width: SIGLIP_DEFAULTS.imageSize };
  const { mean, std } = SIGLIP_DEFAULTS;
  return {
    doConvertRgb: read.bool(root, 'do_convert_rgb') ?? true,
    doResize: read.bool(root, 'do_resize') ?? true,
    shortestEdge: Math.min(size.height, size.width),
    resample: read.nonNegativeInt(root, 'resample') ?? SIGLIP_DEFAULTS.resample,
    // The squash resize lands on exactly the crop, so the "crop" is the whole resized image.
    doCenterCrop: true,
    cropHeight: size.height,
    cropWidth: size.width,
    doRescale: read.bool(root, 'do_rescale') ?? true,
    rescaleFactor: read.positiveNumber(root, 'rescale_factor') ?? 1 / 255,
    doNormalize: read.bool(root, 'do_normalize') ?? true,
    imageMean: read.triple(root, 'image_mean', false) ?? [mean, mean, mean],
    imageStd: read.triple(root, 'image_std', true) ?? [std, std, std],
    resizeMode: 'squash',
    fillColor: 0,
  };
}

/** Reads a directory in this layout into the common {@link ModelSpec}. Errors as hfClip's `loadModelFiles`. */
export async function loadHfSiglipSpec(dir: string, precision: Precision): Promise<ModelSpec> {
  // The same files, sizes and JSON checks as the CLIP layout, the two configs read as SigLIP's.
  const files = await loadModelFiles(dir, precision, {
    config: parseSiglipConfig,
    preprocessor: parseSiglipPreprocessorConfig,
  });
  const { config, preprocessor: image } = files;
  const graphs: GraphFiles =
    files.layout === 'towers'
      ? { kind: 'towers', vision: files.visionModelPath, text: files.textModelPath, combined: files.combinedModelPath }
      : { kind: 'combined', combined: files.combinedModelPath };
  return {
    layout: 'hf-siglip',
    dir: files.dir,
    precision,
    image,
    text: {
      tokenizerDir: path.dirname(files.tokenizerPath),
      resolve: ({ fixedLength }) => ({ contextLength: fixedLength ?? config.contextLength, clean: 'canonicalize' }),
      padToContext: true,
    },
    graphs,
    embeddingSize: config.embeddingSize,
    scoring: 'sigmoid',
    embeddingOutputs: { image: ['pooler_output'], text: ['pooler_output'] },
    architecture: config.architecture,
  };
}

/** The Hugging Face SigLIP layout, for the registry (index.ts). */
export const hfSiglipLayout: LayoutModule<'hf-siglip'> = {
  name: 'hf-siglip',
  looksLike: 'Hugging Face SigLIP: onnx/… with model_type "siglip"',
  isLayoutDir: isHfSiglipDir,
  loadSpec: loadHfSiglipSpec,
  files: {
    // Its files are CLIP's: a listing cannot tell them apart, config.json does once downloaded.
    inListing: () => false,
    plan: hfFilePlan,
    // config.json holds no trained values: the combined graph is the only source of the scale and bias.
    trainedScale: (precision) => ({ files: [combinedModelFile(precision)], needed: true }),
  },
};
