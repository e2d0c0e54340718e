/**
 * How to reach the hub and where to keep its files: the options every hub call takes (the settings layer maps the
 * environment onto them; nothing here reads `process.env`), checked once into the context the downloads share.
 */
import { AppError, ErrorCode } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';
import type { HubRepoRef } from './cacheLayout.js';
import { ProgressReporter } from './downloadProgress.js';

/** Retries of a file after a network failure, an interrupted body or a 5xx, each resuming. */
const DOWNLOAD_RETRIES = 3;
/** Pause before retry n is n × this. */
const RETRY_DELAY_MS = 1000;

/** What every hub call takes. */
export interface HubClientOptions {
  /** Root of the download cache (see MODEL_CACHE_DIR). */
  cacheDir: string;
  /** Hub base URL (see HF_ENDPOINT). */
  endpoint: string;
  /** Sent as `Authorization: Bearer …` to the hub's origin only, never logged (HF_TOKEN). */
  token?: string | undefined;
  /** Use the cache only; never touch the network (see HF_HUB_OFFLINE). */
  offline: boolean;
  /** A progress bar on stderr for large files; false → log lines only (see DOWNLOAD_PROGRESS). */
  progress: boolean;
  /** Default: silent. */
  logger?: Logger;
  /** Injectable for tests; default the global fetch. */
  fetch?: typeof fetch;
  /** Aborts this call; a download shared with another caller goes on while anyone still waits for it. */
  signal?: AbortSignal;
  /** Retries of a file after a network failure, an interrupted body or a 5xx, each resuming. Default DOWNLOAD_RETRIES. */
  maxRetries?: number;
  /** Pause before retry n is n × this. Default RETRY_DELAY_MS. */
  retryDelayMs?: number;
}

/** One call's options, checked, with the repo and its snapshot directory. */
export interface HubContext {
  source: HubRepoRef;
  dir: string;
  endpoint: string;
  token: string | undefined;
  offline: boolean;
  fetch: typeof fetch;
  logger: Logger;
  maxRetries: number;
  retryDelayMs: number;
  progress: ProgressReporter;
}

/** `owner/name@revision`, as messages name a repo revision. */
export function repoRevision(source: HubRepoRef): string {
  return `${source.repo}@${source.revision}`;
}

/** An empty token is none. */
export function tokenOf(options: Pick<HubClientOptions, 'token'>): string | undefined {
  return options.token === '' ? undefined : options.token;
}

export function createContext(source: HubRepoRef, dir: string, options: HubClientOptions): HubContext {
  const maxRetries = options.maxRetries ?? DOWNLOAD_RETRIES;
  const retryDelayMs = options.retryDelayMs ?? RETRY_DELAY_MS;
  if (!Number.isInteger(maxRetries) || maxRetries < 0)
    throw new TypeError(`Expected maxRetries to be an integer >= 0, got ${maxRetries}`);
  if (!(retryDelayMs >= 0)) throw new TypeError(`Expected retryDelayMs to be >= 0, got ${retryDelayMs}`);
  try {
    new URL(options.endpoint);
  } catch {
    throw new AppError(ErrorCode.BadUserInput, `hub endpoint: expected an http(s) URL, but got "${options.endpoint}"`, {
      field: 'HF_ENDPOINT',
    });
  }
  const logger = options.logger ?? silentLogger();
  return {
    source,
    dir,
    endpoint: options.endpoint,
    token: tokenOf(options),
    offline: options.offline,
    fetch: options.fetch ?? globalThis.fetch,
    logger,
    maxRetries,
    retryDelayMs,
    progress: new ProgressReporter(options.progress, logger),
  };
}
