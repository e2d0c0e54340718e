/**
 * The shape every layout module exports, and all that the registry (index.ts) and the hub know of a layout: how its
 * directories are recognised and read, and which files of a hub repo it needs. The hub downloads from this
 * declaration alone, so a new layout changes no hub code.
 */
import type { Precision } from '../types.js';
import type { ModelSpec } from './modelSpec.js';

/** A model file layout: one module per layout, one line in the registry (index.ts). */
export interface LayoutModule<Name extends string = string> {
  /** The name models report (`ModelInfo.layout`). */
  readonly name: Name;
  /** How its directories look, for the error about a directory in no known layout (`immich: visual/ + textual/`). */
  readonly looksLike: string;
  /** Whether a model directory is in this layout. The registry asks the layouts in its order. */
  isLayoutDir(dir: string): Promise<boolean>;
  /** Reads a directory in this layout into the common {@link ModelSpec}; MODEL_UNAVAILABLE naming the file at fault. */
  loadSpec(dir: string, precision: Precision): Promise<ModelSpec>;
  /** The files a model in this layout needs from a hub repo. */
  readonly files: LayoutFiles;
}

/** A repo revision's files as the hub's model-info API lists them, and where that listing was read (for errors). */
export interface RepoListing {
  files: readonly string[];
  url: string;
}

/** Which files of a hub repo a layout needs; the hub reads this through the registry and downloads accordingly. */
export interface LayoutFiles {
  /** Whether a repo whose listing names these files is in this layout (the registry asks the layouts in its order). */
  inListing(files: readonly string[]): boolean;
  /**
   * What to download for a model at `precision`. With the repo's listing, the one file set the listing has (or why
   * there is none); without a listing (offline with an older cache, a mirror without the API), every set the model
   * can run from, best first, which the hub tries in turn.
   */
  plan(precision: Precision, listing: RepoListing | undefined): FilePlan;
  /**
   * Where the trained logit scale is, when the configs do not give it: optional files (a combined graph) fetched when
   * a caller asks for them, and whether they are its only source in this layout (`needed`).
   */
  trainedScale(precision: Precision): { files: readonly string[]; needed: boolean };
}

/** A set of files a model can run from. */
export interface FileSet {
  /** How errors name this set: `the two towers`, `the combined graph`. */
  label: string;
  /** `/`-separated repo paths; any one missing is an error. */
  required: readonly string[];
  /** Read when present (tokenizer extras); a repo without them is fine. */
  optional: readonly string[];
}

/**
 * The hub's instructions: `fetch` the first of these sets it can have; `refuse` with a reason (after the repo's name)
 * and the file it is about; or use the cached directory `as-cached`, when the files can be known only from a listing.
 */
export type FilePlan =
  | { kind: 'fetch'; sets: readonly FileSet[] }
  | { kind: 'refuse'; file: string; reason: string }
  | { kind: 'as-cached' };
