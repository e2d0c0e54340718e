/**
 * The layout registry: every model file layout the server reads, which one a directory or a hub listing is in, and
 * its {@link ModelSpec}. A new layout is one module exporting a {@link LayoutModule} plus one entry in {@link LAYOUTS};
 * the hub reads each layout's files from that declaration.
 */
import path from 'node:path';
import type { Precision } from '../types.js';
import { hfClipLayout } from './hfClip.js';
import { hfSiglipLayout } from './hfSiglip.js';
import { immichLayout } from './immich.js';
import { modelFileError } from './jsonFields.js';
import type { LayoutModule } from './layoutModule.js';
import type { LayoutName, ModelSpec } from './modelSpec.js';

export type { FilePlan, FileSet, LayoutFiles, LayoutModule, RepoListing } from './layoutModule.js';
export type { GraphFiles, LayoutName, ModelSpec, TextCleanName, TextSpec } from './modelSpec.js';

/**
 * Every layout, in the order a directory or a listing is matched against them: immich's graphs are unmistakable, and
 * SigLIP's files are CLIP's but for config.json's `model_type`, so SigLIP is asked before CLIP.
 */
export const LAYOUTS = [immichLayout, hfSiglipLayout, hfClipLayout] as const;

/** What a directory or listing in no known layout is read as, so that its errors name the files looked for. */
export const FALLBACK_LAYOUT: LayoutModule<LayoutName> = hfClipLayout;

export const LAYOUT_NAMES: readonly LayoutName[] = LAYOUTS.map((layout) => layout.name);

/** The layout a directory is in: the first that recognises it, or undefined. */
export async function recognisedLayout(dir: string): Promise<LayoutModule<LayoutName> | undefined> {
  for (const layout of LAYOUTS) if (await layout.isLayoutDir(dir)) return layout;
  return undefined;
}

/** The layout a directory is read as: the one that recognises it, else the fallback (Hugging Face CLIP). */
export async function detectLayout(dir: string): Promise<LayoutName> {
  return ((await recognisedLayout(dir)) ?? FALLBACK_LAYOUT).name;
}

/** The layout a hub repo's file listing is in: the first that recognises it, else the fallback. */
export function layoutOfListing(files: readonly string[]): LayoutModule<LayoutName> {
  return LAYOUTS.find((layout) => layout.files.inListing(files)) ?? FALLBACK_LAYOUT;
}

/** Reads a model directory, in whichever layout it is, into a {@link ModelSpec}. */
export async function loadModelSpec(dir: string, precision: Precision): Promise<ModelSpec> {
  const layout = await recognisedLayout(dir);
  if (layout !== undefined) return layout.loadSpec(dir, precision);
  // The fallback's error names the files it looked for; the layouts' shapes say what else was possible.
  return FALLBACK_LAYOUT.loadSpec(dir, precision).catch((error: unknown) => {
    const shapes = LAYOUTS.map((known) => known.looksLike).join(', ');
    throw modelFileError(`${path.resolve(dir)} is in no known layout (${shapes}): ${(error as Error).message}`, error);
  });
}
