/**
 * Accepts jobs (classification, image embedding, text embedding), runs them on the CLIP service and moves
 * them through their lifecycle: queued → running → complete | failed | cancelled. Everything a user can get
 * wrong is refused at `submit` (so the API answers BAD_USER_INPUT at once, never a job that fails later for
 * bad input), admission is bounded (OVERLOADED), and `drain` finishes accepted work before shutdown.
 *
 * State lives in the JobStore; the in-process `#active` map holds what only this process needs while
 * a job is unfinished (its decoded images, its AbortController). The images are dropped the moment
 * the job reaches a terminal state.
 */
import { randomUUID } from 'node:crypto';
import { AppError, ErrorCode, badUserInput, isAppError, UnreachableCaseError } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  ClassifyRequest,
  ClassifyResult,
  EmbeddingVectors,
  EmbedImagesRequest,
  EmbedTextsRequest,
  ModelInfo,
  PromptConfig,
} from '../clip/types.js';
import { MemoryJobEvents, type JobEvents } from './JobEvents.js';
import { InvalidCursorError, type JobPage, type JobStore } from './JobStore.js';
import { MemoryJobStore } from './MemoryJobStore.js';
import { rankBySimilarity, type SimilarityRanking } from './similarity.js';
import {
  isTerminal,
  JOB_STATUSES,
  type EmbeddingResult,
  type Job,
  type JobFailure,
  type JobResult,
  type JobStatus,
  type JobTask,
  type SubmitImages,
  type SubmitJobInput,
} from './types.js';

/** The part of ClipService that jobs use (ClipService satisfies it; unit tests pass a small fake). */
export interface JobClassifier {
  readonly defaultModelName: string;
  resolveModelName(name: string): string | undefined;
  models(): ModelInfo[];
  decodeImage(input: string, field: string): Buffer;
  inspectImage(bytes: Uint8Array, field: string): Promise<{ format: string; width: number; height: number }>;
  validatePrompt(config: unknown, field: string): PromptConfig;
  classify(request: ClassifyRequest): Promise<ClassifyResult>;
  embedImages(request: EmbedImagesRequest): Promise<EmbeddingVectors>;
  embedTexts(request: EmbedTextsRequest): Promise<EmbeddingVectors>;
  queuedImages(): number;
}

export interface JobServiceOptions {
  clip: JobClassifier;
  logger: Logger;
  /** Default: a new MemoryJobStore. */
  store?: JobStore;
  /** Default: a new MemoryJobEvents. */
  events?: JobEvents;
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
  /** Admission bound on queued + running jobs (OVERLOADED over it); default 256. */
  maxQueuedJobs?: number;
  /** Admission bound on images not yet classified, here and in the clip batcher; default 1024. */
  maxQueuedImages?: number;
  /** Admission bound on encoded image bytes held by unfinished jobs; default 512 MiB. */
  maxPendingImageBytes?: number;
  /** Jobs handed to the classifier at once; the rest wait QUEUED. Default 32. */
  maxConcurrentJobs?: number;
  /** How long a job is kept after its last change, in seconds; default 3600. */
  ttlSeconds?: number;
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
  queued: number;
  running: number;
  /** Images held by unfinished jobs. */
  pendingImages: number;
  pendingImageBytes: number;
  /** Open `watch` iterators. */
  watchers: number;
  draining: boolean;
  /** Jobs that reached each status since start (a job counts once per status it passed). */
  totals: Record<JobStatus, number>;
}

interface ActiveJob {
  job: Job;
  /** Decoded images; null once handed over for the last time or finished. */
  images: Uint8Array[] | null;
  imageBytes: number;
  prompt: PromptConfig;
  abort: AbortController;
  /** Serialises this job's transitions (run, cancel and drain may race). */
  chain: Promise<unknown>;
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
}

const MiB = 1024 * 1024;
const DEFAULT_PAGE_SIZE = 20;
const STATUS_RANK: Record<JobStatus, number> = { queued: 0, running: 1, complete: 2, failed: 2, cancelled: 2 };

export class JobService {
  readonly events: JobEvents;
  readonly #clip: JobClassifier;
  readonly #store: JobStore;
  readonly #logger: Logger;
  readonly #limits: Required<Omit<JobServiceOptions, 'clip' | 'logger' | 'store' | 'events'>>;
  readonly #active = new Map<string, ActiveJob>();
  /** Ids waiting to run, in submission order (cancelled ones are skipped when reached). */
  readonly #queue: string[] = [];
  #running = 0;
  #queuedImages = 0;
  #pendingImages = 0;
  #pendingImageBytes = 0;
  #watchers = 0;
  #draining = false;
  #idleWaiters: (() => void)[] = [];
  readonly #totals = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;

  constructor(options: JobServiceOptions) {
    this.#clip = options.clip;
    this.#logger = options.logger;
    this.#store = options.store ?? new MemoryJobStore();
    this.events = options.events ?? new MemoryJobEvents((error) => this.#logger.error({ err: error }, 'job event listener threw'));
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
      maxConcurrentJobs: options.maxConcurrentJobs ?? 32,
      ttlSeconds: options.ttlSeconds ?? 3600,
      maxPageSize: options.maxPageSize ?? 100,
    };
    for (const [name, value] of Object.entries(this.#limits)) {
      if (!Number.isInteger(value) || value < 1) throw new TypeError(`JobService: expected ${name} to be an integer >= 1, got ${value}`);
    }
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
        return { task: 'image-embedding', model, classes: [], texts: [], prompt: {}, images: input, batched: input.batched };
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
   * base64 decoding, header inspection (format, size) before any pixel is decoded.
   */
  async #decodeImages(input: SubmitImages): Promise<{ images: Uint8Array[]; imageBytes: number }> {
    const imageFields = this.#validateImageList(input);
    // Refuse early under overload, before spending time decoding images we would not keep.
    this.#admit(imageFields.length, 0);
    const images: Uint8Array[] = [];
    let imageBytes = 0;
    for (const [index, image] of imageFields.entries()) {
      const field = input.batched ? `${input.imagesField}[${index}]` : input.imagesField;
      let bytes: Uint8Array;
      if (image instanceof Uint8Array) bytes = image;
      else if (typeof image === 'string') bytes = this.#clip.decodeImage(image, field);
      else throw badUserInput(`${field}: expected a data URL or base64 string, got ${typeName(image)}`, field);
      await this.#clip.inspectImage(bytes, field);
      images.push(bytes);
      imageBytes += bytes.byteLength;
    }
    return { images, imageBytes };
  }

  /**
   * Validates and admits a job, stores it QUEUED and starts it in the background.
   * Throws AppError BAD_USER_INPUT naming the field, OVERLOADED when saturated, SHUTTING_DOWN while draining.
   */
  async submit(input: SubmitJobInput): Promise<Job> {
    this.#assertAccepting();
    const plan = this.#plan(input);
    if (plan.images === null) this.#admit(0, 0);
    const { images, imageBytes } = plan.images === null ? { images: [], imageBytes: 0 } : await this.#decodeImages(plan.images);
    // Checked again: the awaits above let other submissions (or a drain) in.
    this.#assertAccepting();
    this.#admit(images.length, imageBytes);

    const now = new Date();
    const { prompt } = plan;
    const job: Job = {
      id: randomUUID(),
      status: 'queued',
      task: plan.task,
      model: plan.model,
      classes: plan.classes,
      texts: plan.texts,
      imageCount: images.length,
      batched: plan.batched,
      createdAt: now,
      expiresAt: this.#expiry(now),
    };
    const entry: ActiveJob = { job, images, imageBytes, prompt, abort: new AbortController(), chain: Promise.resolve() };
    // Registered before the first await so drain() and the admission counters see it at once.
    this.#active.set(job.id, entry);
    this.#queuedImages += images.length;
    this.#pendingImages += images.length;
    this.#pendingImageBytes += imageBytes;
    try {
      await this.#store.create(job);
    } catch (error) {
      this.#queuedImages -= images.length;
      this.#release(entry);
      throw error;
    }
    this.#announce(job);
    this.#queue.push(job.id);
    // Next macrotask: the caller gets the QUEUED job before it can start running.
    setImmediate(() => this.#pump());
    return job;
  }

  /** The job, or undefined when unknown or expired. */
  async get(id: string): Promise<Job | undefined> {
    return this.#store.get(id);
  }

  /** Jobs in creation order. Throws BAD_USER_INPUT for a bad `first` or `after`. */
  async list(input: ListJobsInput = {}): Promise<JobPage> {
    const first = input.first ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(first) || first < 1 || first > this.#limits.maxPageSize) {
      throw badUserInput(`first: expected an integer between 1 and ${this.#limits.maxPageSize}, got ${first}`, 'first');
    }
    try {
      return await this.#store.list({ status: input.status, first, after: input.after });
    } catch (error) {
      if (error instanceof InvalidCursorError) throw badUserInput(`after: ${error.message}`, 'after');
      throw error;
    }
  }

  /**
   * Cancels a queued or running job (it becomes CANCELLED at once; inference already under way is
   * abandoned). A finished job is returned unchanged; undefined when the job is unknown.
   */
  async cancel(id: string): Promise<Job | undefined> {
    const entry = this.#active.get(id);
    if (entry === undefined) return this.#store.get(id);
    const job = await this.#transition(entry, (current) => ({
      ...current,
      status: 'cancelled',
      startedAt: current.status === 'running' ? current.startedAt : null,
      finishedAt: new Date(),
    }));
    entry.abort.abort();
    return job;
  }

  /**
   * Resolves to an iterator over the job's states: the current one first, then every change; it ends
   * after a terminal state. Rejects with AppError NOT_FOUND for an unknown job. Stopping early
   * (`return()`) removes the listener at once.
   */
  async watch(id: string): Promise<AsyncIterableIterator<Job>> {
    const entry = this.#active.get(id);
    // Snapshot and listener are taken in the same tick as each transition's emit: no state is missed or doubled.
    if (entry !== undefined) return this.#iterate(entry.job);
    const job = await this.#store.get(id);
    if (job === undefined) throw new AppError(ErrorCode.NotFound, `job ${JSON.stringify(id)} not found (unknown or expired)`);
    return this.#iterate(this.#active.get(id)?.job ?? job);
  }

  /**
   * For every vector of the `queries` job, the `k` most similar vectors of the `candidates` job (cosine, best first):
   * e.g. texts against images for retrieval. Both must be COMPLETE embedding jobs of one model (the vectors of two
   * models live in different spaces). NOT_FOUND for an unknown job; BAD_USER_INPUT naming the argument otherwise.
   */
  async rank(queriesId: string, candidatesId: string, k: number): Promise<{ rankings: SimilarityRanking[]; queries: Job; candidates: Job }> {
    if (!Number.isInteger(k) || k < 1) throw badUserInput(`k: expected a positive integer, got ${k}`, 'k');
    const [queries, candidates] = await Promise.all([this.#completeEmbedding(queriesId, 'queries'), this.#completeEmbedding(candidatesId, 'candidates')]);
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
    return { rankings: rankBySimilarity(queries.result, candidates.result, k), queries: queries.job, candidates: candidates.job };
  }

  async #completeEmbedding(id: string, field: string): Promise<{ job: Job; model: string; result: EmbeddingResult }> {
    const job = await this.#store.get(id);
    if (job === undefined) throw new AppError(ErrorCode.NotFound, `${field}: job ${JSON.stringify(id.slice(0, 100))} not found (unknown or expired)`);
    if (job.status !== 'complete') throw badUserInput(`${field}: job ${job.id} is ${job.status}; rank when it is complete`, field);
    if (job.result.task === 'classification') throw badUserInput(`${field}: job ${job.id} is a classification, not an embedding job`, field);
    return { job, model: job.model, result: job.result };
  }

  /** Whether new jobs are refused because the service is draining. */
  get draining(): boolean {
    return this.#draining;
  }

  stats(): JobStats {
    let queued = 0;
    for (const entry of this.#active.values()) if (entry.job.status === 'queued') queued += 1;
    return {
      queued,
      running: this.#active.size - queued,
      pendingImages: this.#pendingImages,
      pendingImageBytes: this.#pendingImageBytes,
      watchers: this.#watchers,
      draining: this.#draining,
      totals: { ...this.#totals },
    };
  }

  /**
   * Stops accepting jobs (SHUTTING_DOWN) and waits, at most `timeoutMs`, for accepted ones to finish.
   * Jobs still unfinished then are FAILED with SHUTTING_DOWN, so every watcher sees a terminal state.
   * Resolves to the number of jobs failed that way.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.#draining = true;
    if (this.#active.size > 0) {
      this.#logger.info({ unfinishedJobs: this.#active.size, timeoutMs }, 'draining jobs');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#whenIdle(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    const leftovers = [...this.#active.values()];
    await Promise.all(
      leftovers.map(async (entry) => {
        await this.#transition(entry, (current) => ({
          ...current,
          status: 'failed',
          startedAt: current.status === 'running' ? current.startedAt : null,
          finishedAt: new Date(),
          error: { code: ErrorCode.ShuttingDown, message: 'the server shut down before the job finished' },
        }));
        entry.abort.abort();
      }),
    );
    return leftovers.length;
  }

  /** Releases the store. Call after drain(). Idempotent. */
  async close(): Promise<void> {
    this.#draining = true;
    await this.#store.close();
  }

  // ---- validation ----

  #assertAccepting(): void {
    if (this.#draining) throw new AppError(ErrorCode.ShuttingDown, 'the server is shutting down and accepts no new jobs');
  }

  #validateClasses(classes: unknown): string[] {
    const { maxClassesPerJob, maxClassLength } = this.#limits;
    if (!Array.isArray(classes)) throw badUserInput(`classes: expected a list of class names, got ${typeName(classes)}`, 'classes');
    if (classes.length === 0) throw badUserInput('classes: expected at least one class, got none', 'classes');
    if (classes.length > maxClassesPerJob) {
      throw badUserInput(`classes: expected at most ${maxClassesPerJob} classes (MAX_CLASSES_PER_JOB), got ${classes.length}`, 'classes');
    }
    const seen = new Map<string, number>();
    return classes.map((label: unknown, index) => {
      const field = `classes[${index}]`;
      if (typeof label !== 'string') throw badUserInput(`${field}: expected a string, got ${typeName(label)}`, field);
      const key = label.trim();
      if (key === '') throw badUserInput(`${field}: expected a non-empty class name, got ${JSON.stringify(label)}`, field);
      // .length counts UTF-16 units, an upper bound of code points: count exactly only when it matters.
      if (label.length > maxClassLength) {
        const codePoints = countCodePoints(label);
        if (codePoints > maxClassLength) {
          throw badUserInput(`${field}: expected at most ${maxClassLength} characters (MAX_CLASS_LENGTH), got ${codePoints}`, field);
        }
      }
      // Duplicates are refused: identical prompts split one probability between two entries, which is never what a caller means.
      const first = seen.get(key);
      if (first !== undefined) throw badUserInput(`${field}: duplicates classes[${first}] (${JSON.stringify(key.slice(0, 100))})`, field);
      seen.set(key, index);
      return label;
    });
  }

  #resolveModel(requested: string | undefined): string {
    const name = requested ?? this.#clip.defaultModelName;
    const resolved = typeof name === 'string' ? this.#clip.resolveModelName(name) : undefined;
    if (resolved === undefined) {
      const known = this.#clip.models().map((model) => model.name);
      throw badUserInput(`model: unknown model ${JSON.stringify(String(name).slice(0, 200))}; available: ${known.join(', ') || 'none'}`, 'model');
    }
    return resolved;
  }

  /** Texts to embed: a non-empty list of non-blank strings, bounded in count and length. Duplicates are fine (one vector each). */
  #validateTexts(texts: unknown, listField: string, batched: boolean): string[] {
    const { maxTextsPerJob, maxTextLength } = this.#limits;
    if (!Array.isArray(texts)) throw badUserInput(`${listField}: expected a list of texts, got ${typeName(texts)}`, listField);
    if (texts.length === 0) throw badUserInput(`${listField}: expected at least one text, got none`, listField);
    if (texts.length > maxTextsPerJob) {
      throw badUserInput(`${listField}: expected at most ${maxTextsPerJob} texts (MAX_TEXTS_PER_JOB), got ${texts.length}`, listField);
    }
    return texts.map((text: unknown, index) => {
      const field = batched ? `${listField}[${index}]` : listField;
      if (typeof text !== 'string') throw badUserInput(`${field}: expected a string, got ${typeName(text)}`, field);
      if (text.trim() === '') throw badUserInput(`${field}: expected a non-empty text, got ${JSON.stringify(text)}`, field);
      if (text.length > maxTextLength) {
        const codePoints = countCodePoints(text);
        if (codePoints > maxTextLength) {
          throw badUserInput(`${field}: expected at most ${maxTextLength} characters (MAX_TEXT_LENGTH), got ${codePoints}`, field);
        }
      }
      return text;
    });
  }

  #validateImageList(input: SubmitImages): unknown[] {
    const field = input.imagesField;
    const images: unknown = input.images;
    if (!Array.isArray(images)) throw badUserInput(`${field}: expected a list of images, got ${typeName(images)}`, field);
    if (images.length === 0) throw badUserInput(`${field}: expected at least one image, got none`, field);
    if (images.length > this.#limits.maxImagesPerJob) {
      throw badUserInput(`${field}: expected at most ${this.#limits.maxImagesPerJob} images (MAX_IMAGES_PER_JOB), got ${images.length}`, field);
    }
    return images;
  }

  #admit(imageCount: number, imageBytes: number): void {
    const { maxQueuedJobs, maxQueuedImages, maxPendingImageBytes } = this.#limits;
    if (this.#active.size >= maxQueuedJobs) {
      throw new AppError(ErrorCode.Overloaded, `too many jobs in progress (${this.#active.size}, MAX_QUEUED_JOBS=${maxQueuedJobs}); retry later`);
    }
    // Queued jobs' images are in our queue, running jobs' in the classifier's, but only once decoded: every image
    // of an unfinished job counts until the job ends. Otherwise jobs admitted while others decode overfill the
    // classifier's queue, which then fails jobs already accepted with OVERLOADED (issue 5).
    const waiting = Math.max(this.#pendingImages, this.#queuedImages + this.#clip.queuedImages());
    if (waiting + imageCount > maxQueuedImages) {
      throw new AppError(ErrorCode.Overloaded, `too many images waiting for inference (${waiting}, MAX_QUEUED_IMAGES=${maxQueuedImages}); retry later`);
    }
    if (this.#pendingImageBytes + imageBytes > maxPendingImageBytes) {
      throw new AppError(
        ErrorCode.Overloaded,
        `too many image bytes held by unfinished jobs (MAX_PENDING_IMAGE_BYTES=${maxPendingImageBytes}); retry later`,
      );
    }
  }

  // ---- running ----

  #pump(): void {
    while (this.#running < this.#limits.maxConcurrentJobs && this.#queue.length > 0) {
      const id = this.#queue.shift() as string;
      const entry = this.#active.get(id);
      if (entry === undefined || entry.job.status !== 'queued') continue;
      this.#running += 1;
      void this.#run(entry).finally(() => {
        this.#running -= 1;
        this.#pump();
      });
    }
  }

  async #run(entry: ActiveJob): Promise<void> {
    const images = entry.images;
    const running = await this.#transition(entry, (current) =>
      current.status === 'queued' ? { ...current, status: 'running', startedAt: new Date() } : null,
    );
    if (running.status !== 'running' || images === null) return;
    try {
      const jobResult = await this.#infer(running, images, entry);
      await this.#transition(entry, (current) =>
        current.status === 'running' ? { ...current, status: 'complete', finishedAt: new Date(), result: jobResult } : null,
      );
    } catch (error) {
      // A cancel or drain already made the job terminal; its abandoned inference error is expected noise.
      if (isTerminal(entry.job)) return;
      const failure = this.#toFailure(error, running);
      await this.#transition(entry, (current) =>
        current.status === 'running' ? { ...current, status: 'failed', finishedAt: new Date(), error: failure } : null,
      );
    }
  }

  /** The task's inference, checked against the job's shape (one row per input, in order). */
  async #infer(job: Job, images: Uint8Array[], entry: ActiveJob): Promise<JobResult> {
    const signal = entry.abort.signal;
    switch (job.task) {
      case 'classification':
        return toClassificationResult(
          await this.#clip.classify({ model: job.model, images, labels: job.classes, prompt: entry.prompt, signal }),
          job,
        );
      case 'image-embedding':
        return toEmbeddingResult(await this.#clip.embedImages({ model: job.model, images, signal }), job.task, job.imageCount);
      case 'text-embedding':
        return toEmbeddingResult(
          await this.#clip.embedTexts({ model: job.model, texts: job.texts, prompt: entry.prompt, signal }),
          job.task,
          job.texts.length,
        );
      default:
        throw new UnreachableCaseError(job.task);
    }
  }

  #toFailure(error: unknown, job: Job): JobFailure {
    if (isAppError(error)) return { code: error.code, message: error.message };
    this.#logger.error({ err: error, jobId: job.id, model: job.model }, 'job failed with an unexpected error');
    return { code: ErrorCode.InternalServerError, message: 'internal error' };
  }

  /**
   * Applies `next` to the job's current state unless it is terminal (or `next` returns null), stores
   * it, then updates the in-process state and emits in the same tick. Serialised per job.
   */
  #transition(entry: ActiveJob, next: (current: Job) => Job | null): Promise<Job> {
    const result = entry.chain.then(async () => {
      const current = entry.job;
      if (isTerminal(current)) return current;
      const proposed = next(current);
      if (proposed === null) return current;
      // The TTL counts from the last change, so a finished job keeps its result for the full TTL. The change's own
      // timestamp is the base (not a second clock read), so expiresAt − finishedAt is exactly the TTL even under load.
      const changedAt = proposed.status === 'running' ? proposed.startedAt : proposed.status === 'queued' ? new Date() : proposed.finishedAt;
      const updated: Job = { ...proposed, expiresAt: this.#expiry(changedAt) };
      try {
        await this.#store.update(updated);
      } catch (error) {
        // The in-process state still advances so watchers and drain are not stuck on a store outage.
        this.#logger.error({ err: error, jobId: current.id }, 'job store update failed');
      }
      // Leaving QUEUED: the images are now the classifier's to count (or gone).
      if (current.status === 'queued') this.#queuedImages -= current.imageCount;
      entry.job = updated;
      if (isTerminal(updated)) this.#release(entry);
      this.#announce(updated);
      return updated;
    });
    entry.chain = result.catch(() => undefined);
    return result;
  }

  /** Forgets the unfinished-job state (images included) and wakes drain() when nothing is left. */
  #release(entry: ActiveJob): void {
    if (!this.#active.delete(entry.job.id)) return;
    entry.images = null;
    this.#pendingImages -= entry.job.imageCount;
    this.#pendingImageBytes -= entry.imageBytes;
    if (this.#active.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  #whenIdle(): Promise<void> {
    if (this.#active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #announce(job: Job): void {
    this.#totals[job.status] += 1;
    this.#logger.info(jobLogFields(job), `job ${job.status}`);
    this.events.emit('jobUpdated', job);
  }

  #expiry(from: Date): Date {
    return new Date(from.getTime() + this.#limits.ttlSeconds * 1000);
  }

  // ---- watching ----

  #iterate(current: Job): AsyncIterableIterator<Job> {
    const buffer: Job[] = [current];
    let lastRank = STATUS_RANK[current.status];
    let finished = false;
    let pending: ((result: IteratorResult<Job>) => void) | null = null;
    this.#watchers += 1;

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
    const unsubscribe = this.events.on('jobUpdated', (job) => {
      if (job.id !== current.id || finished || STATUS_RANK[job.status] <= lastRank) return;
      lastRank = STATUS_RANK[job.status];
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
    });
    // The current state may already be the last one.
    if (isTerminal(current)) unsubscribe();

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
    return iterator;
  }

}

function toClassificationResult(result: ClassifyResult, job: Job): JobResult {
  const rows = result.probabilities;
  if (rows.length !== job.imageCount || rows.some((row) => row.length !== job.classes.length)) {
    throw new Error(
      `classifier returned ${rows.length} rows of ${rows[0]?.length ?? 0} for ${job.imageCount} images × ${job.classes.length} classes`,
    );
  }
  return { task: 'classification', images: rows.map((probabilities) => ({ probabilities: [...probabilities] })) };
}

function toEmbeddingResult(result: EmbeddingVectors, task: EmbeddingResult['task'], inputs: number): EmbeddingResult {
  const rows = result.embeddings;
  const width = rows[0]?.length ?? 0;
  if (rows.length !== inputs || width === 0 || rows.some((row) => row.length !== width)) {
    throw new Error(`embedder returned ${rows.length} vectors of ${width} for ${inputs} inputs`);
  }
  return { task, embeddings: rows };
}

function jobLogFields(job: Job): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    jobId: job.id,
    task: job.task,
    model: job.model,
    status: job.status,
    images: job.imageCount,
    classes: job.classes.length,
    texts: job.texts.length,
  };
  switch (job.status) {
    case 'queued':
      break;
    case 'running':
      fields.queuedMs = job.startedAt.getTime() - job.createdAt.getTime();
      break;
    case 'complete':
    case 'failed':
    case 'cancelled':
      if (job.startedAt !== null) {
        fields.queuedMs = job.startedAt.getTime() - job.createdAt.getTime();
        fields.runMs = job.finishedAt.getTime() - job.startedAt.getTime();
      }
      fields.totalMs = job.finishedAt.getTime() - job.createdAt.getTime();
      if (job.status === 'failed') fields.error = job.error;
      break;
    default:
      throw new UnreachableCaseError(job);
  }
  return fields;
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
