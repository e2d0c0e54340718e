/**
 * The API side of jobs (classification, image embedding, text embedding): validates a submission, admits it
 * against the cluster-wide counts (OVERLOADED over a limit), stores it QUEUED and hands it to the JobQueue;
 * cancels (compare-and-set in the store, then an abort to whichever worker runs it), and serves reads and
 * watchers. Everything a user can get wrong is refused at `submit`, so the API answers BAD_USER_INPUT at
 * once, never a job that fails later for bad input.
 *
 * Nothing about a job lives only in this process: its state is in the JobStore, its images travel in the
 * JobQueue, its changes on JobEvents. With no queue given (one process, `ROLE=all` in memory) the service
 * builds the memory backends and a JobWorker on `clip` itself, so `npm start` stays one self-contained process.
 */
import { randomUUID } from 'node:crypto';
import { AppError, ErrorCode, ImageUrlRefusal, badUserInput, UnreachableCaseError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelInfo, PromptConfig } from '../clip/index.js';
import { isImageUrl } from '../imageUrls/index.js';
import type { JobEvents } from './JobEvents.js';
import { exceededLimit, type AdmissionRequest } from './admission.js';
import { canAccess, visibleTo, type Caller } from './caller.js';
import type { JobClassifiers } from './classifierPort.js';
import type { Admission, AdmissionLimits, JobQueue, OwnerCounts, QueueCounts } from './JobQueue.js';
import { InvalidCursorError, type JobPage, type JobStore } from './JobStore.js';
import { JobWorker, type JobRunner } from './JobWorker.js';
import { MemoryJobEvents } from './memory/MemoryJobEvents.js';
import { MemoryJobQueue } from './memory/MemoryJobQueue.js';
import { MemoryJobStore } from './memory/MemoryJobStore.js';
import type { RetentionStats } from './retention.js';
import { rankBySimilarity, type SimilarityRanking } from './similarity.js';
import { advanceJob, jobLogFields, publishChange, type TransitionDeps } from './transitions.js';
import {
  isTerminal,
  JOB_STATUSES,
  type EmbeddingResult,
  type Job,
  type JobStatus,
  type JobTask,
  type SubmitImages,
  type SubmitJobInput,
} from './types.js';

/** What the API side needs from the models: names, input checks. ClipService satisfies it, and so does the api role's catalogue. */
export interface JobClassifier {
  readonly defaultModelName: string;
  resolveModelName(name: string): string | undefined;
  models(): ModelInfo[];
  decodeImage(input: string, field: string): Buffer;
  inspectImage(bytes: Uint8Array, field: string): Promise<{ format: string; width: number; height: number }>;
  validatePrompt(config: unknown, field: string): PromptConfig;
  /** Images waiting in this process's batchers (the all role), counted against MAX_QUEUED_IMAGES too. */
  queuedImages?(): number;
}

/**
 * Fetches an image given as a URL, at submission (src/imageUrls/ builds the guarded one). Throws AppError
 * BAD_USER_INPUT naming `field`; rejects with the signal's reason once `signal` aborts.
 */
export type FetchImageUrl = (url: string, field: string, signal?: AbortSignal) => Promise<Uint8Array>;

export interface JobServiceOptions {
  /** Validation; with no `queue`, also the runner of the in-process worker (it must then be a JobRunner too). */
  clip: JobClassifier & Partial<JobRunner>;
  logger: Logger;
  /** Images given as http(s) URLs are fetched with it; without it they are refused. */
  fetchImageUrl?: FetchImageUrl;
  /** Default: a new MemoryJobStore. */
  store?: JobStore;
  /** Default: a new MemoryJobEvents. */
  events?: JobEvents;
  /** Default: a new MemoryJobQueue run by an in-process JobWorker on `clip`. */
  queue?: JobQueue;
  /** The worker of this process, drained by `drain` (only with `queue`; the api role has none). */
  worker?: JobWorker;
  /** Stored classifiers (classify by `classifier` instead of `classes`); without it such jobs are refused. */
  classifiers?: JobClassifiers | undefined;
  /** Most images in one job; default 64. */
  maxImagesPerJob?: number;
  /** Most classes in one job; default 1000. */
  maxClassesPerJob?: number;
  /** Longest class name in characters (code points); default 1000. */
  maxClassLength?: number;
  /** Most texts in one text-embedding job; default: maxClassesPerJob (the server passes MAX_TEXTS_PER_JOB). */
  maxTextsPerJob?: number;
  /** Longest text to embed in characters (code points); default: maxClassLength (the server passes MAX_TEXT_LENGTH). */
  maxTextLength?: number;
  /** Most prompts (classes × templates) in one job: each distinct prompt costs a text-model run; default 10,000. */
  maxPromptsPerJob?: number;
  /** Admission bound on queued + running jobs, cluster-wide (OVERLOADED over it); default 256. */
  maxQueuedJobs?: number;
  /** Admission bound on images held by unfinished jobs, cluster-wide; default 1024. */
  maxQueuedImages?: number;
  /** Admission bound on encoded image bytes held by unfinished jobs, cluster-wide; default 512 MiB. */
  maxPendingImageBytes?: number;
  /** Admission bound on one API key's queued + running jobs, cluster-wide (see MAX_QUEUED_JOBS_PER_KEY); default: maxQueuedJobs. */
  maxQueuedJobsPerKey?: number;
  /** Admission bound on images held by one API key's unfinished jobs (see MAX_QUEUED_IMAGES_PER_KEY); default: maxQueuedImages. */
  maxQueuedImagesPerKey?: number;
  /** Jobs the in-process worker runs at once; the rest wait QUEUED. Default 32. */
  maxConcurrentJobs?: number;
  /** How long a job is kept after its last change, in seconds; default 3600. */
  ttlSeconds?: number;
  /**
   * MAX_RETAINED_JOB_BYTES for the memory store this service builds when given no `store` (a given store carries
   * its own budget); no bound when omitted.
   */
  maxRetainedJobBytes?: number;
  /** Largest `first` of `list`; default 100. */
  maxPageSize?: number;
}

export interface ListJobsInput {
  status?: JobStatus | undefined;
  /** Page size, 1..maxPageSize; default 20. */
  first?: number | undefined;
  after?: string | undefined;
}

/** Live numbers for metrics and readiness. */
export interface JobStats {
  /** Jobs waiting for a worker (cluster-wide with Redis, refreshed every second). */
  queued: number;
  /** Admitted jobs not waiting: running, or between admission and the queue (cluster-wide with Redis). */
  running: number;
  /** Images held by unfinished jobs (cluster-wide with Redis). */
  pendingImages: number;
  pendingImageBytes: number;
  /** Unfinished jobs and their images per owner, by the keyed hash of its API key (cluster-wide with Redis). */
  owners: Readonly<Record<string, OwnerCounts>>;
  /** Open `watch` iterators in this process. */
  watchers: number;
  draining: boolean;
  /** Jobs that reached each status since start, as stored by this process (a job counts once per status it passed). */
  totals: Record<JobStatus, number>;
}

/** A submission checked up to image decoding: what the job will be. */
interface JobPlan {
  task: JobTask;
  model: string;
  classes: string[];
  texts: string[];
  prompt: PromptConfig;
  /** The images to decode, or null for a task without images. */
  images: SubmitImages | null;
  batched: boolean;
  /** The stored classifier a classification scores against. */
  classifier?: string;
}

const MiB = 1024 * 1024;
const DEFAULT_PAGE_SIZE = 20;

export class JobService {
  readonly events: JobEvents;
  readonly #clip: JobClassifier;
  readonly #store: JobStore;
  readonly #queue: JobQueue;
  readonly #worker: JobWorker | undefined;
  readonly #logger: Logger;
  readonly #deps: TransitionDeps;
  readonly #limits: Required<
    Omit<
      JobServiceOptions,
      | 'clip'
      | 'logger'
      | 'store'
      | 'events'
      | 'queue'
      | 'worker'
      | 'fetchImageUrl'
      | 'maxRetainedJobBytes'
      | 'classifiers'
    >
  >;
  readonly #fetchImageUrl: FetchImageUrl | undefined;
  readonly #classifiers: JobClassifiers | undefined;
  /** Submissions past their last SHUTTING_DOWN check: drain waits for them, so none is enqueued after the queue drained. */
  readonly #admitting = new Set<Promise<unknown>>();
  #watchers = 0;
  #draining = false;
  readonly #totals = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
  readonly #storedListeners = new Set<(job: Job) => void>();
  readonly #onChanged: (job: Job) => void;

  constructor(options: JobServiceOptions) {
    this.#clip = options.clip;
    this.#logger = options.logger;
    this.#fetchImageUrl = options.fetchImageUrl;
    this.#classifiers = options.classifiers;
    this.#store =
      options.store ??
      new MemoryJobStore(
        options.maxRetainedJobBytes === undefined ? {} : { maxRetainedBytes: options.maxRetainedJobBytes },
      );
    this.events =
      options.events ?? new MemoryJobEvents((error) => this.#logger.error({ err: error }, 'job event listener threw'));
    this.#limits = {
      maxImagesPerJob: options.maxImagesPerJob ?? 64,
      maxClassesPerJob: options.maxClassesPerJob ?? 1000,
      maxClassLength: options.maxClassLength ?? 1000,
      // Texts are bounded like classes unless told otherwise (the settings' defaults live in config.ts).
      maxTextsPerJob: options.maxTextsPerJob ?? options.maxClassesPerJob ?? 1000,
      maxTextLength: options.maxTextLength ?? options.maxClassLength ?? 1000,
      maxPromptsPerJob: options.maxPromptsPerJob ?? 10_000,
      maxQueuedJobs: options.maxQueuedJobs ?? 256,
      maxQueuedImages: options.maxQueuedImages ?? 1024,
      maxPendingImageBytes: options.maxPendingImageBytes ?? 512 * MiB,
      maxQueuedJobsPerKey: options.maxQueuedJobsPerKey ?? options.maxQueuedJobs ?? 256,
      maxQueuedImagesPerKey: options.maxQueuedImagesPerKey ?? options.maxQueuedImages ?? 1024,
      maxConcurrentJobs: options.maxConcurrentJobs ?? 32,
      ttlSeconds: options.ttlSeconds ?? 3600,
      maxPageSize: options.maxPageSize ?? 100,
    };
    for (const [name, value] of Object.entries(this.#limits)) {
      if (!Number.isInteger(value) || value < 1)
        throw new TypeError(`JobService: expected ${name} to be an integer >= 1, got ${value}`);
    }
    // Totals count the changes this process stores (its submissions and cancels, and its worker's transitions).
    const onChanged = (job: Job): void => {
      this.#totals[job.status] += 1;
      for (const listener of this.#storedListeners) listener(job);
    };
    this.#onChanged = onChanged;
    this.#deps = {
      store: this.#store,
      events: this.events,
      logger: this.#logger,
      ttlSeconds: this.#limits.ttlSeconds,
      onChanged,
    };
    if (options.queue !== undefined) {
      this.#queue = options.queue;
      this.#worker = options.worker;
    } else {
      const { prepareModel, classify, embedImages, embedTexts } = options.clip;
      if (
        prepareModel === undefined ||
        classify === undefined ||
        embedImages === undefined ||
        embedTexts === undefined
      ) {
        throw new TypeError(
          'JobService: without a queue, clip must also run jobs (prepareModel, classify, embedImages, embedTexts)',
        );
      }
      this.#queue = new MemoryJobQueue();
      const clip = options.clip as JobRunner;
      this.#worker = new JobWorker({
        clip,
        store: this.#store,
        events: this.events,
        queue: this.#queue,
        logger: this.#logger,
        maxConcurrentJobs: this.#limits.maxConcurrentJobs,
        ttlSeconds: this.#limits.ttlSeconds,
        classifiers: options.classifiers,
      });
      this.#worker.start();
    }
    this.#worker?.onStored(onChanged);
  }

  /**
   * Calls `listener` with every job state this process stores: its submissions and cancels, and its worker's
   * transitions (per-process metrics: summed over the processes of a deployment, each change counts once).
   */
  onStored(listener: (job: Job) => void): () => void {
    this.#storedListeners.add(listener);
    return () => this.#storedListeners.delete(listener);
  }

  /** One job may not make the text model encode more than MAX_PROMPTS_PER_JOB prompts (it would hold the model for minutes). */
  #checkPromptCount(inputs: number, prompt: PromptConfig, inputField: 'classes' | 'texts', inputsField: string): void {
    const templates = prompt.promptTemplates?.length ?? 1;
    const prompts = inputs * templates;
    if (prompts > this.#limits.maxPromptsPerJob) {
      const field = prompt.promptTemplates ? 'config.promptTemplates' : inputsField;
      throw badUserInput(
        `${field}: ${inputs} ${inputField} × ${templates} templates = ${prompts} prompts, over the limit of ${this.#limits.maxPromptsPerJob} (MAX_PROMPTS_PER_JOB)`,
        field,
      );
    }
  }

  /** The plan of a submission: on a stored classifier (see classifierPort.ts), or checked inline. */
  async #planSubmission(caller: Caller, input: SubmitJobInput): Promise<JobPlan> {
    if ((input.task ?? 'classification') !== 'classification' || !('classifier' in input)) return this.#plan(input);
    if (input.classifier === undefined) return this.#plan(input);
    if (input.classes.length > 0)
      throw badUserInput('input: expected exactly one of classes or classifier, got both', 'classes,classifier');
    if (input.config !== undefined)
      throw badUserInput("config: a classifier's prompt templates are its own; give no prompt settings", 'config');
    if (this.#classifiers === undefined)
      throw badUserInput('classifier: this server keeps no classifiers; give classes instead', 'classifier');
    const { classes, model } = await this.#classifiers.plan(caller, input.classifier, input.model);
    return {
      task: 'classification',
      model,
      classes,
      texts: [],
      prompt: {},
      images: input,
      batched: input.batched,
      classifier: input.classifier,
    };
  }

  /** Checks everything about a submission that needs no image decoding, in the order errors are reported. */
  #plan(input: SubmitJobInput): JobPlan {
    switch (input.task) {
      case 'text-embedding': {
        const texts = this.#validateTexts(input.texts, input.textsField, input.batched);
        const model = this.#resolveModel(input.model);
        const prompt = this.#clip.validatePrompt(input.config ?? {}, 'config');
        this.#checkPromptCount(texts.length, prompt, 'texts', input.textsField);
        return { task: 'text-embedding', model, classes: [], texts, prompt, images: null, batched: input.batched };
      }
      case 'image-embedding': {
        const model = this.#resolveModel(input.model);
        return {
          task: 'image-embedding',
          model,
          classes: [],
          texts: [],
          prompt: {},
          images: input,
          batched: input.batched,
        };
      }
      case undefined:
      case 'classification': {
        const classes = this.#validateClasses(input.classes);
        const model = this.#resolveModel(input.model);
        const prompt = this.#clip.validatePrompt(input.config ?? {}, 'config');
        this.#checkPromptCount(classes.length, prompt, 'classes', 'classes');
        return { task: 'classification', model, classes, texts: [], prompt, images: input, batched: input.batched };
      }
      default:
        throw new UnreachableCaseError(input);
    }
  }

  /**
   * The one place images are taken from a submission, for every image-taking task: list and count checks,
   * base64 decoding, URL fetching, header inspection (format, size) before any pixel is decoded. Fetched bytes
   * pass the same checks as bytes sent inline.
   */
  async #decodeImages(
    input: SubmitImages,
    owner: string | null,
  ): Promise<{ images: Uint8Array[]; imageBytes: number }> {
    const imageFields = this.#validateImageList(input);
    // Refuse early under overload, before spending time decoding or fetching images we would not keep.
    await this.#refuseIfSaturated({ owner, images: imageFields.length, imageBytes: 0 });
    const fieldOf = (index: number): string => (input.batched ? `${input.imagesField}[${index}]` : input.imagesField);
    const decoded = imageFields.map((image, index): Uint8Array | string => {
      const field = fieldOf(index);
      if (image instanceof Uint8Array) return image;
      if (typeof image !== 'string')
        throw badUserInput(
          `${field}: expected a data URL, base64 string or http(s) URL, got ${typeName(image)}`,
          field,
        );
      return isImageUrl(image) ? image : this.#clip.decodeImage(image, field);
    });
    const images = await this.#fetchUrls(decoded, fieldOf, input.imagesField);
    let imageBytes = 0;
    for (const [index, bytes] of images.entries()) {
      await this.#clip.inspectImage(bytes, fieldOf(index));
      imageBytes += bytes.byteLength;
    }
    return { images, imageBytes };
  }

  /**
   * Replaces every URL by its fetched bytes, fetching them side by side; the first refusal stops the others. A job
   * whose images add up to more than MAX_PENDING_IMAGE_BYTES could never be admitted: its fetches stop as soon as
   * they pass it, so one request cannot make the API hold images × MAX_IMAGE_BYTES.
   */
  async #fetchUrls(
    images: (Uint8Array | string)[],
    fieldOf: (index: number) => string,
    listField: string,
  ): Promise<Uint8Array[]> {
    const fetchImageUrl = this.#fetchImageUrl;
    const urls = images.flatMap((image, index) => (typeof image === 'string' ? [{ url: image, index }] : []));
    if (urls.length === 0) return images as Uint8Array[];
    if (fetchImageUrl === undefined) {
      const field = fieldOf(urls[0]?.index ?? 0);
      throw new AppError(
        ErrorCode.BadUserInput,
        `${field}: this server does not fetch image URLs; send the image itself`,
        { field, refusal: ImageUrlRefusal.Off },
      );
    }
    const stop = new AbortController();
    const fetched = [...images];
    const maxBytes = this.#limits.maxPendingImageBytes;
    let totalBytes = images.reduce((sum, image) => sum + (typeof image === 'string' ? 0 : image.byteLength), 0);
    const fetches = urls.map(async ({ url, index }) => {
      const bytes = await fetchImageUrl(url, fieldOf(index), stop.signal);
      totalBytes += bytes.byteLength;
      if (totalBytes > maxBytes) {
        throw badUserInput(
          `${listField}: the job's images add up to more than ${maxBytes} bytes (MAX_PENDING_IMAGE_BYTES); send fewer or smaller images`,
          listField,
        );
      }
      fetched[index] = bytes;
    });
    try {
      await Promise.all(fetches);
    } catch (error) {
      stop.abort();
      await Promise.allSettled(fetches);
      throw error;
    }
    return fetched as Uint8Array[];
  }

  /**
   * Validates and admits a job of `caller`'s (its owner from now on), stores it QUEUED and enqueues it for a worker.
   * Throws AppError BAD_USER_INPUT naming the field, OVERLOADED when saturated (or when the caller's key holds its
   * share of the queue), SHUTTING_DOWN while draining, SERVICE_UNAVAILABLE when the backend (Redis) is unreachable.
   */
  async submit(caller: Caller, input: SubmitJobInput): Promise<Job> {
    this.#assertAccepting();
    const plan = await this.#planSubmission(caller, input);
    const owner = caller.owner;
    if (plan.images === null) await this.#refuseIfSaturated({ owner, images: 0, imageBytes: 0 });
    const { images, imageBytes } =
      plan.images === null ? { images: [], imageBytes: 0 } : await this.#decodeImages(plan.images, owner);
    // Checked again: the awaits above let other submissions (or a drain) in.
    this.#assertAccepting();
    const admitting = this.#admitAndEnqueue(plan, owner, images, imageBytes);
    this.#admitting.add(admitting);
    try {
      return await admitting;
    } finally {
      this.#admitting.delete(admitting);
    }
  }

  async #admitAndEnqueue(plan: JobPlan, owner: string | null, images: Uint8Array[], imageBytes: number): Promise<Job> {
    const id = randomUUID();
    await this.#refuseIfSaturated({ owner, images: images.length, imageBytes });
    const now = new Date();
    // The reservation and the queued work expire with the job: nothing of it outlives its TTL in the queue.
    const expiresAt = new Date(now.getTime() + this.#limits.ttlSeconds * 1000);
    const admission = await this.#queue.reserve({ id, owner, images, expiresAt }, this.#admissionLimits());
    if (!admission.admitted) throw this.#refusal(admission, owner);
    const job: Job = {
      id,
      owner,
      status: 'queued',
      task: plan.task,
      model: plan.model,
      classes: plan.classes,
      ...(plan.classifier === undefined ? {} : { classifier: plan.classifier }),
      texts: plan.texts,
      imageCount: images.length,
      batched: plan.batched,
      createdAt: now,
      expiresAt,
      version: 0,
    };
    try {
      await this.#store.create(job);
    } catch (error) {
      await this.#queue.release(id).catch(() => undefined);
      throw error;
    }
    this.#onChanged(job);
    this.#logger.info(jobLogFields(job), 'job queued');
    publishChange(this.#deps, job);
    try {
      await this.#queue.enqueue({ id, prompt: plan.prompt, job });
    } catch (error) {
      // Stored but never queued (the backend went away in between): fail it, so nobody waits for it forever.
      await this.#queue.release(id).catch(() => undefined);
      const failure = {
        code: ErrorCode.ServiceUnavailable,
        message: 'the job queue was unreachable; submit the job again',
      };
      await advanceJob(this.#deps, id, (current) => ({
        ...current,
        status: 'failed',
        startedAt: null,
        finishedAt: new Date(),
        error: failure,
      })).catch(() => undefined);
      throw error;
    }
    return job;
  }

  /** The job, or undefined when unknown, expired, or not `caller`'s to see. */
  async get(caller: Caller, id: string): Promise<Job | undefined> {
    return visibleTo(caller, await this.#store.get(id));
  }

  /** The queued and running jobs on `model` (its resolved name), in creation order, across every process sharing the store. */
  async unfinishedOn(model: string): Promise<Job[]> {
    const found: Job[] = [];
    for (const status of ['queued', 'running'] as const) {
      let after: string | undefined;
      for (;;) {
        const page = await this.#store.list({ status, first: this.#limits.maxPageSize, after });
        found.push(...page.jobs.filter((job) => job.model === model));
        if (!page.hasNextPage || page.endCursor === null) break;
        after = page.endCursor;
      }
    }
    return found.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /** The jobs `caller` may see (its own; every job for an admin), in creation order. Throws BAD_USER_INPUT for a bad `first` or `after`. */
  async list(caller: Caller, input: ListJobsInput = {}): Promise<JobPage> {
    const first = input.first ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(first) || first < 1 || first > this.#limits.maxPageSize) {
      throw badUserInput(`first: expected an integer between 1 and ${this.#limits.maxPageSize}, got ${first}`, 'first');
    }
    // A caller that sees only its own jobs has an owner; one without would see nothing.
    const owner = caller.seesAll ? undefined : caller.owner;
    if (owner === null) return { jobs: [], endCursor: null, hasNextPage: false };
    try {
      return await this.#store.list({ status: input.status, first, after: input.after, owner });
    } catch (error) {
      if (error instanceof InvalidCursorError) throw badUserInput(`after: ${error.message}`, 'after');
      throw error;
    }
  }

  /**
   * Cancels a queued or running job (it becomes CANCELLED at once; the worker running it, in whichever
   * process, abandons its inference). A finished job is returned unchanged; undefined when the job is unknown or not
   * `caller`'s to see (an owner never changes, so the check before the change holds for it).
   */
  async cancel(caller: Caller, id: string): Promise<Job | undefined> {
    if ((await this.get(caller, id)) === undefined) return undefined;
    const { job, changed } = await advanceJob(this.#deps, id, (current) => ({
      ...current,
      status: 'cancelled',
      startedAt: current.status === 'running' ? current.startedAt : null,
      finishedAt: new Date(),
    }));
    if (changed) {
      await this.#queue.cancel(id);
      // A cancelled job no longer counts against admission, even while its worker is still letting go of it.
      await this.#queue.release(id);
    }
    return job;
  }

  /**
   * Resolves to an iterator over the job's states: the current one first, then every change; it ends
   * after a terminal state. Rejects with AppError NOT_FOUND for an unknown job, or one not `caller`'s to see.
   * Stopping early (`return()`) removes the listener at once.
   */
  async watch(caller: Caller, id: string): Promise<AsyncIterableIterator<Job>> {
    // Listen first, then read: a change stored after the read is published after the listener exists, so none is missed.
    const watcher = this.#iterate(caller, id);
    try {
      const current = visibleTo(caller, await this.#store.get(id));
      if (current === undefined && !watcher.seen()) {
        throw new AppError(ErrorCode.NotFound, `job ${JSON.stringify(id)} not found (unknown or expired)`);
      }
      if (current !== undefined) watcher.offer(current);
      return watcher.iterator;
    } catch (error) {
      await watcher.iterator.return?.();
      throw error;
    }
  }

  /**
   * For every vector of the `queries` job, the `k` most similar vectors of the `candidates` job (cosine, best first):
   * e.g. texts against images for retrieval. Both must be COMPLETE embedding jobs of one model (the vectors of two
   * models live in different spaces). NOT_FOUND for an unknown job; BAD_USER_INPUT naming the argument otherwise.
   */
  async rank(
    caller: Caller,
    queriesId: string,
    candidatesId: string,
    k: number,
  ): Promise<{ rankings: SimilarityRanking[]; queries: Job; candidates: Job }> {
    if (!Number.isInteger(k) || k < 1) throw badUserInput(`k: expected a positive integer, got ${k}`, 'k');
    const [queries, candidates] = await Promise.all([
      this.#completeEmbedding(caller, queriesId, 'queries'),
      this.#completeEmbedding(caller, candidatesId, 'candidates'),
    ]);
    if (queries.model !== candidates.model) {
      throw badUserInput(
        `candidates: job ${candidatesId} ran on ${candidates.model} and job ${queriesId} on ${queries.model}; vectors of different models cannot be compared`,
        'candidates',
      );
    }
    // Ranking runs on the event loop: bound it to the size of its purpose, a full text job against a full image job
    // (1000 × 64 × 768 multiply-adds at the defaults, ~50 ms), so two 1000-text jobs cannot stall the server.
    const pairs = queries.result.embeddings.length * candidates.result.embeddings.length;
    const maxPairs = this.#limits.maxTextsPerJob * this.#limits.maxImagesPerJob;
    if (pairs > maxPairs) {
      throw badUserInput(
        `candidates: ${queries.result.embeddings.length} queries × ${candidates.result.embeddings.length} candidates = ${pairs} pairs, over the limit of ${maxPairs} (MAX_TEXTS_PER_JOB × MAX_IMAGES_PER_JOB)`,
        'candidates',
      );
    }
    return {
      rankings: rankBySimilarity(queries.result, candidates.result, k),
      queries: queries.job,
      candidates: candidates.job,
    };
  }

  async #completeEmbedding(
    caller: Caller,
    id: string,
    field: string,
  ): Promise<{ job: Job; model: string; result: EmbeddingResult }> {
    const job = await this.get(caller, id);
    if (job === undefined)
      throw new AppError(
        ErrorCode.NotFound,
        `${field}: job ${JSON.stringify(id.slice(0, 100))} not found (unknown or expired)`,
      );
    if (job.status !== 'complete')
      throw badUserInput(`${field}: job ${job.id} is ${job.status}; rank when it is complete`, field);
    if (job.result.task === 'classification')
      throw badUserInput(`${field}: job ${job.id} is a classification, not an embedding job`, field);
    return { job, model: job.model, result: job.result };
  }

  /** What finished jobs hold against MAX_RETAINED_JOB_BYTES (one backend round trip on Redis). */
  async retention(): Promise<RetentionStats> {
    return this.#store.retention();
  }

  /** Whether new jobs are refused because the service is draining. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Cluster-wide unfinished work (one backend round trip); `stats` shows the last value seen. */
  async counts(): Promise<QueueCounts> {
    return this.#queue.counts();
  }

  stats(): JobStats {
    const counts = this.#queue.lastCounts();
    return {
      queued: counts.waiting,
      running: counts.jobs - counts.waiting,
      pendingImages: counts.images,
      pendingImageBytes: counts.imageBytes,
      owners: counts.owners,
      watchers: this.#watchers,
      draining: this.#draining,
      totals: { ...this.#totals },
    };
  }

  /**
   * Stops accepting jobs (SHUTTING_DOWN) and drains this process's worker, if any: it waits, at most
   * `timeoutMs`, for accepted work to finish; work no other process will run is FAILED with SHUTTING_DOWN,
   * so every watcher sees a terminal state. Resolves to the number of jobs failed that way.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.#draining = true;
    await Promise.allSettled([...this.#admitting]);
    if (this.#worker === undefined) return 0;
    const { jobs } = this.#queue.lastCounts();
    if (jobs > 0) this.#logger.info({ unfinishedJobs: jobs, timeoutMs }, 'draining jobs');
    return this.#worker.drain(timeoutMs);
  }

  /** Releases the queue, the bus and the store. Call after drain(). Idempotent. */
  async close(): Promise<void> {
    this.#draining = true;
    await this.#queue.close();
    await this.events.close();
    await this.#store.close();
  }

  // ---- validation ----

  #assertAccepting(): void {
    if (this.#draining)
      throw new AppError(ErrorCode.ShuttingDown, 'the server is shutting down and accepts no new jobs');
  }

  #validateClasses(classes: unknown): string[] {
    const { maxClassesPerJob, maxClassLength } = this.#limits;
    if (!Array.isArray(classes))
      throw badUserInput(`classes: expected a list of class names, got ${typeName(classes)}`, 'classes');
    if (classes.length === 0) throw badUserInput('classes: expected at least one class, got none', 'classes');
    if (classes.length > maxClassesPerJob) {
      throw badUserInput(
        `classes: expected at most ${maxClassesPerJob} classes (MAX_CLASSES_PER_JOB), got ${classes.length}`,
        'classes',
      );
    }
    const seen = new Map<string, number>();
    return classes.map((label: unknown, index) => {
      const field = `classes[${index}]`;
      if (typeof label !== 'string') throw badUserInput(`${field}: expected a string, got ${typeName(label)}`, field);
      const key = label.trim();
      if (key === '')
        throw badUserInput(`${field}: expected a non-empty class name, got ${JSON.stringify(label)}`, field);
      // .length counts UTF-16 units, an upper bound of code points: count exactly only when it matters.
      if (label.length > maxClassLength) {
        const codePoints = countCodePoints(label);
        if (codePoints > maxClassLength) {
          throw badUserInput(
            `${field}: expected at most ${maxClassLength} characters (MAX_CLASS_LENGTH), got ${codePoints}`,
            field,
          );
        }
      }
      // Duplicates are refused: identical prompts split one probability between two entries, which is never what a caller means.
      const first = seen.get(key);
      if (first !== undefined)
        throw badUserInput(`${field}: duplicates classes[${first}] (${JSON.stringify(key.slice(0, 100))})`, field);
      seen.set(key, index);
      return label;
    });
  }

  #resolveModel(requested: string | undefined): string {
    const name = requested ?? this.#clip.defaultModelName;
    const resolved = typeof name === 'string' ? this.#clip.resolveModelName(name) : undefined;
    if (resolved === undefined) {
      const known = this.#clip.models().map((model) => model.name);
      throw badUserInput(
        `model: unknown model ${JSON.stringify(String(name).slice(0, 200))}; available: ${known.join(', ') || 'none'}`,
        'model',
      );
    }
    return resolved;
  }

  /** Texts to embed: a non-empty list of non-blank strings, bounded in count and length. Duplicates are fine (one vector each). */
  #validateTexts(texts: unknown, listField: string, batched: boolean): string[] {
    const { maxTextsPerJob, maxTextLength } = this.#limits;
    if (!Array.isArray(texts))
      throw badUserInput(`${listField}: expected a list of texts, got ${typeName(texts)}`, listField);
    if (texts.length === 0) throw badUserInput(`${listField}: expected at least one text, got none`, listField);
    if (texts.length > maxTextsPerJob) {
      throw badUserInput(
        `${listField}: expected at most ${maxTextsPerJob} texts (MAX_TEXTS_PER_JOB), got ${texts.length}`,
        listField,
      );
    }
    return texts.map((text: unknown, index) => {
      const field = batched ? `${listField}[${index}]` : listField;
      if (typeof text !== 'string') throw badUserInput(`${field}: expected a string, got ${typeName(text)}`, field);
      if (text.trim() === '')
        throw badUserInput(`${field}: expected a non-empty text, got ${JSON.stringify(text)}`, field);
      if (text.length > maxTextLength) {
        const codePoints = countCodePoints(text);
        if (codePoints > maxTextLength) {
          throw badUserInput(
            `${field}: expected at most ${maxTextLength} characters (MAX_TEXT_LENGTH), got ${codePoints}`,
            field,
          );
        }
      }
      return text;
    });
  }

  #validateImageList(input: SubmitImages): unknown[] {
    const field = input.imagesField;
    const images: unknown = input.images;
    if (!Array.isArray(images))
      throw badUserInput(`${field}: expected a list of images, got ${typeName(images)}`, field);
    if (images.length === 0) throw badUserInput(`${field}: expected at least one image, got none`, field);
    if (images.length > this.#limits.maxImagesPerJob) {
      throw badUserInput(
        `${field}: expected at most ${this.#limits.maxImagesPerJob} images (MAX_IMAGES_PER_JOB), got ${images.length}`,
        field,
      );
    }
    return images;
  }

  /**
   * Throws OVERLOADED when a job of `imageCount` images and `imageBytes` bytes would pass a limit. A check before
   * `reserve`, which alone decides (atomically, cluster-wide): it spares the decoding and the round trips of a job
   * that cannot be kept, and it also counts this process's batchers. It is first made on the counts as last seen,
   * which cost nothing but on Redis can be a second old (another API's burst may have drained since), so a refusal
   * is made only on counts read again: nobody is refused on a stale view.
   */
  async #refuseIfSaturated(request: AdmissionRequest): Promise<void> {
    if (this.#saturation(this.#queue.lastCounts(), request) === null) return;
    const refusal = this.#saturation(await this.#queue.counts(), request);
    if (refusal !== null) throw this.#refusal(refusal, request.owner);
  }

  #saturation(queueCounts: QueueCounts, request: AdmissionRequest): Exclude<Admission, { admitted: true }> | null {
    // Images in this process's batchers count even when they are not a job's (direct ClipService callers).
    const counts = { ...queueCounts, images: Math.max(queueCounts.images, this.#clip.queuedImages?.() ?? 0) };
    const limit = exceededLimit(counts, request, this.#admissionLimits());
    return limit === null ? null : { admitted: false, limit, counts };
  }

  #admissionLimits(): AdmissionLimits {
    const { maxQueuedJobs, maxQueuedImages, maxPendingImageBytes, maxQueuedJobsPerKey, maxQueuedImagesPerKey } =
      this.#limits;
    return {
      maxJobs: maxQueuedJobs,
      maxImages: maxQueuedImages,
      maxImageBytes: maxPendingImageBytes,
      maxJobsPerOwner: maxQueuedJobsPerKey,
      maxImagesPerOwner: maxQueuedImagesPerKey,
    };
  }

  /**
   * Every image of an unfinished job counts until the job ends, whether it waits in the queue or in a batcher:
   * otherwise jobs admitted while others decode overfill the classifier's queue, which then fails jobs already
   * accepted with OVERLOADED (issue 5).
   */
  #refusal(admission: Exclude<Admission, { admitted: true }>, owner: string | null): AppError {
    const { maxQueuedJobs, maxQueuedImages, maxPendingImageBytes, maxQueuedJobsPerKey, maxQueuedImagesPerKey } =
      this.#limits;
    const own = owner === null ? undefined : admission.counts.owners[owner];
    switch (admission.limit) {
      case 'jobs':
        return new AppError(
          ErrorCode.Overloaded,
          `too many jobs in progress (${admission.counts.jobs}, MAX_QUEUED_JOBS=${maxQueuedJobs}); retry later`,
        );
      case 'images':
        return new AppError(
          ErrorCode.Overloaded,
          `too many images waiting for inference (${admission.counts.images}, MAX_QUEUED_IMAGES=${maxQueuedImages}); retry later`,
        );
      case 'imageBytes':
        return new AppError(
          ErrorCode.Overloaded,
          `too many image bytes held by unfinished jobs (MAX_PENDING_IMAGE_BYTES=${maxPendingImageBytes}); retry later`,
        );
      case 'ownerJobs':
        return new AppError(
          ErrorCode.Overloaded,
          `too many jobs in progress for this API key (${own?.jobs ?? maxQueuedJobsPerKey}, MAX_QUEUED_JOBS_PER_KEY=${maxQueuedJobsPerKey}); retry later`,
        );
      case 'ownerImages':
        return new AppError(
          ErrorCode.Overloaded,
          `too many images waiting for inference for this API key (${own?.images ?? maxQueuedImagesPerKey}, MAX_QUEUED_IMAGES_PER_KEY=${maxQueuedImagesPerKey}); retry later`,
        );
      default:
        throw new UnreachableCaseError(admission.limit);
    }
  }

  // ---- watching ----

  /**
   * A watcher of one job: `offer` feeds it states (from the bus or the store); only versions newer than the
   * last one pass, so repeated, stale or reordered deliveries are dropped. After a bus reconnect it re-reads.
   */
  #iterate(
    caller: Caller,
    id: string,
  ): { iterator: AsyncIterableIterator<Job>; offer: (job: Job) => void; seen: () => boolean } {
    const buffer: Job[] = [];
    let lastVersion = -1;
    let finished = false;
    let pending: ((result: IteratorResult<Job>) => void) | null = null;
    this.#watchers += 1;

    const unsubscribe = (): void => {
      offUpdated();
      offResynced();
    };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      unsubscribe();
      this.#watchers -= 1;
      if (pending !== null) {
        const resolve = pending;
        pending = null;
        resolve({ value: undefined, done: true });
      }
    };
    const offer = (job: Job): void => {
      if (job.id !== id || finished || job.version <= lastVersion || !canAccess(caller, job)) return;
      lastVersion = job.version;
      if (pending !== null) {
        const resolve = pending;
        pending = null;
        if (isTerminal(job)) finish();
        resolve({ value: job, done: false });
      } else {
        // Nothing follows a terminal state: stop listening now, even if the consumer is slow to read it.
        if (isTerminal(job)) unsubscribe();
        buffer.push(job);
      }
    };
    const offUpdated = this.events.on('jobUpdated', offer);
    const offResynced = this.events.on('resynced', () => {
      void this.#store.get(id).then(
        (job) => job !== undefined && offer(job),
        () => undefined,
      );
    });

    const iterator: AsyncIterableIterator<Job> = {
      next: () => {
        const job = buffer.shift();
        if (job !== undefined) {
          // After a terminal state the iterator is done; the next `next()` reports it.
          if (isTerminal(job)) finish();
          return Promise.resolve({ value: job, done: false });
        }
        if (finished) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          pending = resolve;
        });
      },
      return: () => {
        finish();
        return Promise.resolve({ value: undefined, done: true });
      },
      throw: (error?: unknown) => {
        finish();
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return { iterator, offer, seen: () => lastVersion >= 0 };
  }
}

function countCodePoints(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const nextUnit = text.charCodeAt(i + 1);
      if (nextUnit >= 0xdc00 && nextUnit <= 0xdfff) i += 1;
    }
    count += 1;
  }
  return count;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
