/**
 * `npm run make-test-model -- --out DIR --preset tiny|vit-b-32 [--seed N] [--no-quantized]`
 * `npm run make-test-model -- --layout immich --out DIR --preset openclip-tiny|xlmr-tiny|siglip-tiny|mclip-tiny|openclip-vit-b-32
 *    [--external-data] [--dynamic] [--resize-mode shortest|squash|longest]`
 * `npm run make-test-model -- --layout hf-siglip --out DIR --preset siglip-tiny [--seed N]`
 *
 * Writes a random-weight CLIP model directory in the Hugging Face hub layout (scripts/model/makeTestModel.ts), in
 * immich's layout (scripts/model/immichModel.ts), or a SigLIP model in Hugging Face's layout (scripts/model/hfSiglipModel.ts). Importing this module only re-exports the generator; the CLI runs
 * when it is the process entry point.
 */
// First: ONNX Runtime's telemetry is off before anything below can load it.
import './ortTelemetry.js';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { makeTestModel, type MakeTestModelProgress, type ModelSummary } from './model/makeTestModel.js';
import { PRESET_NAMES, type PresetName } from './model/presets.js';
import { IMMICH_PRESET_NAMES, isImmichPresetName, makeImmichModel } from './model/immichModel.js';
import { makeHfSiglipModel } from './model/hfSiglipModel.js';
import { RESIZE_MODES, type ResizeMode } from '../src/clip/types.js';

export { GENERATOR_VERSION, makeTestModel } from './model/makeTestModel.js';
export type { MakeTestModelOptions, MakeTestModelProgress, ModelSummary, WrittenFile } from './model/makeTestModel.js';
export { countParameters, PRESETS, PRESET_NAMES } from './model/presets.js';
export {
  IMMICH_PRESETS,
  IMMICH_PRESET_NAMES,
  makeImmichModel,
  makeImmichModelAtomically,
} from './model/immichModel.js';
export type { ImmichModelSummary, ImmichPresetName, MakeImmichModelOptions } from './model/immichModel.js';
export { HF_SIGLIP_TEST_SCORING, makeHfSiglipModel } from './model/hfSiglipModel.js';
export type { HfSiglipModelSummary, MakeHfSiglipModelOptions } from './model/hfSiglipModel.js';
export type { ParameterCounts, PresetName } from './model/presets.js';

/** The one preset of the Hugging Face SigLIP layout (the tiny shapes with SigLIP's tokenizer and L = 64). */
const HF_SIGLIP_PRESET = 'siglip-tiny';

function formatBytes(bytes: number): string {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}

function formatCount(count: number): string {
  return count.toLocaleString('en-US');
}

function createProgressPrinter(): (event: MakeTestModelProgress) => void {
  let printedQuarter = -1;
  return (event) => {
    switch (event.phase) {
      case 'weights': {
        const share = event.doneParameters / event.totalParameters;
        const done = event.doneParameters === event.totalParameters;
        const line = `drawing weights ${String(Math.round(100 * share)).padStart(3)}% (${formatCount(event.doneParameters)} / ${formatCount(event.totalParameters)} parameters)`;
        // One self-overwriting line on a terminal; a line per quarter in a log.
        if (process.stderr.isTTY) {
          process.stderr.write(`\r${line}${done ? '\n' : ''}`);
        } else if (Math.floor(4 * share) > printedQuarter) {
          printedQuarter = Math.floor(4 * share);
          process.stderr.write(`${line}\n`);
        }
        return;
      }
      case 'file':
        process.stderr.write(
          `wrote ${event.file} (${formatBytes(event.bytes)}, ${(event.elapsedMs / 1000).toFixed(1)} s)\n`,
        );
        return;
    }
  };
}

function printSummary(summary: ModelSummary): void {
  const { parameters: p } = summary;
  const lines = [
    `CLIP test model "${summary.preset}" (seed ${summary.seed}, random weights) in ${summary.dir}`,
    ...summary.files.map((file) => `  ${file.path.padEnd(34)} ${formatBytes(file.bytes).padStart(10)}`),
    'parameters:',
    `  vision_model       ${formatCount(p.visionModel).padStart(12)}`,
    `  visual_projection  ${formatCount(p.visualProjection).padStart(12)}`,
    `  image tower        ${formatCount(p.imageTower).padStart(12)}  (${summary.imageTowerGflops.toFixed(2)} GFLOP per image)`,
    `  text_model         ${formatCount(p.textModel).padStart(12)}`,
    `  text_projection    ${formatCount(p.textProjection).padStart(12)}`,
    `  text tower         ${formatCount(p.textTower).padStart(12)}`,
    `  total (CLIPModel)  ${formatCount(p.total).padStart(12)}`,
    `done in ${(summary.elapsedMs / 1000).toFixed(1)} s`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function parseSeed(value: string): number {
  const seed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(seed))
    throw new InvalidArgumentError(`expected a non-negative integer, got ${value}`);
  return seed;
}

export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command()
    .name('make-test-model')
    .description("Write a random-weight CLIP model directory in the Hugging Face hub layout or in immich's layout.")
    .requiredOption('--out <dir>', 'output directory (created if missing)')
    .addOption(new Option('--layout <layout>', 'file layout').choices(['hf', 'immich', 'hf-siglip']).default('hf'))
    .addOption(
      new Option('--preset <name>', 'model shapes')
        .choices([...PRESET_NAMES, ...IMMICH_PRESET_NAMES])
        .makeOptionMandatory(),
    )
    .option('--seed <n>', 'PRNG seed: the same seed gives byte-identical files', parseSeed, 0)
    .option('--no-quantized', 'skip the int8 *_quantized.onnx variants (hf layout)')
    .option('--external-data', 'immich layout: store the larger weights as ONNX external data files beside model.onnx')
    .option('--dynamic', 'immich layout: an older export (dynamic batch, outputs image_embedding / text_embedding)')
    .addOption(
      new Option('--resize-mode <mode>', 'immich layout: preprocess_cfg.json resize_mode').choices(RESIZE_MODES),
    )
    .parse(argv);
  const options = program.opts<{
    out: string;
    layout: 'hf' | 'immich' | 'hf-siglip';
    preset: string;
    seed: number;
    quantized: boolean;
    externalData?: boolean;
    dynamic?: boolean;
    resizeMode?: ResizeMode;
  }>();
  // npm runs scripts from the package root; resolve --out against where the user typed the command.
  const out = path.resolve(process.env['INIT_CWD'] ?? process.cwd(), options.out);
  if (options.layout === 'hf-siglip') {
    if (options.preset !== HF_SIGLIP_PRESET)
      throw new InvalidArgumentError(`--layout hf-siglip takes --preset ${HF_SIGLIP_PRESET}, got ${options.preset}`);
    const summary = await makeHfSiglipModel({ out, seed: options.seed });
    process.stdout.write(
      `Hugging Face-layout SigLIP test model (${summary.embeddingSize}-d, L=${summary.contextLength}, seed ${options.seed}, random weights) in ${summary.dir}\n` +
        summary.files.map((file) => `  ${file}\n`).join(''),
    );
    return;
  }
  if (options.layout === 'immich') {
    if (!isImmichPresetName(options.preset))
      throw new InvalidArgumentError(
        `--layout immich takes --preset ${IMMICH_PRESET_NAMES.join('|')}, got ${options.preset}`,
      );
    const summary = await makeImmichModel({
      out,
      preset: options.preset,
      seed: options.seed,
      externalData: options.externalData === true,
      dynamic: options.dynamic === true,
      ...(options.resizeMode === undefined ? {} : { resizeMode: options.resizeMode }),
    });
    const lines = [
      `immich-layout test model "${summary.preset}" (${summary.family} tokenizer, ${summary.embeddingSize}-d, L=${summary.contextLength}, seed ${options.seed}, random weights) in ${summary.dir}`,
      ...summary.files.map((file) => `  ${file.path.padEnd(60)} ${formatBytes(file.bytes).padStart(10)}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return;
  }
  if (!(PRESET_NAMES as readonly string[]).includes(options.preset))
    throw new InvalidArgumentError(`--layout hf takes --preset ${PRESET_NAMES.join('|')}, got ${options.preset}`);
  const summary = await makeTestModel({
    out,
    preset: options.preset as PresetName,
    seed: options.seed,
    quantized: options.quantized,
    onProgress: createProgressPrinter(),
  });
  printSummary(summary);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(path.resolve(entry)).href) {
  main(process.argv).catch((error: unknown) => {
    process.stderr.write(`make-test-model: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
