/**
 * Which layout a model directory is in, decided from its files, and its {@link ModelSpec}. A new layout is one
 * module beside hfClip.ts, hfSiglip.ts and immich.ts plus one line here.
 */
import path from 'node:path';
import type { Precision } from '../types.js';
import { isHfClipDir, loadHfClipSpec, modelFileError } from './hfClip.js';
import { isHfSiglipDir, loadHfSiglipSpec } from './hfSiglip.js';
import { isImmichDir, loadImmichSpec } from './immich.js';
import type { LayoutName, ModelSpec } from './modelSpec.js';

export type { GraphFiles, LayoutName, ModelSpec, TextCleanName, TextSpec } from './modelSpec.js';
export { LAYOUT_NAMES } from './modelSpec.js';

/**
 * The layout of a directory: immich's when it has `visual/` or `textual/` graphs; else Hugging Face's, SigLIP's when
 * its config.json says `model_type: "siglip"`, CLIP's otherwise.
 */
export async function detectLayout(dir: string): Promise<LayoutName> {
  if (await isImmichDir(dir)) return 'immich';
  if (await isHfSiglipDir(dir)) return 'hf-siglip';
  return 'hf-clip';
}

/** Reads a model directory, in whichever layout it is, into a {@link ModelSpec}. */
export async function loadModelSpec(dir: string, precision: Precision): Promise<ModelSpec> {
  const layout = await detectLayout(dir);
  switch (layout) {
    case 'immich':
      return loadImmichSpec(dir, precision);
    case 'hf-siglip':
      return loadHfSiglipSpec(dir, precision);
    case 'hf-clip':
      // A directory in neither layout gets hfClip's message, which names the files it looked for.
      if (!(await isHfClipDir(dir)))
        await loadHfClipSpec(dir, precision).catch((error: unknown) => {
          throw modelFileError(
            `${path.resolve(dir)} is in no known layout (Hugging Face CLIP: onnx/…, immich: visual/ + textual/): ${(error as Error).message}`,
            error,
          );
        });
      return loadHfClipSpec(dir, precision);
  }
}
