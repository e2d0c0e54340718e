/**
 * A model's files at a precision, in whichever layout its repo is: the repo's file listing picks the layout in the
 * layout registry, and the layout's declaration names the files (layouts/layoutModule.ts). Nothing here knows a
 * layout's file names.
 */
import {
  FALLBACK_LAYOUT,
  layoutOfListing,
  recognisedLayout,
  type FileSet,
  type LayoutModule,
} from '../layouts/index.js';
import type { Precision } from '../types.js';
import { snapshotDir, type HubRepoRef } from './cacheLayout.js';
import { fetchModel } from './fetchModel.js';
import { repoRevision, type HubClientOptions } from './hubContext.js';
import { HubError } from './hubError.js';
import { fetchRepoListing } from './listing.js';
import { hubListingUrl } from './transport.js';

/** Options of {@link fetchModelFiles}: how to reach the hub, and whether to fetch the trained scale's files too. */
export interface FetchModelFilesOptions extends HubClientOptions {
  /**
   * Also fetch the optional files that hold the trained logit scale (a combined graph, as large as both towers
   * together): `always`, `never`, or `when-needed`: when the layout's configs hold no trained scale (a SigLIP
   * export's is in its combined graph alone). Default `never`.
   */
  withScaleFiles?: 'always' | 'when-needed' | 'never';
}

/**
 * Fetches what a model needs at a precision and returns its local directory, to be read with
 * `loadModelSpec(dir, precision)`. Throws a {@link HubError} naming the file, the URL and why; a precision the repo
 * lacks is an error naming what it has, before any download.
 */
export async function fetchModelFiles(
  source: HubRepoRef,
  precision: Precision,
  options: FetchModelFilesOptions,
): Promise<string> {
  const { withScaleFiles = 'never', ...hub } = options;
  const dir = snapshotDir(hub.cacheDir, source);
  const files = await fetchRepoListing(source, hub);
  const listing = files === undefined ? undefined : { files, url: hubListingUrl(hub.endpoint, source) };
  const layout = listing !== undefined ? layoutOfListing(listing.files) : await unlistedLayout(dir, hub.offline);
  const plan = layout.files.plan(precision, listing);
  switch (plan.kind) {
    case 'refuse':
      throw new HubError('not-found', plan.file, listing?.url, `${repoRevision(source)} ${plan.reason}`);
    case 'as-cached':
      return dir;
    case 'fetch':
      break;
  }
  const fetchSet = (set: FileSet, extra: readonly string[] = []): Promise<string> =>
    fetchModel(source, { ...hub, files: set.required, optionalFiles: [...set.optional, ...extra] });
  const scaleFiles = layout.files.trainedScale(precision).files;
  const { dir: fetched, set } = await fetchFirstSet(
    plan.sets,
    (candidate) => fetchSet(candidate, withScaleFiles === 'always' ? scaleFiles : []),
    `${repoRevision(source)} has no ${precision} graphs`,
  );
  if (withScaleFiles !== 'when-needed') return fetched;
  // The layout the files turn out to be in decides (a SigLIP export's listing is CLIP's; its config.json tells).
  const scale = (await recognisedLayout(fetched))?.files.trainedScale(precision);
  if (scale?.needed !== true || scale.files.every((file) => set.required.includes(file))) return fetched;
  // Complete files are not fetched again, so this costs only the scale's files.
  return fetchSet(set, scale.files);
}

/**
 * The layout of a repo without a listing: offline, the one its cached directory is in (files put into the cache by
 * hand); otherwise the registry's fallback, whose file names are tried.
 */
async function unlistedLayout(dir: string, offline: boolean): Promise<LayoutModule> {
  return (offline ? await recognisedLayout(dir) : undefined) ?? FALLBACK_LAYOUT;
}

/**
 * Fetches the first set of files the repo has, trying them in order: a set is passed over when a file no other set
 * needs is not found (or, offline, not cached). When none is had, the error names what each set lacked.
 */
async function fetchFirstSet(
  sets: readonly FileSet[],
  fetchSet: (set: FileSet) => Promise<string>,
  noneMessage: string,
): Promise<{ dir: string; set: FileSet }> {
  const missing: { set: FileSet; error: HubError }[] = [];
  for (const [index, set] of sets.entries()) {
    try {
      return { dir: await fetchSet(set), set };
    } catch (error) {
      const ownFile =
        error instanceof HubError && !sets.some((other) => other !== set && other.required.includes(error.file));
      if (!ownFile) throw error;
      missing.push({ set, error });
      if (index < sets.length - 1) {
        if (error.reason !== 'not-found' && error.reason !== 'offline-miss') throw error;
        continue;
      }
      if (missing.length === 1) throw error;
      const [first, ...others] = missing as [(typeof missing)[number], ...typeof missing];
      const lacks = others.map((other) => `; and ${other.set.label}: ${other.error.message}`).join('');
      throw new HubError(
        error.reason,
        error.file,
        error.url,
        `${noneMessage}: ${first.error.message}${lacks}`,
        false,
        error,
      );
    }
  }
  throw new TypeError('Expected a file plan with at least one set');
}
