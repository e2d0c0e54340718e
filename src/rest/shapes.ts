/**
 * The wire shapes of vitrivr's feature-extraction-server (FES) for its three CLIP tasks (zero-shot image
 * classification, image embedding, text embedding), and the translation between them and our job contract
 * (src/jobs/types.ts). Pure functions: no express, no I/O.
 *
 * FES reference: `src/base_api/feature_extraction_server/services/base_api.py` (routes, `{id, status}` and
 * `{status, result}` bodies, kebab/snake model names) and
 * `src/zero_shot_image_classification/.../zero_shot_image_classification.py` (input `image`, `classes`,
 * `config`; output `probabilities`), where `image` becomes a list on the batched routes and the batched result
 * is a list of `{probabilities}`. `src/image_embedding/.../image_embedding.py` (`image`, `config` → `embedding`)
 * and `src/text_embedding/.../text_embedding.py` (`text`, `config` → `embedding`) follow the same pattern: FES's
 * HTTP layer unrolls a model's batched `{"embedding": [[...], …]}` into one `{"embedding": [...]}` per input.
 */
import { AppError, ErrorCode, UnreachableCaseError, badUserInput } from '../errors.js';
import type { Job, JobStatus, JobTask, SubmitJobInput } from '../jobs/index.js';
import { PROMPT_CONFIG_KEYS, type ModelStatus } from '../clip/index.js';
import type { ClipModels } from './deps.js';

/** The FES tasks this server implements, in the kebab case FES's paths use. */
export const ZERO_SHOT_TASK = 'zero-shot-image-classification';
export const IMAGE_EMBEDDING_TASK = 'image-embedding';
export const TEXT_EMBEDDING_TASK = 'text-embedding';
export const FES_TASKS = [ZERO_SHOT_TASK, IMAGE_EMBEDDING_TASK, TEXT_EMBEDDING_TASK] as const;
export type FesTask = (typeof FES_TASKS)[number];

/** FES task → our job task, and back: the only place the two vocabularies meet. */
const JOB_TASK_OF: Record<FesTask, JobTask> = {
  [ZERO_SHOT_TASK]: 'classification',
  [IMAGE_EMBEDDING_TASK]: 'image-embedding',
  [TEXT_EMBEDDING_TASK]: 'text-embedding',
};
const FES_TASK_OF: Record<JobTask, FesTask> = {
  classification: ZERO_SHOT_TASK,
  'image-embedding': IMAGE_EMBEDDING_TASK,
  'text-embedding': TEXT_EMBEDDING_TASK,
};

/** The FES task a path segment names (kebab or snake case), or undefined. */
export function fesTaskOf(segment: string): FesTask | undefined {
  const kebab = toKebabCase(segment);
  return FES_TASKS.find((task) => task === kebab);
}

/** Like {@link fesTaskOf}, but an unknown task is a NOT_FOUND listing the offered ones. */
export function requireFesTask(segment: string): FesTask {
  const task = fesTaskOf(segment);
  if (task === undefined) throw unknownTask(segment);
  return task;
}

export function jobTaskOf(task: FesTask): JobTask {
  return JOB_TASK_OF[task];
}

export function fesTaskNameOf(task: JobTask): FesTask {
  return FES_TASK_OF[task];
}

/**
 * Jobs are read on their own task's routes: a job id read under another task is NOT_FOUND (as FES, whose job
 * ids live per task), with a message that says where the job is.
 */
export function assertJobOnRoute(job: Job, task: FesTask, batched: boolean): void {
  if (job.task === jobTaskOf(task)) return;
  const path = `/api/tasks/${fesTaskNameOf(job.task)}${batched ? '/batched' : ''}/jobs/${job.id}`;
  throw new AppError(
    ErrorCode.NotFound,
    `Job ${job.id} is not a ${task} job: it is a ${fesTaskNameOf(job.task)} job, read at ${path}`,
  );
}

/** FES's `JobState` enum. */
export type FesJobState = 'starting' | 'running' | 'complete' | 'failed';

/** `POST .../jobs` answer. */
export interface FesNewJobResponse {
  id: string;
  status: FesJobState;
}

/** FES's `ZeroShotImageClassificationOutput`: `probabilities[i]` belongs to `classes[i]`. */
export interface FesClassification {
  probabilities: number[];
}

/** FES's `ImageEmbeddingOutput` / `TextEmbeddingOutput`: one L2-normalised vector. */
export interface FesEmbedding {
  embedding: number[];
}

/** One input's result, in the shape of the job's task. */
export type FesTaskOutput = FesClassification | FesEmbedding;

/** Why a job failed; ours, where FES answers 500. */
export interface FesJobError {
  /** An ErrorCode, or `CANCELLED` for a job cancelled through GraphQL. */
  code: string;
  message: string;
}

/** `GET .../jobs/{id}` answer; `result` is one output, or a list of them (in input order) on the batched route. */
export type FesJobResponse =
  | { status: 'starting' | 'running' }
  | { status: 'complete'; result: FesTaskOutput | FesTaskOutput[] }
  | { status: 'failed'; error: FesJobError };

/**
 * Our job status as FES's clients know it. FES has no queue and no cancellation, so:
 * queued → `starting`, running → `running`, complete → `complete`, failed and cancelled → `failed`.
 */
export function toFesJobState(status: JobStatus): FesJobState {
  switch (status) {
    case 'queued':
      return 'starting';
    case 'running':
      return 'running';
    case 'complete':
      return 'complete';
    case 'failed':
    case 'cancelled':
      return 'failed';
    default:
      throw new UnreachableCaseError(status);
  }
}

/** FES's `ModelState` (openapi_spec.json). */
export type FesModelState = 'uninitialized' | 'starting' | 'loading' | 'running' | 'stopped' | 'failed';

/** FES's `ModelStatus`: the model's state and its unfinished jobs. */
export interface FesModelStatus {
  status: FesModelState;
  jobs: { id: string; status: FesJobState }[];
}

/**
 * Our model status as FES names it. FES has no `stopping`: a model finishing its running jobs before it releases
 * its sessions still runs them, so it is `running` until it is `stopped`.
 */
export function toFesModelState(status: ModelStatus): FesModelState {
  switch (status) {
    case 'ready':
    case 'stopping':
      return 'running';
    case 'uninitialized':
    case 'starting':
    case 'loading':
    case 'stopped':
    case 'failed':
      return status;
    default:
      throw new UnreachableCaseError(status);
  }
}

/** `GET /api/models/{model}/status`'s body. */
export function toFesModelStatus(status: ModelStatus, jobs: readonly Job[]): FesModelStatus {
  return {
    status: toFesModelState(status),
    jobs: jobs.map((job) => ({ id: job.id, status: toFesJobState(job.status) })),
  };
}

/** How many inputs (images, or texts for a text embedding) a job has. */
export function inputCountOf(job: Job): number {
  return job.task === 'text-embedding' ? job.texts.length : job.imageCount;
}

/**
 * A complete job's outputs, one per input in order: `{probabilities}` for a classification, `{embedding}` for
 * an embedding (the vectors are the stored arrays themselves: no copy on the way to JSON).
 */
export function toFesOutputs(result: Extract<Job, { status: 'complete' }>['result']): FesTaskOutput[] {
  switch (result.task) {
    case 'classification':
      return result.images.map((image) => ({ probabilities: image.probabilities }));
    case 'image-embedding':
    case 'text-embedding':
      return result.embeddings.map((embedding) => ({ embedding }));
    default:
      throw new UnreachableCaseError(result);
  }
}

/**
 * The FES answer for a job. `batched` is the route the job is read on: the batched route always answers a list,
 * the single route one output, and the single route refuses a job of several inputs rather than
 * silently dropping all but the first.
 */
export function toFesJobResponse(job: Job, batched: boolean): FesJobResponse {
  const inputs = inputCountOf(job);
  if (!batched && inputs !== 1) {
    const noun = job.task === 'text-embedding' ? 'texts' : 'images';
    throw badUserInput(
      `Job ${job.id} has ${inputs} ${noun}; read it at /api/tasks/${fesTaskNameOf(job.task)}/batched/jobs/${job.id}`,
      'id',
    );
  }
  switch (job.status) {
    case 'queued':
      return { status: 'starting' };
    case 'running':
      return { status: 'running' };
    case 'complete': {
      const outputs = toFesOutputs(job.result);
      const first = outputs[0];
      if (batched) return { status: 'complete', result: outputs };
      if (first === undefined) throw new Error(`Complete job ${job.id} has no results`);
      return { status: 'complete', result: first };
    }
    case 'failed':
      return { status: 'failed', error: { code: job.error.code, message: job.error.message } };
    case 'cancelled':
      return { status: 'failed', error: { code: 'CANCELLED', message: 'The job was cancelled before it finished' } };
    default:
      throw new UnreachableCaseError(job);
  }
}

/** The FES answer for a newly accepted job. */
export function toFesNewJobResponse(job: Job): FesNewJobResponse {
  return { id: job.id, status: toFesJobState(job.status) };
}

/**
 * Reads an FES job body into a job submission, checking only JSON types: emptiness, limits, base64 and image
 * validity are JobService's to judge. Extra keys are ignored, as FES's pydantic models do. Bodies per task:
 * - zero-shot-image-classification: `{"image", "classes": [...], "config"?}`
 * - image-embedding: `{"image", "config"?}`; FES's CLIP models take no settings, so `config` (an object) is ignored
 * - text-embedding: `{"text", "config"?}`; `config` takes classification's prompt settings, none by default (verbatim)
 * with `image`/`text` a list on the batched route.
 */
export function parseFesJobBody(
  body: unknown,
  batched: boolean,
  task: FesTask = ZERO_SHOT_TASK,
): SubmitJobInput & { model?: undefined } {
  switch (task) {
    case ZERO_SHOT_TASK: {
      const object = requireObject(body, '"image" and "classes"');
      return {
        ...parseImages(object.image, batched, task),
        classes: parseClasses(object.classes),
        config: parseConfig(object.config),
      };
    }
    case IMAGE_EMBEDDING_TASK: {
      const object = requireObject(body, '"image"');
      parseConfig(object.config);
      return { task: 'image-embedding', ...parseImages(object.image, batched, task) };
    }
    case TEXT_EMBEDDING_TASK: {
      const object = requireObject(body, '"text"');
      const texts = batched ? parseTextList(object.text) : [parseSingleText(object.text)];
      return { task: 'text-embedding', texts, textsField: 'text', batched, config: parseConfig(object.config) };
    }
    default:
      throw new UnreachableCaseError(task);
  }
}

function requireObject(body: unknown, fields: string): Record<string, unknown> {
  if (!isPlainObject(body))
    throw badUserInput(`Request body must be a JSON object with ${fields} (Content-Type: application/json)`);
  return body;
}

function parseImages(
  value: unknown,
  batched: boolean,
  task: FesTask,
): { images: string[]; imagesField: string; batched: boolean } {
  return { images: batched ? parseImageList(value) : [parseSingleImage(value, task)], imagesField: 'image', batched };
}

/**
 * The configured model a path segment names, in kebab or snake case as FES allows
 * (`clip-vit-base-patch32`, `clip_vit_base_patch32`; resolveModelName matches either); undefined when none matches.
 */
export function resolveFesModel(clip: ClipModels, name: string): string | undefined {
  return clip.resolveModelName(name);
}

/** Like {@link resolveFesModel}, but an unknown model is a BAD_USER_INPUT naming the configured ones. */
export function requireFesModel(clip: ClipModels, name: string): string {
  const resolved = resolveFesModel(clip, name);
  if (resolved === undefined) {
    throw badUserInput(
      `Unknown model "${truncate(name)}"; this server has: ${fesModelNames(clip).join(', ')}`,
      'model',
    );
  }
  return resolved;
}

/** Model names as FES lists them: kebab case. */
export function fesModelNames(clip: ClipModels): string[] {
  return clip.models().map((model) => toKebabCase(model.name));
}

/** True when a path segment names the zero-shot classification task, in kebab or snake case. */
export function isZeroShotTask(task: string): boolean {
  return fesTaskOf(task) === ZERO_SHOT_TASK;
}

/** A NOT_FOUND for a task this server does not offer. */
export function unknownTask(task: string): AppError {
  return new AppError(
    ErrorCode.NotFound,
    `Unknown task "${truncate(task)}"; this server offers: ${FES_TASKS.join(', ')}`,
  );
}

/** `clip_vit_base_patch32` → `clip-vit-base-patch32`, as FES's `to_kebab_case`. */
export function toKebabCase(name: string): string {
  return name.replace(/_/g, '-');
}

function parseSingleImage(value: unknown, task: FesTask): string {
  if (value === undefined || value === null)
    throw badUserInput('"image" is required: a data URL, base64 string or http(s) URL', 'image');
  if (typeof value !== 'string') {
    const hint = Array.isArray(value) ? `; for several images use /api/tasks/${task}/batched/{model}/jobs` : '';
    throw badUserInput(
      `"image" expects a data URL, base64 string or http(s) URL, but got ${describe(value)}${hint}`,
      'image',
    );
  }
  return value;
}

function parseImageList(value: unknown): string[] {
  if (value === undefined || value === null)
    throw badUserInput('"image" is required: a list of data URLs, base64 strings or http(s) URLs', 'image');
  if (!Array.isArray(value)) {
    throw badUserInput(
      `"image" expects a list of data URLs, base64 strings or http(s) URLs on the batched route, but got ${describe(value)}`,
      'image',
    );
  }
  return value.map((item: unknown, index) => {
    if (typeof item !== 'string') {
      throw badUserInput(
        `"image[${index}]" expects a data URL, base64 string or http(s) URL, but got ${describe(item)}`,
        `image[${index}]`,
      );
    }
    return item;
  });
}

function parseSingleText(value: unknown): string {
  if (value === undefined || value === null) throw badUserInput('"text" is required: a string', 'text');
  if (typeof value !== 'string') {
    const hint = Array.isArray(value)
      ? `; for several texts use /api/tasks/${TEXT_EMBEDDING_TASK}/batched/{model}/jobs`
      : '';
    throw badUserInput(`"text" expects a string, but got ${describe(value)}${hint}`, 'text');
  }
  return value;
}

function parseTextList(value: unknown): string[] {
  if (value === undefined || value === null) throw badUserInput('"text" is required: a list of strings', 'text');
  if (!Array.isArray(value))
    throw badUserInput(`"text" expects a list of strings on the batched route, but got ${describe(value)}`, 'text');
  return value.map((item: unknown, index) => {
    if (typeof item !== 'string')
      throw badUserInput(`"text[${index}]" expects a string, but got ${describe(item)}`, `text[${index}]`);
    return item;
  });
}

function parseClasses(value: unknown): string[] {
  if (value === undefined || value === null)
    throw badUserInput('"classes" is required: a list of class names', 'classes');
  if (!Array.isArray(value))
    throw badUserInput(`"classes" expects a list of strings, but got ${describe(value)}`, 'classes');
  return value.map((item: unknown, index) => {
    if (typeof item !== 'string') {
      throw badUserInput(`"classes[${index}]" expects a string, but got ${describe(item)}`, `classes[${index}]`);
    }
    return item;
  });
}

/**
 * FES's OpenAPI spec declares `config` a free-form object whose unknown keys its models ignore (vitrivr-engine sends
 * e.g. `{"top_k": 50}`), so keys other than the prompt settings are dropped here, not refused (a client written for FES must keep working); the GraphQL
 * input stays strict. {@link unknownFesConfigKeys} names them, for a debug log.
 */
function parseConfig(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) throw badUserInput(`"config" expects an object, but got ${describe(value)}`, 'config');
  const known: Record<string, unknown> = {};
  for (const key of PROMPT_CONFIG_KEYS) if (key in value) known[key] = value[key];
  return known;
}

/** The keys of an FES body's `config` this server ignores (none when `config` is absent or not an object). */
export function unknownFesConfigKeys(body: unknown): string[] {
  const config = isPlainObject(body) ? body.config : undefined;
  if (!isPlainObject(config)) return [];
  return Object.keys(config).filter((key) => !(PROMPT_CONFIG_KEYS as readonly string[]).includes(key));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

// User strings echoed in messages are cut short so a 10 MB "model name" does not come back in the error.
function truncate(text: string, max = 100): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
