/**
 * The wire shapes of vitrivr's feature-extraction-server (FES) for zero-shot image classification, and the
 * translation between them and our job contract (src/jobs/types.ts). Pure functions: no express, no I/O.
 *
 * Seed reference: `src/base_api/feature_extraction_server/services/base_api.py` (routes, `{id, status}` and
 * `{status, result}` bodies, kebab/snake model names) and
 * `src/zero_shot_image_classification/.../zero_shot_image_classification.py` (input `image`, `classes`,
 * `config`; output `probabilities`), where `image` becomes a list on the batched routes and the batched result
 * is a list of `{probabilities}`.
 */
import { AppError, ErrorCode, UnreachableCaseError, badUserInput } from '../errors.js';
import type { Job, JobStatus, SubmitJobInput } from '../jobs/types.js';
import { PROMPT_CONFIG_KEYS } from '../clip/index.js';
import type { ClipModels } from './deps.js';

/** The one FES task this server implements, in the kebab case the seed's paths use. */
export const ZERO_SHOT_TASK = 'zero-shot-image-classification';

/** The seed's `JobState` enum. */
export type FesJobState = 'starting' | 'running' | 'complete' | 'failed';

/** `POST .../jobs` answer. */
export interface FesNewJobResponse {
  id: string;
  status: FesJobState;
}

/** The seed's `ZeroShotImageClassificationOutput`: `probabilities[i]` belongs to `classes[i]`. */
export interface FesClassification {
  probabilities: number[];
}

/** Why a job failed; ours, the seed answered 500 instead. */
export interface FesJobError {
  /** An ErrorCode, or `CANCELLED` for a job cancelled through GraphQL. */
  code: string;
  message: string;
}

/** `GET .../jobs/{id}` answer; `result` is one classification, or a list of them on the batched route. */
export type FesJobResponse =
  | { status: 'starting' | 'running' }
  | { status: 'complete'; result: FesClassification | FesClassification[] }
  | { status: 'failed'; error: FesJobError };

/**
 * Our job status as the seed's clients know it. The seed had no queue and no cancellation, so:
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

/**
 * The FES answer for a job. `batched` is the route the job is read on: the batched route always answers a list,
 * the single route one classification, and the single route refuses a job of several images rather than
 * silently dropping all but the first.
 */
export function toFesJobResponse(job: Job, batched: boolean): FesJobResponse {
  if (!batched && job.imageCount !== 1) {
    throw badUserInput(
      `Job ${job.id} has ${job.imageCount} images; read it at /api/tasks/${ZERO_SHOT_TASK}/batched/jobs/${job.id}`,
      'id',
    );
  }
  switch (job.status) {
    case 'queued':
      return { status: 'starting' };
    case 'running':
      return { status: 'running' };
    case 'complete': {
      const images = job.result.images.map((image) => ({ probabilities: image.probabilities }));
      const first = images[0];
      if (batched) return { status: 'complete', result: images };
      if (first === undefined) throw new Error(`Complete job ${job.id} has no image results`);
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
 * Reads an FES job body (`{"image": ..., "classes": [...], "config": {...}}`) into a job submission, checking
 * only JSON types: emptiness, limits, base64 and image validity are JobService's to judge. Extra keys are
 * ignored, as pydantic did for the seed.
 */
export function parseFesJobBody(body: unknown, batched: boolean): Omit<SubmitJobInput, 'model'> {
  if (!isPlainObject(body)) {
    throw badUserInput('Request body must be a JSON object with "image" and "classes" (Content-Type: application/json)');
  }
  const images = batched ? parseImageList(body.image) : [parseSingleImage(body.image)];
  return {
    images,
    imagesField: 'image',
    batched,
    classes: parseClasses(body.classes),
    config: parseConfig(body.config),
  };
}

/**
 * The configured model a path segment names, in kebab or snake case as the seed allowed
 * (`clip-vit-base-patch32`, `clip_vit_base_patch32`; resolveModelName matches either); undefined when none matches.
 */
export function resolveFesModel(clip: ClipModels, name: string): string | undefined {
  return clip.resolveModelName(name);
}

/** Like {@link resolveFesModel}, but an unknown model is a BAD_USER_INPUT naming the configured ones. */
export function requireFesModel(clip: ClipModels, name: string): string {
  const resolved = resolveFesModel(clip, name);
  if (resolved === undefined) {
    throw badUserInput(`Unknown model "${truncate(name)}"; this server has: ${fesModelNames(clip).join(', ')}`, 'model');
  }
  return resolved;
}

/** Model names as the seed listed them: kebab case. */
export function fesModelNames(clip: ClipModels): string[] {
  return clip.models().map((model) => toKebabCase(model.name));
}

/** True when a path segment names our task, in kebab or snake case. */
export function isZeroShotTask(task: string): boolean {
  return toKebabCase(task) === ZERO_SHOT_TASK;
}

/** A NOT_FOUND for a task this server does not offer. */
export function unknownTask(task: string): AppError {
  return new AppError(ErrorCode.NotFound, `Unknown task "${truncate(task)}"; this server offers: ${ZERO_SHOT_TASK}`);
}

/** `clip_vit_base_patch32` → `clip-vit-base-patch32`, as the seed's `to_kebab_case`. */
export function toKebabCase(name: string): string {
  return name.replace(/_/g, '-');
}

function parseSingleImage(value: unknown): string {
  if (value === undefined || value === null) throw badUserInput('"image" is required: a data URL or base64 string', 'image');
  if (typeof value !== 'string') {
    const hint = Array.isArray(value) ? `; for several images use /api/tasks/${ZERO_SHOT_TASK}/batched/{model}/jobs` : '';
    throw badUserInput(`"image" expects a data URL or base64 string, but got ${describe(value)}${hint}`, 'image');
  }
  return value;
}

function parseImageList(value: unknown): string[] {
  if (value === undefined || value === null) throw badUserInput('"image" is required: a list of data URLs or base64 strings', 'image');
  if (!Array.isArray(value)) {
    throw badUserInput(`"image" expects a list of data URLs or base64 strings on the batched route, but got ${describe(value)}`, 'image');
  }
  return value.map((item: unknown, index) => {
    if (typeof item !== 'string') {
      throw badUserInput(`"image[${index}]" expects a data URL or base64 string, but got ${describe(item)}`, `image[${index}]`);
    }
    return item;
  });
}

function parseClasses(value: unknown): string[] {
  if (value === undefined || value === null) throw badUserInput('"classes" is required: a list of class names', 'classes');
  if (!Array.isArray(value)) throw badUserInput(`"classes" expects a list of strings, but got ${describe(value)}`, 'classes');
  return value.map((item: unknown, index) => {
    if (typeof item !== 'string') {
      throw badUserInput(`"classes[${index}]" expects a string, but got ${describe(item)}`, `classes[${index}]`);
    }
    return item;
  });
}

/**
 * FES's OpenAPI spec declares `config` a free-form object whose unknown keys its models ignore (vitrivr-engine sends
 * e.g. `{"top_k": 50}`), so keys other than the prompt settings are dropped here, not refused (issue 8); the GraphQL
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
