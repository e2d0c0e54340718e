/**
 * Writes a complete random-weight CLIP model directory in the HF hub layout
 * (config.json, preprocessor_config.json, tokenizer files, onnx/{vision_model,text_model,model}[_quantized].onnx).
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildCombinedGraph, buildTextGraph, buildVisionGraph, IR_VERSION, OPSET_VERSION } from './clipGraphs.js';
import { createClipWeights } from './clipWeights.js';
import { configJson, preprocessorConfigJson } from './configFiles.js';
import { type Graph } from './onnxGraph.js';
import {
  countParameters,
  imageTowerFlops,
  isPresetName,
  PRESET_NAMES,
  PRESETS,
  type ParameterCounts,
  type PresetName,
} from './presets.js';
import { MICROSOFT_DOMAIN, quantizeDynamic, usesMicrosoftDomain, type QuantizationCache } from './quantizeDynamic.js';
import { loadClipVocabulary, tokenizerFiles } from './tokenizerFiles.js';
import { writeOnnxModel, type OnnxModel } from './writeOnnxModel.js';

/** Bump when the generated files change for the same preset and seed (test/setup/models.ts regenerates on a change). */
export const GENERATOR_VERSION = 1;

export type MakeTestModelProgress =
  | { phase: 'weights'; doneParameters: number; totalParameters: number }
  | { phase: 'file'; file: string; bytes: number; elapsedMs: number };

export interface MakeTestModelOptions {
  /** Output directory; created if missing. Existing files of the same names are replaced. */
  out: string;
  preset: PresetName;
  /** PRNG seed (non-negative integer); the same seed gives byte-identical files. Default 0. */
  seed?: number;
  /** Also write the int8 `*_quantized.onnx` variants. Default true. */
  quantized?: boolean;
  /** Called after weights are drawn (in steps) and after each file is written. */
  onProgress?: (event: MakeTestModelProgress) => void;
}

export interface WrittenFile {
  /** Relative to the model directory, `/`-separated (`onnx/model.onnx`). */
  path: string;
  bytes: number;
}

export interface ModelSummary {
  dir: string;
  preset: PresetName;
  seed: number;
  quantized: boolean;
  parameters: ParameterCounts;
  /** FLOPs of one image through the image tower (matrix products), in GFLOP. */
  imageTowerGflops: number;
  files: WrittenFile[];
  elapsedMs: number;
}

/** Writes a text file via a temporary name, so a concurrent reader never sees half of it. */
async function writeTextFile(file: string, content: string): Promise<number> {
  const temporary = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(temporary, content);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return Buffer.byteLength(content);
}

function toOnnxModel(graph: Graph): OnnxModel {
  return {
    graph,
    irVersion: IR_VERSION,
    opsetImports: [
      { domain: '', version: OPSET_VERSION },
      ...(usesMicrosoftDomain(graph) ? [{ domain: MICROSOFT_DOMAIN, version: 1 }] : []),
    ],
    producerName: 'clip-classify-server make-test-model',
    producerVersion: String(GENERATOR_VERSION),
  };
}

/** Generates the model directory described by `options`; see the module comment. */
export async function makeTestModel(options: MakeTestModelOptions): Promise<ModelSummary> {
  const started = performance.now();
  const { out, onProgress } = options;
  const seed = options.seed ?? 0;
  const quantized = options.quantized ?? true;
  if (!isPresetName(options.preset))
    throw new TypeError(`Expected preset to be one of ${PRESET_NAMES.join(', ')}, got ${String(options.preset)}`);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new TypeError(`Expected seed to be a non-negative integer, got ${seed}`);
  const preset = PRESETS[options.preset];

  const files: WrittenFile[] = [];
  let fileStarted = performance.now();
  const record = (file: string, bytes: number): void => {
    files.push({ path: file, bytes });
    onProgress?.({ phase: 'file', file, bytes, elapsedMs: performance.now() - fileStarted });
    fileStarted = performance.now();
  };

  await mkdir(path.join(out, 'onnx'), { recursive: true });
  const generator = { generator: 'npm run make-test-model', version: GENERATOR_VERSION, preset: preset.name, seed };
  const textFiles: Record<string, string> = {
    'config.json': configJson(preset, generator),
    'preprocessor_config.json': preprocessorConfigJson(preset),
    ...tokenizerFiles(loadClipVocabulary(), preset.text.maxPositionEmbeddings),
  };
  for (const [name, content] of Object.entries(textFiles))
    record(name, await writeTextFile(path.join(out, name), content));

  // Report weight progress in ~5% steps: per tensor would be thousands of calls for vit-b-32.
  let reportedShare = -1;
  const weights = createClipWeights(preset, seed, (doneParameters, totalParameters) => {
    const share = Math.floor((20 * doneParameters) / totalParameters);
    if (share === reportedShare) return;
    reportedShare = share;
    onProgress?.({ phase: 'weights', doneParameters, totalParameters });
  });
  const parameters = countParameters(preset);
  const drawn = [...weights.values()].reduce((sum, tensor) => sum + tensor.data.length, 0);
  if (drawn !== parameters.total)
    throw new Error(`Drew ${drawn} parameters but ${preset.name} should have ${parameters.total}`);
  fileStarted = performance.now();

  const cache: QuantizationCache = new Map();
  const graphs: [string, (p: typeof preset, w: typeof weights) => Graph][] = [
    ['vision_model', buildVisionGraph],
    ['text_model', buildTextGraph],
    ['model', buildCombinedGraph],
  ];
  for (const [name, build] of graphs) {
    const graph = build(preset, weights);
    const file = `onnx/${name}.onnx`;
    record(file, await writeOnnxModel(path.join(out, file), toOnnxModel(graph)));
    if (quantized) {
      const quantizedFile = `onnx/${name}_quantized.onnx`;
      record(
        quantizedFile,
        await writeOnnxModel(path.join(out, quantizedFile), toOnnxModel(quantizeDynamic(graph, cache))),
      );
    }
  }

  return {
    dir: path.resolve(out),
    preset: preset.name,
    seed,
    quantized,
    parameters,
    imageTowerGflops: imageTowerFlops(preset) / 1e9,
    files,
    elapsedMs: performance.now() - started,
  };
}
