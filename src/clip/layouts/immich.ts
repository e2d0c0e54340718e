/**
 * immich's ONNX layout of OpenCLIP and M-CLIP models (`immich-app/<name>` on the hub), read into the common
 * {@link ModelSpec}. From immich's exporter (`machine-learning/export/immich_model_exporter/exporters/onnx/models/
 * openclip.py`, `mclip.py`) and loader (`machine-learning/immich_ml/models/clip/{visual,textual}.py`):
 * ```
 * config.json                   open_clip's model config: embed_dim, vision_cfg.image_size, text_cfg.context_length
 *                               (77 when absent), text_cfg.hf_tokenizer_name, text_cfg.tokenizer_kwargs.clean,
 *                               init_logit_bias (SigLIP: an initial value, not the trained one)
 * visual/model.onnx             image float32 [1,3,S,S] → embedding (L2-normalised); older exports: dynamic batch,
 *                               output image_embedding
 * visual/preprocess_cfg.json    size, mean, std, interpolation, resize_mode, fill_color (open_clip's PreprocessCfg)
 * textual/model.onnx            text int32 [1,L] → embedding; M-CLIP: input_ids + attention_mask; older: text_embedding
 * textual/tokenizer.json  tokenizer_config.json  special_tokens_map.json
 * visual|textual/<anything>     ONNX external data of big models, next to model.onnx
 * ```
 * Only fp32 graphs exist in this layout (the repos' fp16 files are ARM NN's): another precision is refused, naming what exists.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Precision, PreprocessorConfig, ResizeMode } from '../types.js';
import { RESIZE_MODES } from '../types.js';
import { FieldReader, modelFileError, readJsonFile } from './jsonFields.js';
import type { FilePlan, LayoutModule, RepoListing } from './layoutModule.js';
import type { ModelSpec, TextCleanName } from './modelSpec.js';

export const IMMICH_CONFIG_FILE = 'config.json';
export const IMMICH_VISUAL_MODEL = 'visual/model.onnx';
export const IMMICH_TEXTUAL_MODEL = 'textual/model.onnx';
export const IMMICH_PREPROCESS_CFG = 'visual/preprocess_cfg.json';
export const IMMICH_TOKENIZER_FILE = 'textual/tokenizer.json';
/** The folders whose files a model needs (graphs, external data, configs, tokenizer). */
export const IMMICH_FOLDERS: readonly string[] = ['visual', 'textual'];

/** open_clip's default context length (`text_cfg.get("context_length", 77)` in immich's exporter). */
const DEFAULT_CONTEXT_LENGTH = 77;
/** M-CLIP's text graph is traced at 77 tokens (immich's mclip.py); used when an older export leaves L dynamic. */
const MCLIP_CONTEXT_LENGTH = 77;
const CLEANS: readonly TextCleanName[] = ['whitespace', 'lower', 'canonicalize'];

/** Files of other runtimes immich publishes beside the ONNX graphs (ARM NN, RKNN, …): never downloaded. */
const OTHER_RUNTIME_FILE = /\.(?:armnn|rknn|tflite|mlmodel|mlpackage|engine|plan|xml)$/i;

/**
 * Of a repo's file listing, those an immich-layout model needs: the root `config.json` and every file under
 * `visual/` and `textual/` (so external-data files of any name come along) except other runtimes' files.
 */
export function immichFilesToFetch(listing: readonly string[]): string[] {
  return listing.filter((file) => {
    if (file === IMMICH_CONFIG_FILE) return true;
    const [folder] = file.split('/');
    if (folder === undefined || !IMMICH_FOLDERS.includes(folder) || !file.includes('/')) return false;
    return (
      !OTHER_RUNTIME_FILE.test(file) &&
      !file.split('/').some((segment) => /^(?:rknpu|armnn|openvino|coreml)$/i.test(segment))
    );
  });
}

/** True when a listing is in this layout: it has `visual/model.onnx` or `textual/model.onnx`. */
export function isImmichListing(listing: readonly string[]): boolean {
  return listing.includes(IMMICH_VISUAL_MODEL) || listing.includes(IMMICH_TEXTUAL_MODEL);
}

/** True when a directory is in this layout: it has either graph or `visual/preprocess_cfg.json`. */
export async function isImmichDir(dir: string): Promise<boolean> {
  const has = async (file: string): Promise<boolean> =>
    (await fs.stat(path.join(dir, file)).catch(() => undefined)) !== undefined;
  return (await has(IMMICH_VISUAL_MODEL)) || (await has(IMMICH_TEXTUAL_MODEL)) || (await has(IMMICH_PREPROCESS_CFG));
}

/** What the root config.json says, parsed. */
export interface OpenClipModelConfig {
  embedDim: number;
  imageSize: number;
  contextLength: number;
  hfTokenizerName: string | undefined;
  clean: TextCleanName | undefined;
  /** SigLIP's *initial* bias: marks sigmoid scoring; never used as the trained bias. */
  initLogitBias: number | undefined;
}

/** Parses open_clip's model config (the root config.json). `file` names it in errors. */
export function parseOpenClipConfig(json: unknown, file = IMMICH_CONFIG_FILE): OpenClipModelConfig {
  const read = new FieldReader(json, file);
  const embedDim = read.positiveInt(read.root, 'embed_dim');
  if (embedDim === undefined)
    throw modelFileError(`invalid ${file}: "embed_dim" is missing (expected open_clip's model config)`);
  const vision = read.section('vision_cfg');
  const text = read.section('text_cfg');
  const rawSize = vision?.['image_size'];
  let imageSize: number | undefined;
  if (Array.isArray(rawSize) && rawSize.length === 2 && rawSize.every((v) => Number.isInteger(v) && (v as number) > 0))
    imageSize = rawSize[0] as number;
  else imageSize = read.positiveInt(vision, 'image_size', 'vision_cfg.');
  if (imageSize === undefined) throw modelFileError(`invalid ${file}: "vision_cfg.image_size" is missing`);
  const kwargs = text?.['tokenizer_kwargs'];
  const clean =
    typeof kwargs === 'object' && kwargs !== null ? (kwargs as Record<string, unknown>)['clean'] : undefined;
  if (clean !== undefined && !CLEANS.includes(clean as TextCleanName)) {
    throw modelFileError(
      `invalid ${file}: "text_cfg.tokenizer_kwargs.clean" expected one of ${CLEANS.join(', ')}, but got ${JSON.stringify(clean)}`,
    );
  }
  const tokenizerName = text?.['hf_tokenizer_name'];
  return {
    embedDim,
    imageSize,
    contextLength: read.positiveInt(text, 'context_length', 'text_cfg.') ?? DEFAULT_CONTEXT_LENGTH,
    hfTokenizerName: typeof tokenizerName === 'string' ? tokenizerName : undefined,
    clean: clean as TextCleanName | undefined,
    initLogitBias: read.finiteNumber(read.root, 'init_logit_bias'),
  };
}

/** open_clip's PreprocessCfg defaults (transform.py): OpenAI's mean/std, bicubic, shortest, fill 0. */
const OPENAI_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
/** PIL's `Image.Resampling` ids of the interpolations open_clip accepts ('random' means bicubic at inference). */
const INTERPOLATIONS: Readonly<Record<string, number>> = { bicubic: 3, bilinear: 2, random: 3 };

/** Parses `visual/preprocess_cfg.json` into the preprocessor the image pipeline runs. */
export function parseOpenClipPreprocessCfg(json: unknown, file = IMMICH_PREPROCESS_CFG): PreprocessorConfig {
  const read = new FieldReader(json, file);
  const root = read.root;
  const rawSize = root['size'];
  let height: number | undefined;
  let width: number | undefined;
  if (Number.isInteger(rawSize) && (rawSize as number) > 0) height = width = rawSize as number;
  else if (
    Array.isArray(rawSize) &&
    (rawSize.length === 1 || rawSize.length === 2) &&
    rawSize.every((v) => Number.isInteger(v) && (v as number) > 0)
  ) {
    height = rawSize[0] as number;
    width = (rawSize[1] ?? rawSize[0]) as number;
  }
  if (height === undefined || width === undefined) {
    throw modelFileError(
      `invalid ${file}: "size" expected a positive integer or [height, width], but got ${JSON.stringify(rawSize)}`,
    );
  }
  const interpolation = root['interpolation'] ?? 'bicubic';
  const resample = typeof interpolation === 'string' ? INTERPOLATIONS[interpolation.toLowerCase()] : undefined;
  if (resample === undefined) {
    throw modelFileError(
      `invalid ${file}: "interpolation" expected bicubic or bilinear, but got ${JSON.stringify(interpolation)}`,
    );
  }
  const resizeMode = root['resize_mode'] ?? 'shortest';
  if (!RESIZE_MODES.includes(resizeMode as ResizeMode)) {
    throw modelFileError(
      `invalid ${file}: "resize_mode" expected one of ${RESIZE_MODES.join(', ')}, but got ${JSON.stringify(resizeMode)}`,
    );
  }
  const fill = root['fill_color'] ?? 0;
  if (!Number.isInteger(fill) || (fill as number) < 0 || (fill as number) > 255) {
    throw modelFileError(`invalid ${file}: "fill_color" expected an integer 0–255, but got ${JSON.stringify(fill)}`);
  }
  const mode = root['mode'];
  if (mode !== undefined && mode !== 'RGB')
    throw modelFileError(`invalid ${file}: "mode" expected "RGB", but got ${JSON.stringify(mode)}`);
  return {
    doConvertRgb: true,
    doResize: true,
    shortestEdge: Math.min(height, width),
    resample,
    doCenterCrop: true,
    cropHeight: height,
    cropWidth: width,
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    imageMean: read.triple(root, 'mean', false) ?? [...OPENAI_MEAN],
    imageStd: read.triple(root, 'std', true) ?? [...OPENAI_STD],
    resizeMode: resizeMode as ResizeMode,
    fillColor: fill as number,
  };
}

/** Reads a directory in immich's layout into the common {@link ModelSpec}. Throws MODEL_UNAVAILABLE naming the file at fault. */
export async function loadImmichSpec(dir: string, precision: Precision): Promise<ModelSpec> {
  const root = path.resolve(dir);
  const abs = (file: string): string => path.join(root, ...file.split('/'));
  if (precision !== 'fp32') {
    throw modelFileError(
      `${root} is in immich's layout, which has only fp32 ONNX graphs (${IMMICH_VISUAL_MODEL}, ${IMMICH_TEXTUAL_MODEL}); ` +
        `CLIP_PRECISION=${precision} asks for a variant it does not have: set CLIP_PRECISION=fp32`,
    );
  }
  const [configJson, preprocessJson] = await Promise.all([
    readJsonFile(abs(IMMICH_CONFIG_FILE)),
    readJsonFile(abs(IMMICH_PREPROCESS_CFG)),
  ]);
  const config = parseOpenClipConfig(configJson, abs(IMMICH_CONFIG_FILE));
  const image = parseOpenClipPreprocessCfg(preprocessJson, abs(IMMICH_PREPROCESS_CFG));
  for (const file of [IMMICH_VISUAL_MODEL, IMMICH_TEXTUAL_MODEL, IMMICH_TOKENIZER_FILE]) {
    const stat = await fs.stat(abs(file)).catch(() => undefined);
    if (stat === undefined || !stat.isFile())
      throw modelFileError(`${abs(file)}: file is missing (immich layout: ${root})`);
    if (stat.size === 0)
      throw modelFileError(`${abs(file)} is empty (0 bytes): a truncated download? Delete it and retry`);
  }
  const architecture =
    typeof (configJson as Record<string, unknown>)['model_name'] === 'string'
      ? ((configJson as Record<string, unknown>)['model_name'] as string)
      : config.hfTokenizerName;
  return {
    layout: 'immich',
    dir: root,
    precision,
    image,
    text: {
      tokenizerDir: abs('textual'),
      resolve: ({ fixedLength, takesAttentionMask }) =>
        takesAttentionMask
          ? // M-CLIP: the root config is its image model's; the text side is read from textual/ only.
            { contextLength: fixedLength ?? MCLIP_CONTEXT_LENGTH, clean: undefined }
          : { contextLength: fixedLength ?? config.contextLength, clean: config.clean },
      padToContext: true,
    },
    graphs: { kind: 'towers', vision: abs(IMMICH_VISUAL_MODEL), text: abs(IMMICH_TEXTUAL_MODEL), combined: undefined },
    embeddingSize: config.embedDim,
    scoring: config.initLogitBias === undefined ? 'softmax' : 'sigmoid',
    architecture,
  };
}

/** The files every immich-layout model has; its listing names the rest (external data of any name). */
const IMMICH_CORE_FILES: readonly string[] = [
  IMMICH_CONFIG_FILE,
  IMMICH_VISUAL_MODEL,
  IMMICH_PREPROCESS_CFG,
  IMMICH_TEXTUAL_MODEL,
  IMMICH_TOKENIZER_FILE,
];

/**
 * What an immich-layout model needs from a repo: its fp32 graphs and every file its listing names under `visual/` and
 * `textual/` ({@link immichFilesToFetch}). Without a listing those names cannot be known, so a cached directory is
 * used as it is (files copied into the cache by hand).
 */
export function immichFilePlan(precision: Precision, listing: RepoListing | undefined): FilePlan {
  if (listing === undefined) return { kind: 'as-cached' };
  if (precision !== 'fp32') {
    const graphs = [IMMICH_VISUAL_MODEL, IMMICH_TEXTUAL_MODEL].filter((f) => listing.files.includes(f));
    return {
      kind: 'refuse',
      file: IMMICH_VISUAL_MODEL,
      reason:
        `is in immich's layout and has only fp32 ONNX graphs (${graphs.join(', ')}); ` +
        `CLIP_PRECISION=${precision} asks for a variant it does not have: set CLIP_PRECISION=fp32`,
    };
  }
  const missing = IMMICH_CORE_FILES.filter((f) => !listing.files.includes(f));
  if (missing.length > 0) {
    return {
      kind: 'refuse',
      file: missing[0]!,
      reason: `lacks ${missing.join(', ')} (immich layout; its listing at ${listing.url})`,
    };
  }
  return {
    kind: 'fetch',
    sets: [{ label: "immich's graphs", required: immichFilesToFetch(listing.files), optional: [] }],
  };
}

/** immich's layout, for the registry (index.ts). */
export const immichLayout: LayoutModule<'immich'> = {
  name: 'immich',
  looksLike: 'immich: visual/ + textual/',
  isLayoutDir: isImmichDir,
  loadSpec: loadImmichSpec,
  files: {
    inListing: isImmichListing,
    plan: immichFilePlan,
    // No file of the export holds the trained scale: it comes from the catalogue, the per-model option or scoring.ts.
    trainedScale: () => ({ files: [], needed: false }),
  },
};
