/**
 * A repo revision's file listing from the hub's model-info API, cached beside its files so that offline starts still
 * know the layout. Only a gated or private repo is an error here: without a listing (offline and not cached, or a
 * mirror without the API) the caller falls back to the file names a layout knows.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { silentLogger } from '../../logger.js';
import { LISTING_FILE, snapshotDir, type HubRepoRef } from './cacheLayout.js';
import { repoRevision, tokenOf, type HubClientOptions } from './hubContext.js';
import { causeText, HubError, tokenHint } from './hubError.js';
import { hubListingUrl, USER_AGENT } from './transport.js';

const UNAVAILABLE = 'file listing unavailable; falling back to the known file names';

/**
 * The files of a repo revision (`/`-separated paths), as the hub's model-info API lists them (its `siblings`);
 * undefined when they cannot be listed. A private or gated repo is a HubError `unauthorized`, as it would be for its
 * files.
 */
export async function fetchRepoListing(source: HubRepoRef, options: HubClientOptions): Promise<string[] | undefined> {
  const cached = path.join(snapshotDir(options.cacheDir, source), LISTING_FILE);
  const fromCache = await readCachedListing(cached);
  if (fromCache !== undefined) return fromCache;
  if (options.offline) return undefined;
  const logger = options.logger ?? silentLogger();
  const url = hubListingUrl(options.endpoint, source);
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
  const token = tokenOf(options);
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  let response: Response;
  try {
    response = await (options.fetch ?? globalThis.fetch)(url, {
      headers,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } catch (error) {
    logger.debug({ repo: source.repo, url, err: causeText(error) }, UNAVAILABLE);
    return undefined;
  }
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel();
    throw new HubError(
      'unauthorized',
      LISTING_FILE,
      url,
      `${repoRevision(source)} is gated or private (HTTP ${response.status} for its file listing at ${url}): ${tokenHint(token !== undefined)}`,
    );
  }
  if (!response.ok) {
    await response.body?.cancel();
    logger.debug({ repo: source.repo, url, status: response.status }, UNAVAILABLE);
    return undefined;
  }
  let files: string[];
  try {
    const body = (await response.json()) as { siblings?: { rfilename?: unknown }[] };
    files = (body.siblings ?? []).map((s) => s.rfilename).filter((f): f is string => typeof f === 'string');
  } catch (error) {
    logger.debug(
      { repo: source.repo, url, err: causeText(error) },
      'file listing unreadable; falling back to the known file names',
    );
    return undefined;
  }
  await writeCachedListing(cached, source, files);
  return files;
}

async function readCachedListing(cached: string): Promise<string[] | undefined> {
  const text = await fs.readFile(cached, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as { files?: unknown };
    if (Array.isArray(parsed.files) && parsed.files.every((f) => typeof f === 'string')) return parsed.files;
  } catch {
    // A torn listing is fetched again.
  }
  return undefined;
}

/** Written whole, then renamed, so a reader never sees half a listing. */
async function writeCachedListing(cached: string, source: HubRepoRef, files: readonly string[]): Promise<void> {
  await fs.mkdir(path.dirname(cached), { recursive: true });
  const temporary = `${cached}.tmp-${process.pid}`;
  await fs.writeFile(
    temporary,
    `${JSON.stringify({ repo: source.repo, revision: source.revision, files }, null, 2)}\n`,
  );
  await fs.rename(temporary, cached);
}
