/**
 * One configured model as a runtime resource: it is started (files fetched, sessions loaded, warmed up), runs jobs,
 * and is stopped (its running inference finished, then its ONNX sessions, worker threads and caches released), as
 * often as asked. ClipService owns one slot per configured model; the slot owns the lifecycle and nothing else.
 *
 *   uninitialized ─start→ starting ─files ready→ loading ─warmed→ running ─stop→ stopping ─released→ stopped
 *        (any start that throws → failed; start from stopped or failed begins again; stop from failed → stopped)
 *
 * A job's inference (`use`) on a model that is not running starts it and waits, except on a failed model: a load that
 * failed is not retried by every job, only by an explicit start.
 */
import { AppError, ErrorCode, UnreachableCaseError } from '../errors.js';
import type { ClipModel } from './ClipModel.js';
import type { LoadPolicy } from '../config.js';
import type { ModelInfo, ModelStatus } from './types.js';

/** What starting a model does: fetch its files (calling `onLoading` once they are local), then load and warm it. */
export type ModelLoader = (onLoading: () => void) => Promise<ClipModel>;

type SlotState =
  | { phase: 'uninitialized' }
  | { phase: 'starting'; started: Promise<void> }
  | { phase: 'loading'; started: Promise<void> }
  | { phase: 'running'; model: ClipModel }
  | { phase: 'stopping'; model: ClipModel; stopped: Promise<void> }
  | { phase: 'stopped' }
  | { phase: 'failed'; error: string; failure: unknown };

export interface ModelSlotOptions {
  /** The model's name and its metadata before it was ever loaded. */
  info: ModelInfo;
  load: LoadPolicy;
  loader: ModelLoader;
  /** What a client may read of a load failure (server paths removed). */
  describeFailure: (error: unknown) => string;
  /** Milliseconds since some epoch, for idle times. */
  clock: () => number;
  onChange: (info: ModelInfo) => void;
}

export class ModelSlot {
  readonly name: string;
  readonly load: LoadPolicy;
  readonly #options: ModelSlotOptions;
  #state: SlotState = { phase: 'uninitialized' };
  /** Metadata of the last successful load, kept while stopped so `models` still describes the model. */
  #info: ModelInfo;
  /** Set by `close`: the service is shutting down and nothing may start again. */
  #closed = false;
  #inFlight = 0;
  #idleWaiters: (() => void)[] = [];
  #lastUsedMs: number;
  #hasRun = false;

  constructor(options: ModelSlotOptions) {
    this.#options = options;
    this.name = options.info.name;
    this.load = options.load;
    this.#info = options.info;
    this.#lastUsedMs = options.clock();
  }

  get status(): ModelStatus {
    const { phase } = this.#state;
    return phase === 'running' ? 'ready' : phase;
  }

  info(): ModelInfo {
    const state = this.#state;
    return {
      ...this.#info,
      status: this.status,
      error: state.phase === 'failed' ? state.error : null,
      load: this.load,
    };
  }

  /** Why the last start failed, as thrown (for the operator's log and start()'s cause); undefined unless failed. */
  get failure(): unknown {
    return this.#state.phase === 'failed' ? this.#state.failure : undefined;
  }

  /** True once the model has been running at least once. */
  get hasRun(): boolean {
    return this.#hasRun;
  }

  /**
   * Whether the server may serve with this slot as its default model: yes unless it failed, or is eager and has not
   * finished its first load. A stopped (or lazy, not yet started) model leaves the server ready: its next job starts it.
   */
  readinessAsDefault(): { ready: boolean; reason: string | null } {
    const info = this.info();
    switch (info.status) {
      case 'ready':
      case 'stopping':
      case 'stopped':
        return { ready: true, reason: null };
      case 'uninitialized':
      case 'starting':
      case 'loading':
        return this.hasRun || this.load === 'lazy'
          ? { ready: true, reason: null }
          : { ready: false, reason: `loading the default model ${info.name}` };
      case 'failed':
        return { ready: false, reason: `the default model ${info.name} failed to load: ${info.error}` };
      default:
        throw new UnreachableCaseError(info.status);
    }
  }

  /** The model while it holds sessions (running, or stopping with inference in flight). */
  get model(): ClipModel | undefined {
    const state = this.#state;
    return state.phase === 'running' || state.phase === 'stopping' ? state.model : undefined;
  }

  /** Inference calls running on the model now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** How long, in ms by the slot's clock, the model has run nothing; 0 while it runs something or is not running. */
  idleMs(): number {
    if (this.#state.phase !== 'running' || this.#inFlight > 0) return 0;
    return this.#options.clock() - this.#lastUsedMs;
  }

  /**
   * Starts the model unless it is running or starting; resolves once it runs, or once the start failed (the failure
   * is then the slot's state). Idempotent. A start while stopping waits for the stop, then starts again.
   */
  async start(): Promise<void> {
    for (;;) {
      const state = this.#state;
      switch (state.phase) {
        case 'running':
          return;
        case 'starting':
        case 'loading':
          return state.started;
        case 'stopping':
          await state.stopped;
          continue;
        case 'uninitialized':
        case 'stopped':
        case 'failed':
          if (this.#closed) return;
          return this.#begin();
        default:
          throw new UnreachableCaseError(state);
      }
    }
  }

  #begin(): Promise<void> {
    const started = (async () => {
      // Let the state below be set before the loader can report progress.
      await Promise.resolve();
      try {
        const model = await this.#options.loader(() => {
          if (this.#state.phase === 'starting') {
            this.#state = { phase: 'loading', started };
            this.#changed();
          }
        });
        this.#hasRun = true;
        this.#lastUsedMs = this.#options.clock();
        this.#info = {
          ...this.#info,
          embeddingSize: model.embeddingSize,
          contextLength: model.contextLength,
          imageSize: model.imageSize,
          logitScale: model.logitScale,
          scoring: model.scoring.kind,
          logitBias: model.logitBias ?? null,
          layout: model.layout,
          sessionBytes: model.sessionBytes,
        };
        if (this.#closed) {
          // The service stopped while this model loaded: release it at once.
          const stopped = model.stop().then(() => {
            this.#state = { phase: 'stopped' };
          });
          this.#state = { phase: 'stopping', model, stopped };
          await stopped;
        } else {
          this.#state = { phase: 'running', model };
        }
      } catch (error) {
        this.#state = { phase: 'failed', error: this.#options.describeFailure(error), failure: error };
      }
      this.#changed();
    })();
    this.#state = { phase: 'starting', started };
    this.#changed();
    return started;
  }

  /**
   * Stops the model: new inference waits, the running inference finishes, then the sessions, their worker threads
   * and the caches are released. Resolves once stopped. Idempotent; a stop during a start waits for the start.
   */
  async stop(): Promise<void> {
    for (;;) {
      const state = this.#state;
      switch (state.phase) {
        case 'stopped':
          return;
        case 'stopping':
          return state.stopped;
        case 'starting':
        case 'loading':
          await state.started;
          continue;
        case 'uninitialized':
        case 'failed':
          this.#state = { phase: 'stopped' };
          this.#changed();
          return;
        case 'running': {
          const { model } = state;
          const stopped = (async () => {
            // The inference in flight may wait in a batch for up to MAX_BATCH_WAIT_MS: it runs now.
            model.hurry();
            await this.#whenIdle();
            await model.stop();
            this.#state = { phase: 'stopped' };
            this.#changed();
          })();
          this.#state = { phase: 'stopping', model, stopped };
          this.#changed();
          return stopped;
        }
        default:
          throw new UnreachableCaseError(state);
      }
    }
  }

  /** The service is shutting down: stops the model for good (a start under way finishes, then is released). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.stop();
  }

  /** Rejects queued inference with `reason`, waits for the runs in flight, then releases the sessions. */
  async abort(reason: Error): Promise<void> {
    this.#closed = true;
    await this.model?.abort(reason);
  }

  /**
   * Waits until the model runs, starting it when it is not running (a lazy or stopped model). Throws
   * MODEL_UNAVAILABLE when it failed to load (with the reason) or the service is shutting down.
   */
  async ready(): Promise<ClipModel> {
    for (;;) {
      const state = this.#state;
      switch (state.phase) {
        case 'running':
          return state.model;
        case 'failed':
          throw new AppError(ErrorCode.ModelUnavailable, `The model ${this.name} is not available: ${state.error}`);
        case 'starting':
        case 'loading':
        case 'stopping':
        case 'uninitialized':
        case 'stopped':
          if (this.#closed)
            throw new AppError(
              ErrorCode.ShuttingDown,
              `The model ${this.name} is not available: the server is shutting down`,
            );
          await this.start();
          continue;
        default:
          throw new UnreachableCaseError(state);
      }
    }
  }

  /** Runs `work` on the running model (starting it first if needed); a stop waits for it to finish. */
  async use<T>(work: (model: ClipModel) => Promise<T>): Promise<T> {
    let model = await this.ready();
    // A stop may have begun while `ready` resumed: counted only if still running, checked and counted in one step.
    while (this.#state.phase !== 'running') model = await this.ready();
    this.#inFlight++;
    try {
      return await work(model);
    } finally {
      this.#inFlight--;
      this.#lastUsedMs = this.#options.clock();
      if (this.#inFlight === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  #whenIdle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #changed(): void {
    this.#options.onChange(this.info());
  }
}
