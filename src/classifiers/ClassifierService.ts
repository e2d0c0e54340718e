/**
 * Stored zero-shot classifiers: create (BUILDING at once, built in the background on the model that will use it),
 * list, get, delete and watch, each as the caller may (its own classifiers and the presets; an admin key: all); and,
 * for jobs (jobs/classifierPort.ts), the classes of a classifier and its weights on a model, built when missing.
 * Weights are built where models run (weightBuilder.ts) and stored by model files and recipe, so a restart loads them
 * instead of embedding the prompts again. Changes travel on the bus (bus.ts): in a cluster, the API creates and
 * watches, and a worker builds and scores.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { AppError, ErrorCode, UnreachableCaseError, badUserInput } from '../errors.js';
import type { Logger } from '../logger.js';
import { templatesOf, type ClassifyResult, type PromptConfig } from '../clip/index.js';
import type { Caller, ClassifierPlan, JobClassifiers } from '../jobs/index.js';
import type { ClassifierBus, ClassifierMessage } from './bus.js';
import type { ClassifierStore } from './ClassifierStore.js';
import { PRESETS, PRESET_IDS } from './presets.js';
import { buildOn, pendingBuild, type Classifier } from './types.js';
import { checkClasses, checkName, checkPromptCount, type ClassifierLimits } from './validation.js';
import { createWatcher } from './watch.js';
import {
  abortable,
  deletedError,
  WeightBuilder,
  type ClassifierJobRequest,
  type ClassifierRunner,
} from './weightBuilder.js';

/** What classifiers need from the models' names and checks: ClipService, or the api role's ModelCatalogue. */
export interface ClassifierModels {
  readonly defaultModelName: string;
  resolveModelName(name: string): string | undefined;
  validatePrompt(config: unknown, field: string): PromptConfig;
}

export interface ClassifierServiceOptions extends ClassifierLimits {
  clip: ClassifierModels;
  /** Where models run (all, worker): builds and scores. Without it (ROLE=api) builds are asked of the workers. */
  runner: ClassifierRunner | undefined;
  store: ClassifierStore;
  bus: ClassifierBus;
  /** How long a build's claim outlives its last progress, in ms (see bus.ts): the longest wait for a lost build. */
  claimMs: number;
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

type ClassifierEvents = { updated: [Classifier]; deleted: [string] };

export class ClassifierService implements JobClassifiers {
  readonly events = new EventEmitter<ClassifierEvents>();
  readonly #options: ClassifierServiceOptions;
  readonly #store: ClassifierStore;
  readonly #clip: ClassifierModels;
  readonly #logger: Logger;
  readonly #bus: ClassifierBus;
  readonly #builder: WeightBuilder | undefined;
  readonly #unsubscribe: () => void;
  /** The last change of each classifier: changes of one are made one after the other. */
  readonly #turns = new Map<string, Promise<unknown>>();

  constructor(options: ClassifierServiceOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#clip = options.clip;
    this.#logger = options.logger;
    this.#bus = options.bus;
    this.#builder =
      options.runner === undefined
        ? undefined
        : new WeightBuilder({
            runner: options.runner,
            store: options.store,
            bus: options.bus,
            change: (id, change) => this.#change(id, change),
            logger: options.logger,
            claimMs: options.claimMs,
          });
    this.events.setMaxListeners(0);
    this.#unsubscribe = options.bus.subscribe((message) => this.#heard(message));
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
    const builder = this.#builder;
    if (builder === undefined) return;
    for (const classifier of await this.#store.list())
      for (const [model, build] of Object.entries(classifier.builds))
        if (build.status === 'building' && this.#clip.resolveModelName(model) !== undefined)
          builder.buildInBackground(classifier.id, model);
    for (const id of this.#options.presetsAtStart) builder.buildInBackground(id, this.#clip.defaultModelName);
  }

  /** Stops the builds under way (they resume at the next start), then releases the bus and the store. */
  async stop(): Promise<void> {
    this.#unsubscribe();
    await this.#builder?.stop();
    await this.#bus.close();
    await this.#store.close();
  }

  /** What other processes (or this one) published: watchers follow it; a process that runs models builds. */
  #heard(message: ClassifierMessage): void {
    switch (message.kind) {
      case 'updated':
        this.events.emit('updated', message.classifier);
        return;
      case 'deleted':
        this.#builder?.abortBuildsOf(message.id, deletedError(message.id));
        this.events.emit('deleted', message.id);
        return;
      case 'build':
        if (this.#clip.resolveModelName(message.model) !== undefined)
          this.#builder?.buildInBackground(message.id, message.model);
        return;
      default:
        throw new UnreachableCaseError(message);
    }
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
    if (this.#builder !== undefined) this.#builder.buildInBackground(id, model);
    else await this.#bus.publish({ kind: 'build', id, model });
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
      this.#builder?.abortBuildsOf(id, deletedError(id));
      await this.#store.delete(id);
    });
    await this.#bus.publish({ kind: 'deleted', id });
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
    await abortable(this.#modelSide().weights(id, model), signal);
  }

  async classify(request: ClassifierJobRequest): Promise<ClassifyResult> {
    return this.#modelSide().classify(request);
  }

  /** The builder: jobs run on classifiers only where models run. */
  #modelSide(): WeightBuilder {
    if (this.#builder === undefined)
      throw new AppError(
        ErrorCode.ModelUnavailable,
        'this process runs no model: classifiers are built by the workers',
      );
    return this.#builder;
  }

  /** Reads, changes and stores a classifier (one change at a time per classifier), then publishes it; undefined when gone. */
  async #change(id: string, change: (current: Classifier) => Classifier): Promise<Classifier | undefined> {
    return this.#serially(id, async () => {
      const current = await this.#store.get(id);
      if (current === undefined) return undefined;
      const next = { ...change(current), version: current.version + 1 };
      await this.#store.put(next);
      await this.#bus.publish({ kind: 'updated', classifier: next });
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
