/**
 * Stopping models nobody uses (MODEL_IDLE_STOP_SECONDS): a timer checks the ready models' idle times and stops those
 * past the limit; a stopped model starts again on its next job.
 */
import type { Logger } from '../logger.js';
import type { ModelSlot } from './ModelSlot.js';

/** Checks per idle period: a model is stopped at most a quarter of its idle time later than due. */
const CHECKS_PER_IDLE_PERIOD = 4;

/** The shortest time between checks, so a tiny idle time does not turn the timer into a busy loop. */
const MIN_CHECK_INTERVAL_MS = 250;

export interface IdleStopsOptions {
  /** See MODEL_IDLE_STOP_SECONDS; 0: never. */
  idleStopSeconds: number;
  /** The slots to watch, read at each check. */
  slots: () => Iterable<ModelSlot>;
  /** True once the service stops: nothing more is stopped for being idle. */
  stopping: () => boolean;
  logger: Logger;
}

export class IdleStops {
  readonly #options: IdleStopsOptions;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: IdleStopsOptions) {
    const idle = options.idleStopSeconds;
    if (!Number.isFinite(idle) || idle < 0)
      throw new TypeError(`Expected idleStopSeconds to be a number >= 0, got ${idle}`);
    this.#options = options;
  }

  /** Starts the checks (none when idle stops are off). */
  start(): void {
    const idleMs = this.#options.idleStopSeconds * 1000;
    if (idleMs <= 0 || this.#timer !== null) return;
    this.#timer = setInterval(
      () => void this.stopIdleModels(),
      Math.max(MIN_CHECK_INTERVAL_MS, idleMs / CHECKS_PER_IDLE_PERIOD),
    );
    this.#timer.unref();
  }

  /** Ends the checks. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Stops every model idle for `idleStopSeconds` or longer; resolves with their names once they are stopped. */
  async stopIdleModels(): Promise<string[]> {
    const idleMs = this.#options.idleStopSeconds * 1000;
    if (idleMs <= 0 || this.#options.stopping()) return [];
    const idle = [...this.#options.slots()].filter((slot) => slot.status === 'ready' && slot.idleMs() >= idleMs);
    for (const slot of idle)
      this.#options.logger.info(
        { model: slot.name, idleSeconds: Math.round(slot.idleMs() / 1000) },
        'stopping an idle model',
      );
    await Promise.all(idle.map((slot) => slot.stop()));
    return idle.map((slot) => slot.name);
  }
}
