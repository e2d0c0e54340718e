/**
 * Stored zero-shot classifiers: create (BUILDING at once, built in the background on the model that will use it),
 * list, get, delete and watch, each as the caller may (its own classifiers and the presets; an admin key: all); and,
 * for jobs (jobs/classifierPort.ts), the classes of a classifier and its weights on a model, built when missing.
 * Weights are built by open_clip's recipe (clip/zeroShotWeights.ts) and stored by model files and recipe, so a
 * restart loads them instead of embedding the prompts again.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { AppError, ErrorCode, badUserInput, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  packWeights,
  templatesOf,
  unpackWeights,
  type BuildWeightsRequest,
  type ClassifyResult,
  type ClassifyWithWeightsRequest,
  type PromptConfig,
} from '../clip/index.js';
import type { Caller, ClassifierPlan, JobClassifiers } from '../jobs/index.js';
import type { ClassifierStore } from './ClassifierStore.js';
import { PRESETS, PRESET_IDS } from './presets.js';
import { buildOn, pendingBuild, type Classifier, type ClassifierBuild, type ClassifierFailure } from './types.js';
import { checkClasses, checkName, checkPromptCount, type ClassifierLimits } from './validation.js';
import { createWatcher } from './watch.js';
import { weightsKey } from './weightsKey.js';

/** What classifiers need from the models: ClipService. */
export interface ClassifierModels {
  readonly defaultModelName: string;
  resolveModelName(name: string): string | undefined;
  validatePrompt(config: unknown, field: string): PromptConfig;
  modelFingerprint(model: string): Promise<string>;
  buildWeights(request: BuildWeightsRequest): Promise<Float32Array[]>;
  classifyWithWeights(request: ClassifyWithWeightsRequest): Promise<ClassifyResult>;
}

export interface ClassifierServiceOptions extends ClassifierLimits {
  clip: ClassifierModels;
  store: ClassifierStore;
  logger: Logger;
  /** See MAX_CLASSIFIERS. */
  maxClassifiers: number;
  /** See CLASSIFIER_PRESETS: built for the default model at start. */
  presetsAtStart: readonly string[];
}

export interface CreateClassifierInput {
  name?: string | undefined;
  classes: unknown;
  /** Prompt settings as a job's (`promptTemplate` or `promptTemplates`). */
  prompt?: unknown;
  model?: string | undefined;
}

/** How often a build's progress is stored and published, at most, in ms. */
const PROGRESS_INTERVAL_MS = 200;

type ClassifierEvents = { updated: [Classifier]; deleted: [string] };

export class ClassifierService implements JobClassifiers {
  readonly events = new EventEmitter<ClassifierEvents>();
  readonly #options: ClassifierServiceOptions;
  readonly #store: ClassifierStore;
  readonly #clip: ClassifierModels;
  readonly #logger: Logger;
  /** Builds under way, by classifier and model. */
  readonly #building = new Map<string, { done: Promise<Float32Array[]>; stop: AbortController }>();
  /** Weight rows ready to score against, by weights key. */
  readonly #rows = new Map<string, Float32Array[]>();
  /** The last change of each classifier: changes of one are made one after the other. */
  readonly #turns = new Map<string, Promise<unknown>>();

  constructor(options: ClassifierServiceOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#clip = options.clip;
    this.#logger = options.logger;
    this.events.setMaxListeners(0);
    for (const id of options.presetsAtStart)
      if (!PRESET_IDS.includes(id))
        throw new TypeError(`CLASSIFIER_PRESETS: unknown preset ${id}; known: ${PRESET_IDS.join(', ')}`);
  }

  /**
   * Stores the presets, resumes the builds a stopped process left under way, and starts building the presets listed
   * in CLASSIFIER_PRESETS for the default model (in the background: readiness does not wait for them).
   */
  async start(): Promise<void> {
    for (const preset of PRESETS) {
      if ((await this.#store.get(preset.id)) !== undefined) continue;
      await this.#store.put({
        id: preset.id,
        name: preset.name,
        owner: null,
        preset: true,
        classes: [...preset.classes],
        templates: [...preset.templates],
        model: null,
        createdAt: new Date(0),
        builds: {},
        version: 0,
      });
    }
    for (const classifier of await this.#store.list())
      for (const [model, build] of Object.entries(classifier.builds))
        if (build.status === 'building') this.#buildInBackground(classifier.id, model);
    for (const id of this.#options.presetsAtStart) this.#buildInBackground(id, this.#clip.defaultModelName);
  }

  /** Stops the builds under way (they resume at the next start) and releases the store. */
  async stop(): Promise<void> {
    const builds = [...this.#building.values()];
    for (const build of builds) build.stop.abort(new AppError(ErrorCode.ShuttingDown, 'the server is stopping'));
    await Promise.allSettled(builds.map((build) => build.done));
    await this.#store.close();
  }

  // ---- the API ----

  /** Validates, stores the classifier BUILDING and builds it in the background. */
  async create(caller: Caller, input: CreateClassifierInput): Promise<Classifier> {
    const classes = checkClasses(input.classes, this.#options);
    const prompt = this.#clip.validatePrompt(input.prompt ?? {}, 'prompt');
    const templates = templatesOf(prompt);
    checkPromptCount(classes.length, templates.length, this.#options);
    const model = this.#resolveModel(input.model);
    const stored = (await this.#store.list()).filter((classifier) => !classifier.preset).length;
    if (stored >= this.#options.maxClassifiers)
      throw new AppError(
        ErrorCode.Overloaded,
        `the server keeps at most ${this.#options.maxClassifiers} classifiers (MAX_CLASSIFIERS); delete one first`,
      );
    const id = randomUUID();
    const now = new Date();
    const classifier: Classifier = {
      id,
      name: checkName(input.name, `${classes.length} classes`),
      owner: caller.owner,
      preset: false,
      classes,
      templates,
      model,
      createdAt: now,
      builds: { [model]: { ...pendingBuild(classes.length * templates.length, now), status: 'building' } },
      version: 0,
    };
    await this.#store.put(classifier);
    this.#logger.info({ classifier: id, model, prompts: classes.length * templates.length }, 'classifier created');
    this.#buildInBackground(id, model);
    return classifier;
  }

  /** The classifier, or undefined when unknown or not the caller's to see. */
  async get(caller: Caller, id: string): Promise<Classifier | undefined> {
    const classifier = await this.#store.get(id);
    return classifier !== undefined && visible(caller, classifier) ? classifier : undefined;
  }

  /** The presets and the classifiers the caller may see, oldest first. */
  async list(caller: Caller): Promise<Classifier[]> {
    return (await this.#store.list()).filter((classifier) => visible(caller, classifier));
  }

  /** Deletes a classifier (its build stops; queued jobs on it fail NOT_FOUND). Undefined when unknown or unseen; a preset is BAD_USER_INPUT. */
  async delete(caller: Caller, id: string): Promise<Classifier | undefined> {
    const classifier = await this.get(caller, id);
    if (classifier === undefined) return undefined;
    if (classifier.preset) throw badUserInput(`id: ${id} is a preset and cannot be deleted`, 'id');
    await this.#serially(id, async () => {
      for (const [key, build] of this.#building) if (key.startsWith(`${id}\n`)) build.stop.abort(deletedError(id));
      await this.#store.delete(id);
    });
    this.events.emit('deleted', id);
    this.#logger.info({ classifier: id }, 'classifier deleted');
    return classifier;
  }

  /** The model a classifier's state is shown for: its own, or the default model for a preset. */
  viewModel(classifier: Classifier): string {
    return classifier.model ?? this.#clip.defaultModelName;
  }

  /**
   * The classifier's current state first, then every change; ends after READY or FAILED on its model (or when
   * deleted). NOT_FOUND for an unknown classifier or one not the caller's to see.
   */
  async watch(caller: Caller, id: string): Promise<AsyncIterableIterator<Classifier>> {
    const ended = (classifier: Classifier): boolean => {
      const status = buildOn(classifier, this.viewModel(classifier)).status;
      return status === 'ready' || status === 'failed';
    };
    const onUpdated = (classifier: Classifier): void => {
      if (classifier.id === id) watcher.offer(classifier);
    };
    const onDeleted = (deleted: string): void => {
      if (deleted === id) watcher.end();
    };
    const watcher = createWatcher(ended, () => {
      this.events.off('updated', onUpdated);
      this.events.off('deleted', onDeleted);
    });
    this.events.on('updated', onUpdated);
    this.events.on('deleted', onDeleted);
    const current = await this.get(caller, id);
    if (current === undefined) {
      watcher.end();
      throw new AppError(ErrorCode.NotFound, `classifier ${JSON.stringify(id.slice(0, 100))} not found`);
    }
    watcher.offer(current);
    return watcher.iterator;
  }

  // ---- jobs (jobs/classifierPort.ts) ----

  async plan(caller: Caller, id: string, requested: string | undefined): Promise<ClassifierPlan> {
    const classifier = await this.get(caller, id);
    if (classifier === undefined)
      throw badUserInput(`classifier: unknown classifier ${JSON.stringify(id.slice(0, 100))}`, 'classifier');
    const model = this.#resolveModel(requested ?? classifier.model ?? undefined);
    if (classifier.model !== null && classifier.model !== model)
      throw badUserInput(
        `model: classifier ${id} is built for ${classifier.model}, not ${model}; create one for that model`,
        'model',
      );
    const build = buildOn(classifier, model);
    if (build.status === 'failed' && !classifier.preset)
      throw badUserInput(`classifier: ${id} failed to build: ${build.error?.message ?? 'unknown error'}`, 'classifier');
    return { classes: classifier.classes, model };
  }

  async prepare(id: string, model: string, signal: AbortSignal): Promise<void> {
    await abortable(this.#weights(id, model), signal);
  }

  async classify(request: {
    id: string;
    model: string;
    images: Uint8Array[];
    signal: AbortSignal;
  }): Promise<ClassifyResult> {
    const weights = await abortable(this.#weights(request.id, request.model), request.signal);
    return this.#clip.classifyWithWeights({
      model: request.model,
      images: request.images,
      weights,
      signal: request.signal,
    });
  }

  // ---- building ----

  /** The classifier's weight rows on `model`: held, stored (a restart), or built now. */
  async #weights(id: string, model: string): Promise<Float32Array[]> {
    const under = this.#building.get(buildKey(id, model));
    if (under !== undefined) return under.done;
    const classifier = await this.#store.get(id);
    if (classifier === undefined) throw deletedError(id);
    const build = buildOn(classifier, model);
    if (build.status === 'failed' && !classifier.preset) throw new AppError(build.error!.code, build.error!.message);
    const key = weightsKey(await this.#clip.modelFingerprint(model), classifier.classes, classifier.templates);
    const held = this.#rows.get(key) ?? (await this.#loadRows(key, classifier.classes.length));
    if (held !== undefined) {
      if (build.status !== 'ready' || build.weightsKey !== key) await this.#markReady(id, model, key, held);
      return held;
    }
    return this.#startBuild(id, model);
  }

  async #loadRows(key: string, classes: number): Promise<Float32Array[] | undefined> {
    const packed = await this.#store.loadWeights(key);
    if (packed === undefined || packed.length % classes !== 0) return undefined;
    const rows = unpackWeights(packed, packed.length / classes);
    this.#rows.set(key, rows);
    return rows;
  }

  #buildInBackground(id: string, model: string): void {
    this.#weights(id, model).catch((error: unknown) => {
      if (!isAppError(error) || error.code !== ErrorCode.ShuttingDown)
        this.#logger.warn({ err: error, classifier: id, model }, 'classifier build failed');
    });
  }

  #startBuild(id: string, model: string): Promise<Float32Array[]> {
    const existing = this.#building.get(buildKey(id, model));
    if (existing !== undefined) return existing.done;
    const stop = new AbortController();
    const done = this.#build(id, model, stop.signal).finally(() => this.#building.delete(buildKey(id, model)));
    this.#building.set(buildKey(id, model), { done, stop });
    return done;
  }

  async #build(id: string, model: string, signal: AbortSignal): Promise<Float32Array[]> {
    const started = performance.now();
    const classifier = await this.#change(id, (current) => ({
      ...current,
      builds: {
        ...current.builds,
        [model]: {
          ...buildOn(current, model),
          status: 'building',
          builtPrompts: 0,
          error: null,
          updatedAt: new Date(),
        },
      },
    }));
    if (classifier === undefined) throw deletedError(id);
    const fingerprint = await this.#clip.modelFingerprint(model);
    const key = weightsKey(fingerprint, classifier.classes, classifier.templates);
    let lastProgress = 0;
    try {
      const rows = await this.#clip.buildWeights({
        model,
        labels: classifier.classes,
        templates: classifier.templates,
        signal,
        onProgress: (builtPrompts) => {
          const now = performance.now();
          if (now - lastProgress < PROGRESS_INTERVAL_MS) return;
          lastProgress = now;
          void this.#change(id, (current) => withBuild(current, model, { builtPrompts })).catch(() => undefined);
        },
      });
      await this.#store.saveWeights(key, packWeights(rows));
      this.#rows.set(key, rows);
      await this.#markReady(id, model, key, rows);
      this.#logger.info(
        {
          classifier: id,
          model,
          prompts: rows.length * classifier.templates.length,
          ms: Math.round(performance.now() - started),
        },
        'classifier built',
      );
      return rows;
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const failure: ClassifierFailure = isAppError(error)
        ? { code: error.code, message: error.message }
        : { code: ErrorCode.InternalServerError, message: 'the classifier could not be built' };
      if (!isAppError(error)) this.#logger.error({ err: error, classifier: id, model }, 'classifier build failed');
      await this.#change(id, (current) => withBuild(current, model, { status: 'failed', error: failure }));
      throw new AppError(failure.code, failure.message);
    }
  }

  async #markReady(id: string, model: string, key: string, rows: Float32Array[]): Promise<void> {
    await this.#change(id, (current) =>
      withBuild(current, model, {
        status: 'ready',
        builtPrompts: current.classes.length * current.templates.length,
        error: null,
        weightsKey: key,
        dimensions: rows[0]?.length ?? 0,
      }),
    );
  }

  /** Reads, changes and stores a classifier (one change at a time per classifier), then publishes it; undefined when gone. */
  async #change(id: string, change: (current: Classifier) => Classifier): Promise<Classifier | undefined> {
    return this.#serially(id, async () => {
      const current = await this.#store.get(id);
      if (current === undefined) return undefined;
      const next = { ...change(current), version: current.version + 1 };
      await this.#store.put(next);
      this.events.emit('updated', next);
      return next;
    });
  }

  #serially<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#turns.get(id) ?? Promise.resolve();
    const turn = previous.catch(() => undefined).then(work);
    const settled = turn.catch(() => undefined);
    this.#turns.set(id, settled);
    void settled.then(() => {
      if (this.#turns.get(id) === settled) this.#turns.delete(id);
    });
    return turn;
  }

  #resolveModel(requested: string | undefined): string {
    const name = requested ?? this.#clip.defaultModelName;
    const resolved = this.#clip.resolveModelName(name);
    if (resolved === undefined)
      throw badUserInput(`model: unknown model ${JSON.stringify(name.slice(0, 200))}`, 'model');
    return resolved;
  }
}

function visible(caller: Caller, classifier: Classifier): boolean {
  return classifier.preset || caller.seesAll || (caller.owner !== null && classifier.owner === caller.owner);
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

function deletedError(id: string): AppError {
  return new AppError(ErrorCode.NotFound, `classifier ${id} was deleted`);
}

/** `work`, or the signal's reason once it aborts (the work goes on for others waiting on it). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
