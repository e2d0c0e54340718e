/**
 * The job contract both APIs read (GraphQL and the feature-extraction-server REST API).
 * A job's lifecycle is one discriminated union: queued → running → complete | failed | cancelled
 * (queued → cancelled and queued → failed are possible too). Each phase carries only its valid fields.
 * A job is one of three tasks (classification, image embedding, text embedding); its result says which.
 *
 * A Job is plain data (strings, numbers, arrays, Dates): no class instances with behaviour and no
 * functions; `serialise.ts` turns it into JSON and back at the storage boundary, so every backend stores the same thing.
 */
import type { ErrorCode } from '../errors.js';

export type JobStatus = 'queued' | 'running' | 'complete' | 'failed' | 'cancelled';
export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'complete', 'failed', 'cancelled'];
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>(['complete', 'failed', 'cancelled']);

/**
 * What a job computes: class probabilities per image, or one L2-normalised vector per input image
 * or text (the joint embedding space, so text vectors can be compared with image vectors).
 */
export type JobTask = 'classification' | 'image-embedding' | 'text-embedding';
export const JOB_TASKS: readonly JobTask[] = ['classification', 'image-embedding', 'text-embedding'];
export type EmbeddingTask = Exclude<JobTask, 'classification'>;

/** Per input image, in input order: `probabilities[i]` belongs to `job.classes[i]`. */
export interface ImageClassification {
  probabilities: number[];
}

export interface ClassificationResult {
  task: 'classification';
  images: ImageClassification[];
}

/**
 * One vector per input (image or text), in input order, each `model.embeddingSize` long and of unit L2 norm.
 * Numbers are the float32 values the model computed, held as JSON-ready numbers.
 */
export interface EmbeddingResult {
  task: EmbeddingTask;
  embeddings: number[][];
  /** A text embedding's tokens: the ids the text tower read, summed over its texts (special tokens included, after truncation). */
  tokens?: number;
}

/** A complete job's result; `result.task` is always the job's `task`. */
export type JobResult = ClassificationResult | EmbeddingResult;

export interface JobFailure {
  code: ErrorCode;
  message: string;
}

interface JobCommon {
  id: string;
  /**
   * The keyed hash of the API key that created the job (jobs/caller.ts), never the key; null when it was created
   * with authentication off. Only that key and admins see the job.
   */
  owner: string | null;
  task: JobTask;
  /** The resolved name of the model the job runs on. */
  model: string;
  /** A classification's classes; empty for the other tasks. */
  classes: string[];
  /** The stored classifier a classification scores against (its classes are `classes`); absent for inline classes. */
  classifier?: string;
  /** A text embedding's texts, in order; empty for the other tasks. */
  texts: string[];
  /** Input images (0 for a text embedding). */
  imageCount: number;
  /** True when submitted as a list (GraphQL `images`/`texts`, REST batched route); shapes REST results. */
  batched: boolean;
  createdAt: Date;
  /** When the store forgets the job. */
  expiresAt: Date;
  /**
   * 0 when created, +1 on every stored transition. Events carry it, so a subscriber drops stale or
   * repeated ones (pub/sub may redeliver, reorder across reconnects, or lose messages while Redis is away).
   */
  version: number;
}

export type Job =
  | (JobCommon & { status: 'queued' })
  | (JobCommon & { status: 'running'; startedAt: Date })
  | (JobCommon & { status: 'complete'; startedAt: Date; finishedAt: Date; result: JobResult })
  | (JobCommon & { status: 'failed'; startedAt: Date | null; finishedAt: Date; error: JobFailure })
  | (JobCommon & { status: 'cancelled'; startedAt: Date | null; finishedAt: Date });

/** The image part of a submission, shared by every image-taking task (validated in one place by JobService). */
export interface SubmitImages {
  /**
   * Images in order: data URLs, bare base64 or http(s) URLs (JSON inputs), or the bytes themselves (file uploads, which
   * skip the base64 decoding; every other check is the same).
   */
  images: (string | Uint8Array)[];
  /** The name of the input field the images came from (`image`, `images`), for error messages. */
  imagesField: string;
  batched: boolean;
}

interface SubmitCommon {
  /** Catalogue name, hub id or loaded-model name; the default model when omitted. */
  model?: string | undefined;
}

/** A classification (the task when `task` is omitted). Still untrusted user input. */
export interface SubmitClassificationInput extends SubmitImages, SubmitCommon {
  task?: 'classification';
  /** Inline classes; empty when `classifier` is given. */
  classes: string[];
  /** A stored classifier's id (src/classifiers): its classes and prompt ensemble, built once. */
  classifier?: string | undefined;
  /** Free-form per-job config (`promptTemplate`, `promptTemplates`); validated by JobService. */
  config?: unknown;
}

export interface SubmitImageEmbeddingInput extends SubmitImages, SubmitCommon {
  task: 'image-embedding';
}

export interface SubmitTextEmbeddingInput extends SubmitCommon {
  task: 'text-embedding';
  texts: string[];
  /** The name of the input field the texts came from (`text`, `texts`), for error messages. */
  textsField: string;
  batched: boolean;
  /** Prompt settings as for classification, but with no template by default: texts are embedded verbatim. */
  config?: unknown;
}

/** What an API layer hands to JobService.submit: still untrusted user input. */
export type SubmitJobInput = SubmitClassificationInput | SubmitImageEmbeddingInput | SubmitTextEmbeddingInput;

export function isTerminal(job: Job): boolean {
  return TERMINAL_STATUSES.has(job.status);
}
