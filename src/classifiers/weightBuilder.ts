/**
 * The model side of classifiers, in a process that runs models: a classifier's weights on a model, held in memory,
 * loaded from the store (a restart, or another process built them), or built now by open_clip's recipe
 * (clip/zeroShotWeights.ts) with its progress stored and published. One process builds a classifier on a model at a
 * time (the bus's claim); the others wait for its result.
 */
import { AppError, ErrorCode, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  packWeights,
  unpackWeights,
  type BuildWeightsRequest,
  type ClassifyResult,
  type ClassifyWithWeightsRequest,
} from '../clip/index.js';
import type { ClassifierBus, ClassifierMessage } from './bus.js';
import type { ClassifierStore } from './ClassifierStore.js';
import { buildOn, type Classifier, type ClassifierBuild, type ClassifierFailure } from './types.js';
import { weightsKey } from './weightsKey.js';

/** What building and scoring need from the models: ClipService, where models run. */
export interface ClassifierRunner {
  modelFingerprint(model: string): Promise<string>;
  buildWeights(request: BuildWeightsRequest): Promise<Float32Array[]>;
  classifyWithWeights(request: ClassifyWithWeightsRequest): Promise<ClassifyResult>;
}

/** Reads, changes, stores and publishes a classifier; undefined when it is gone. */
export type ChangeClassifier = (
  id: string,
  change: (current: Classifier) => Classifier,
) => Promise<Classifier | undefined>;

export interface WeightBuilderOptions {
  runner: ClassifierRunner;
  store: ClassifierStore;
  bus: ClassifierBus;
  change: ChangeClassifier;
  logger: Logger;
  /** The longest wait for another process's build before trying to claim it again, in ms (its claim's expiry). */
  claimMs: number;
}

/** How often a build's progress is stored and published, at most, in ms. */
const PROGRESS_INTERVAL_MS = 200;

/** A job's images, to be classified against classifier `id` on `model`. */
export interface ClassifierJobRequest {
  id: string;
  model: string;
  images: Uint8Array[];
  signal: AbortSignal;
}

export class WeightBuilder {
  readonly #options: WeightBuilderOptions;
  /** Builds under way, by classifier and model. */
  readonly #building = new Map<string, { done: Promise<Float32Array[]>; stop: AbortController }>();
  /** Weight rows ready to score against, by weights key. */
  readonly #rows = new Map<string, Float32Array[]>();

  constructor(options: WeightBuilderOptions) {
    this.#options = options;
  }

  /** The classifier's weight rows on `model`: held, stored (a restart, another process), or built now. */
  async weights(id: string, model: string): Promise<Float32Array[]> {
    const under = this.#building.get(buildKey(id, model));
    if (under !== undefined) return under.done;
    const { store, runner, bus } = this.#options;
    const classifier = await store.get(id);
    if (classifier === undefined) throw deletedError(id);
    const build = buildOn(classifier, model);
    if (build.status === 'failed' && !classifier.preset) throw new AppError(build.error!.code, build.error!.message);
    const key = weightsKey(await runner.modelFingerprint(model), classifier.classes, classifier.templates);
    const held = this.#rows.get(key) ?? (await this.#loadRows(key, classifier.classes.length));
    if (held !== undefined) {
      if (build.status !== 'ready' || build.weightsKey !== key) await this.#markReady(id, model, key, held);
      return held;
    }
    if (!(await bus.claim(id, model))) {
      await this.#otherBuild(id, model);
      return this.weights(id, model);
    }
    // Another call of this process may have started the build during the awaits above.
    return this.#building.get(buildKey(id, model))?.done ?? this.#startBuild(id, model);
  }

  buildInBackground(id: string, model: string): void {
    this.weights(id, model).catch((error: unknown) => {
      if (!isAppError(error) || error.code !== ErrorCode.ShuttingDown)
        this.#options.logger.warn({ err: error, classifier: id, model }, 'classifier build failed');
    });
  }

  /** Per image, the probability of each class: the images against the classifier's weights on `model`. */
  async classify(request: ClassifierJobRequest): Promise<ClassifyResult> {
    const weights = await abortable(this.weights(request.id, request.model), request.signal);
    return this.#options.runner.classifyWithWeights({
      model: request.model,
      images: request.images,
      weights,
      signal: request.signal,
    });
  }

  /** Stops the builds of classifier `id` (deleted) with `reason`. */
  abortBuildsOf(id: string, reason: AppError): void {
    for (const [key, build] of this.#building) if (key.startsWith(`${id}\n`)) build.stop.abort(reason);
  }

  /** Stops every build under way (each resumes at the next start) and waits for them to end. */
  async stop(): Promise<void> {
    const builds = [...this.#building.values()];
    for (const build of builds) build.stop.abort(new AppError(ErrorCode.ShuttingDown, 'the server is stopping'));
    await Promise.allSettled(builds.map((build) => build.done));
  }

  async #loadRows(key: string, classes: number): Promise<Float32Array[] | undefined> {
    const packed = await this.#options.store.loadWeights(key);
    if (packed === undefined || packed.length % classes !== 0) return undefined;
    const rows = unpackWeights(packed, packed.length / classes);
    this.#rows.set(key, rows);
    return rows;
  }

  /**
   * Resolves once another process's build of the classifier on `model` ended (READY, FAILED, deleted), or after its
   * claim's expiry (a process lost mid-build publishes nothing), whichever comes first.
   */
  async #otherBuild(id: string, model: string): Promise<void> {
    const ended = (message: ClassifierMessage): boolean =>
      (message.kind === 'deleted' && message.id === id) ||
      (message.kind === 'updated' && message.classifier.id === id && isSettled(buildOn(message.classifier, model)));
    let unsubscribe = (): void => undefined;
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<void>((resolve) => {
      unsubscribe = this.#options.bus.subscribe((message) => ended(message) && resolve());
      timer = setTimeout(resolve, this.#options.claimMs);
    });
    try {
      // Read after subscribing: a build that ended in between is seen here.
      const current = await this.#options.store.get(id);
      if (current !== undefined && !isSettled(buildOn(current, model))) await done;
    } finally {
      unsubscribe();
      clearTimeout(timer);
    }
  }

  #startBuild(id: string, model: string): Promise<Float32Array[]> {
    const stop = new AbortController();
    const done = this.#build(id, model, stop.signal).finally(() => {
      this.#building.delete(buildKey(id, model));
      void this.#options.bus.release(id, model).catch(() => undefined);
    });
    this.#building.set(buildKey(id, model), { done, stop });
    return done;
  }

  async #build(id: string, model: string, signal: AbortSignal): Promise<Float32Array[]> {
    const { change, runner, store, bus, logger } = this.#options;
    const started = performance.now();
    const classifier = await change(id, (current) =>
      withBuild(current, model, { status: 'building', builtPrompts: 0, error: null }),
    );
    if (classifier === undefined) throw deletedError(id);
    const key = weightsKey(await runner.modelFingerprint(model), classifier.classes, classifier.templates);
    let lastProgress = 0;
    try {
      const rows = await runner.buildWeights({
        model,
        labels: classifier.classes,
        templates: classifier.templates,
        signal,
        onProgress: (builtPrompts) => {
          const now = performance.now();
          if (now - lastProgress < PROGRESS_INTERVAL_MS) return;
          lastProgress = now;
          void change(id, (current) => withBuild(current, model, { builtPrompts })).catch(() => undefined);
          void bus.renew(id, model).catch(() => undefined);
        },
      });
      await store.saveWeights(key, packWeights(rows));
      this.#rows.set(key, rows);
      const prompts = rows.length * classifier.templates.length;
      logger.info({ classifier: id, model, prompts, ms: Math.round(performance.now() - started) }, 'classifier built');
      await this.#markReady(id, model, key, rows);
      return rows;
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const failure: ClassifierFailure = isAppError(error)
        ? { code: error.code, message: error.message }
        : { code: ErrorCode.InternalServerError, message: 'the classifier could not be built' };
      if (!isAppError(error)) logger.error({ err: error, classifier: id, model }, 'classifier build failed');
      await change(id, (current) => withBuild(current, model, { status: 'failed', error: failure }));
      throw new AppError(failure.code, failure.message);
    }
  }

  async #markReady(id: string, model: string, key: string, rows: Float32Array[]): Promise<void> {
    await this.#options.change(id, (current) =>
      withBuild(current, model, {
        status: 'ready',
        builtPrompts: current.classes.length * current.templates.length,
        error: null,
        weightsKey: key,
        dimensions: rows[0]?.length ?? 0,
      }),
    );
  }
}

function isSettled(build: ClassifierBuild): boolean {
  return build.status === 'ready' || build.status === 'failed';
}

function withBuild(classifier: Classifier, model: string, change: Partial<ClassifierBuild>): Classifier {
  return {
    ...classifier,
    builds: { ...classifier.builds, [model]: { ...buildOn(classifier, model), ...change, updatedAt: new Date() } },
  };
}

function buildKey(id: string, model: string): string {
  return `${id}\n${model}`;
}

export function deletedError(id: string): AppError {
  return new AppError(ErrorCode.NotFound, `classifier ${id} was deleted`);
}

/** `work`, or the signal's reason once it aborts (the work goes on for others waiting on it). */
export function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
