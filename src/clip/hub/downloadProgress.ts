/** Download progress: a cli-progress bar per large file on stderr, or periodic log lines when there is no terminal. */
import cliProgress from 'cli-progress';
import type { Logger } from '../../logger.js';

export interface FileProgress {
  update(bytes: number): void;
  done(): void;
}

/** How often a download without a bar logs how far it is. */
const LOG_EVERY_MS = 10_000;
/** Files smaller than this download too quickly to be worth watching. */
const SMALL_FILE_BYTES = 1024 * 1024;

/** One cli-progress bar per file of SMALL_FILE_BYTES or more on stderr, or (no bar) a log line at its start and every LOG_EVERY_MS. */
export class ProgressReporter {
  #multibar: cliProgress.MultiBar | undefined;

  constructor(
    private readonly bar: boolean,
    private readonly logger: Logger,
  ) {}

  start(file: string, total: number | undefined, startBytes: number): FileProgress {
    // The JSON files take no time worth watching: no bar, no log line for them.
    if (total !== undefined && total < SMALL_FILE_BYTES) return { update: () => undefined, done: () => undefined };
    if (this.bar) {
      this.#multibar ??= new cliProgress.MultiBar(
        {
          stream: process.stderr,
          format: ' {bar} {percentage}% | {done} / {size} | {file}',
          hideCursor: true,
          clearOnComplete: false,
          // Asked for explicitly on a non-TTY: print lines. Never install signal handlers in a server.
          noTTYOutput: process.stderr.isTTY !== true,
          gracefulExit: false,
        },
        cliProgress.Presets.shades_classic,
      );
      const totalBytes = total ?? 0;
      const payload = (bytes: number) => ({
        file,
        done: formatBytes(bytes),
        size: total === undefined ? '?' : formatBytes(total),
      });
      const bar = this.#multibar.create(totalBytes, startBytes, payload(startBytes));
      return {
        update: (bytes) => bar.update(Math.min(bytes, totalBytes || bytes), payload(bytes)),
        done: () => bar.stop(),
      };
    }
    const t0 = Date.now();
    let lastLog = t0;
    this.logger.info({ file, bytes: total, resumeFrom: startBytes || undefined }, 'downloading model file');
    return {
      update: (bytes) => {
        const now = Date.now();
        if (now - lastLog < LOG_EVERY_MS) return;
        lastLog = now;
        const percent = total === undefined ? undefined : Math.round((100 * bytes) / total);
        this.logger.info({ file, bytes, total, percent }, 'downloading model file');
      },
      done: () => undefined,
    };
  }

  stop(): void {
    this.#multibar?.stop();
    this.#multibar = undefined;
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
