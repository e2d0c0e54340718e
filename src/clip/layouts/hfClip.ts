/**
 * The Hugging Face CLIP layout: which files a CLIP ONNX export needs (from a directory and from a hub repo: `hfClipLayout`,
 * its declaration for the registry), and the parse boundary for its JSON: `config.json` and
 * `preprocessor_config.json` arrive in snake_case (in the variants real hub repos have) and leave as the
 * camelCase types of types.ts, with CLIP's defaults filled in. Nothing deeper ever reads the raw JSON.
 *
 * Layout (as in `Xenova/clip-vit-base-patch32`):
 * ```
 * config.json  preprocessor_config.json  tokenizer.json  [tokenizer_config.json  special_tokens_map.json]
 * onnx/text_model{suffix}.onnx  onnx/vision_model{suffix}.onnx     the two towers (preferred)
 * onnx/model{suffix}.onnx                                          the combined graph (fallback; logit scale)
 * ```
 * with suffix `''` (fp32), `_fp16` or `_quantized` (int8).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ClipModelConfig, Precision, PreprocessorConfig } from '../types.js';
import { FieldReader, isRecord, modelFileError, readJsonFile } from './jsonFields.js';
import type { FilePlan, FileSet, LayoutModule, RepoListing } from './layoutModule.js';
import type { GraphFiles, ModelSpec } from './modelSpec.js';

/** Which graphs a model directory is run from: the two towers, or the combined `onnx/model*.onnx`. */
export type ModelLayout = 'towers' | 'combined';

export const CONFIG_FILE = 'config.json';
export const PREPROCESSOR_CONFIG_FILE = 'preprocessor_config.json';
export const TOKENIZER_FILE = 'tokenizer.json';
/** Files a model may have and the server reads when present; never required. */
export const OPTIONAL_MODEL_FILES: readonly string[] = Object.freeze([
  'tokenizer_config.json',
  'special_tokens_map.json',
]);

const SUFFIX: Record<Precision, string> = { fp32: '', fp16: '_fp16', int8: '_quantized' };

/** The ONNX file name suffix of a precision: `''`, `'_fp16'` or `'_quantized'`. */
export function precisionSuffix(precision: Precision): string {
  return SUFFIX[precision];
}

/** The two tower graphs of a precision, relative to the model directory. */
export function towerModelFiles(precision: Precision): { text: string; vision: string } {
  const suffix = precisionSuffix(precision);
  return { text: `onnx/text_model${suffix}.onnx`, vision: `onnx/vision_model${suffix}.onnx` };
}

/** The combined graph of a precision (`onnx/model{suffix}.onnx`), relative to the model directory. */
export function combinedModelFile(precision: Precision): string {
  return `onnx/model${precisionSuffix(precision)}.onnx`;
}

/** The JSON files every model in this layout needs. */
export const CONFIG_FILES: readonly string[] = Object.freeze([CONFIG_FILE, PREPROCESSOR_CONFIG_FILE, TOKENIZER_FILE]);

/** Every file a model needs in a layout, relative to its directory (`/`-separated, as on the hub). */
export function requiredFiles(precision: Precision, layout: ModelLayout): string[] {
  if (layout === 'combined') return [...CONFIG_FILES, combinedModelFile(precision)];
  const towers = towerModelFiles(precision);
  return [...CONFIG_FILES, towers.text, towers.vision];
}

/** A model directory checked and parsed by {@link loadModelFiles}; every path is absolute. */
export type LoadedModelFiles<Config = ClipModelConfig> = {
  dir: string;
  precision: Precision;
  config: Config;
  preprocessor: PreprocessorConfig;
  tokenizerPath: string;
  /** `tokenizer_config.json`, when the directory has it. */
  tokenizerConfigPath: string | undefined;
} & (
  | {
      layout: 'towers';
      textModelPath: string;
      visionModelPath: string;
      /** The combined graph too, when present: a source for the trained logit scale. */
      combinedModelPath: string | undefined;
    }
  | {
      layout: 'combined';
      // Absent, but typed so that `files.textModelPath && files.visionModelPath` narrows without a layout switch.
      textModelPath?: undefined;
      visionModelPath?: undefined;
      combinedModelPath: string;
    }
);

/**
 * How a layout with these files reads its two configs: CLIP's parsers here, SigLIP's in hfSiglip.ts (the same file
 * names, another meaning). `file` names the file in errors.
 */
export interface ConfigParsers<Config> {
  config(json: unknown, file: string): Config;
  preprocessor(json: unknown, file: string): PreprocessorConfig;
}

/**
 * Checks a model directory and parses its configs (with CLIP's parsers unless given others). Towers are used when both
 * exist, else the combined graph. Throws an AppError (MODEL_UNAVAILABLE) naming the file for a missing directory, a
 * missing, empty, truncated or invalid JSON file, or a missing or empty .onnx file (deeper ONNX corruption is left to
 * ONNX Runtime).
 */
export async function loadModelFiles(dir: string, precision: Precision): Promise<LoadedModelFiles>;
export async function loadModelFiles<Config>(
  dir: string,
  precision: Precision,
  parsers: ConfigParsers<Config>,
): Promise<LoadedModelFiles<Config>>;
export async function loadModelFiles(
  dir: string,
  precision: Precision,
  parsers: ConfigParsers<unknown> = { config: parseClipConfig, preprocessor: parsePreprocessorConfig },
): Promise<LoadedModelFiles<unknown>> {
  const root = path.resolve(dir);
  const stat = await fs.stat(root).catch(() => undefined);
  if (stat === undefined || !stat.isDirectory()) {
    throw modelFileError(`model directory ${root} does not exist or is not a directory`);
  }
  const abs = (file: string): string => path.join(root, ...file.split('/'));

  const [configJson, preprocessorJson, tokenizerJson] = await Promise.all(
    CONFIG_FILES.map((file) => readJsonFile(abs(file))),
  );
  const config = parsers.config(configJson, abs(CONFIG_FILE));
  const preprocessor = parsers.preprocessor(preprocessorJson, abs(PREPROCESSOR_CONFIG_FILE));
  // The tokenizer module parses it for real; checked here so that a truncated download fails at load, by name.
  if (!isRecord(tokenizerJson) || !isRecord(tokenizerJson['model'])) {
    throw modelFileError(`invalid ${abs(TOKENIZER_FILE)}: expected a Hugging Face tokenizer with a "model" object`);
  }
  const tokenizerConfigPath =
    (await fileSize(abs('tokenizer_config.json'))) === undefined ? undefined : abs('tokenizer_config.json');
  const common = {
    dir: root,
    precision,
    config,
    preprocessor,
    tokenizerPath: abs(TOKENIZER_FILE),
    tokenizerConfigPath,
  };

  const towers = towerModelFiles(precision);
  const combined = combinedModelFile(precision);
  const [textSize, visionSize, combinedSize] = await Promise.all(
    [towers.text, towers.vision, combined].map((file) => fileSize(abs(file))),
  );
  for (const [file, size] of [
    [towers.text, textSize],
    [towers.vision, visionSize],
    [combined, combinedSize],
  ] as const) {
    if (size === 0) throw modelFileError(`${abs(file)} is empty (0 bytes): a truncated download? Delete it and retry`);
  }

  if (textSize !== undefined && visionSize !== undefined) {
    return {
      ...common,
      layout: 'towers',
      textModelPath: abs(towers.text),
      visionModelPath: abs(towers.vision),
      combinedModelPath: combinedSize === undefined ? undefined : abs(combined),
    };
  }
  if (combinedSize !== undefined) return { ...common, layout: 'combined', combinedModelPath: abs(combined) };

  const missingTower = textSize === undefined ? towers.text : towers.vision;
  throw modelFileError(
    `model directory ${root} has no ${precision} graphs: ${abs(missingTower)} is missing and so is the combined ${abs(combined)} ` +
      `(a ${precision} model needs ${towers.text} + ${towers.vision}, or ${combined})`,
  );
}

// --- config.json -------------------------------------------------------------------------------------------

/** CLIPConfig's defaults (transformers), used when a field is absent. */
const CONFIG_DEFAULTS = { projectionDim: 512, contextLength: 77, imageSize: 224 };

/**
 * Parses `config.json` (HF `CLIPConfig`). Reads `projection_dim`, `text_config.max_position_embeddings`,
 * `vision_config.image_size` (falling back to the older `*_config_dict` copies, then to CLIP's defaults
 * 512 / 77 / 224) and `logit_scale_init_value`. `file` only names the file in errors.
 */
export function parseClipConfig(json: unknown, file: string = CONFIG_FILE): ClipModelConfig {
  const read = new FieldReader(json, file);
  const text = read.section('text_config') ?? read.section('text_config_dict');
  const vision = read.section('vision_config') ?? read.section('vision_config_dict');
  return {
    projectionDim: read.positiveInt(read.root, 'projection_dim') ?? CONFIG_DEFAULTS.projectionDim,
    contextLength: read.positiveInt(text, 'max_position_embeddings', 'text_config.') ?? CONFIG_DEFAULTS.contextLength,
    imageSize: read.positiveInt(vision, 'image_size', 'vision_config.') ?? CONFIG_DEFAULTS.imageSize,
    logitScaleInitValue: read.finiteNumber(read.root, 'logit_scale_init_value'),
  };
}

// --- preprocessor_config.json ------------------------------------------------------------------------------

/** OpenAI CLIP's normalisation constants: the defaults of CLIPImageProcessor. */
export const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/**
 * Parses `preprocessor_config.json` (`CLIPImageProcessor`, or the older `CLIPFeatureExtractor`).
 * - `size`: `{shortest_edge}`, a number (the shortest edge, as CLIPFeatureExtractor meant it) or `{height, width}`
 *   (mapped to a shortest edge of `min(height, width)`: PreprocessorConfig has no exact-resize mode, and for the
 *   square CLIP inputs that follow a centre crop the two agree on square images only).
 * - `crop_size`: a number or `{height, width}`; default 224.
 * - absent fields take CLIPImageProcessor's defaults: resample 3 (bicubic), rescale 1/255, OpenAI mean/std,
 *   every `do_*` true.
 * `file` only names the file in errors.
 */
export function parsePreprocessorConfig(json: unknown, file: string = PREPROCESSOR_CONFIG_FILE): PreprocessorConfig {
  const read = new FieldReader(json, file);
  const root = read.root;
  const crop = read.size(root, 'crop_size');
  return {
    doConvertRgb: read.bool(root, 'do_convert_rgb') ?? true,
    doResize: read.bool(root, 'do_resize') ?? true,
    shortestEdge: read.shortestEdge(root, 'size') ?? 224,
    resample: read.nonNegativeInt(root, 'resample') ?? 3,
    doCenterCrop: read.bool(root, 'do_center_crop') ?? true,
    cropHeight: crop?.height ?? 224,
    cropWidth: crop?.width ?? 224,
    doRescale: read.bool(root, 'do_rescale') ?? true,
    rescaleFactor: read.positiveNumber(root, 'rescale_factor') ?? 1 / 255,
    doNormalize: read.bool(root, 'do_normalize') ?? true,
    imageMean: read.triple(root, 'image_mean', false) ?? [...OPENAI_CLIP_MEAN],
    imageStd: read.triple(root, 'image_std', true) ?? [...OPENAI_CLIP_STD],
  };
}

async function fileSize(file: string): Promise<number | undefined> {
  const stat = await fs.stat(file).catch(() => undefined);
  return stat?.isFile() === true ? stat.size : undefined;
}

// --- the model description ---------------------------------------------------------------------------------

/** True when `dir` looks like this layout: a `preprocessor_config.json` or an `onnx/` folder beside `config.json`. */
export async function isHfClipDir(dir: string): Promise<boolean> {
  const has = async (file: string): Promise<boolean> =>
    (await fs.stat(path.join(dir, file)).catch(() => undefined)) !== undefined;
  return (await has(PREPROCESSOR_CONFIG_FILE)) || (await has('onnx'));
}

/** Reads a directory in this layout into the common {@link ModelSpec}. Errors as {@link loadModelFiles}. */
export async function loadHfClipSpec(dir: string, precision: Precision): Promise<ModelSpec> {
  const files = await loadModelFiles(dir, precision);
  const modelType = ((await readJsonFile(path.join(files.dir, CONFIG_FILE))) as Record<string, unknown>)['model_type'];
  if (typeof modelType === 'string' && modelType !== 'clip') {
    // Another architecture's processor and tokenizer mean other things (SigLIP's have their own layout, hfSiglip.ts):
    // run as CLIP it would give wrong numbers.
    throw modelFileError(
      `${path.join(files.dir, CONFIG_FILE)}: model_type "${modelType}" is not served in the Hugging Face layout (only "clip" and "siglip"); ` +
        'other architectures may have an immich-layout export (immich-app/<name>)',
    );
  }
  const graphs: GraphFiles =
    files.layout === 'towers'
      ? { kind: 'towers', vision: files.visionModelPath, text: files.textModelPath, combined: files.combinedModelPath }
      : { kind: 'combined', combined: files.combinedModelPath };
  const contextLength = files.config.contextLength;
  return {
    layout: 'hf-clip',
    dir: files.dir,
    precision,
    image: files.preprocessor,
    text: {
      tokenizerDir: path.dirname(files.tokenizerPath),
      // config.json's max_position_embeddings is the context; a graph that fixes a shorter length fails the prompts that
      // do not fit (INFERENCE_FAILED) rather than having them silently cut to it.
      resolve: () => ({ contextLength, clean: undefined }),
      padToContext: false,
    },
    graphs,
    embeddingSize: files.config.projectionDim,
    scoring: 'softmax',
    architecture: undefined,
  };
}

// --- the files from a hub repo -----------------------------------------------------------------------------

/** The two ways a Hugging Face-layout model runs at a precision, best first. */
function hfFileSets(precision: Precision): readonly [FileSet, FileSet] {
  return [
    { label: 'the two towers', required: requiredFiles(precision, 'towers'), optional: OPTIONAL_MODEL_FILES },
    { label: 'the combined graph', required: requiredFiles(precision, 'combined'), optional: OPTIONAL_MODEL_FILES },
  ];
}

/**
 * What a Hugging Face-layout model (CLIP's or SigLIP's: the same files) needs from a repo: the configs, the tokenizer
 * and the two towers, or, when the listing has no towers at that precision, the combined graph. A listing with
 * neither is refused before any download, naming the graphs it has.
 */
export function hfFilePlan(precision: Precision, listing: RepoListing | undefined): FilePlan {
  const [towerSet, combinedSet] = hfFileSets(precision);
  if (listing === undefined) return { kind: 'fetch', sets: [towerSet, combinedSet] };
  const towers = towerModelFiles(precision);
  const combined = combinedModelFile(precision);
  const has = (file: string): boolean => listing.files.includes(file);
  if (has(towers.text) && has(towers.vision)) return { kind: 'fetch', sets: [towerSet] };
  if (has(combined)) return { kind: 'fetch', sets: [combinedSet] };
  const graphs = listing.files.filter((f) => f.endsWith('.onnx'));
  return {
    kind: 'refuse',
    file: towers.vision,
    reason:
      `has no ${precision} graphs (CLIP_PRECISION=${precision} needs ${towers.text} + ${towers.vision}, or ${combined}); ` +
      (graphs.length === 0 ? 'it has no .onnx files at all' : `it has ${graphs.join(', ')}`),
  };
}

/** True when a repo's listing is in a Hugging Face layout: an `onnx/` graph or a `preprocessor_config.json`. */
export function isHfListing(files: readonly string[]): boolean {
  return files.includes(PREPROCESSOR_CONFIG_FILE) || files.some((file) => file.startsWith('onnx/'));
}

/** The Hugging Face CLIP layout, for the registry (index.ts). */
export const hfClipLayout: LayoutModule<'hf-clip'> = {
  name: 'hf-clip',
  looksLike: 'Hugging Face CLIP: onnx/…',
  isLayoutDir: isHfClipDir,
  loadSpec: loadHfClipSpec,
  files: {
    inListing: isHfListing,
    plan: hfFilePlan,
    // The combined graph holds the trained scale; without it, the scale comes from config.json or the catalogue.
    trainedScale: (precision) => ({ files: [combinedModelFile(precision)], needed: false }),
  },
};
