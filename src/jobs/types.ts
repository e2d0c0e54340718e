/**
 * The job contract both APIs read (GraphQL and the feature-extraction-server REST API).
 * A job's lifecycle is one discriminated union: queued → running → complete | failed | cancelled
 * (queued → cancelled and queued → failed are possible too). Each phase carries only its valid fields.
 */
import type { ErrorCode } from '../errors.js';

export type JobStatus = 'queued' | 'running' | 'complete' | 'failed' | 'cancelled';
export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'complete', 'failed', 'cancelled'];
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>(['complete', 'failed', 'cancelled']);

/** Per input image, in input order: `probabilities[i]` belongs to `job.classes[i]`. */
export interface ImageClassification {
  probabilities: number[];
}

export interface JobResult {
  images: ImageClassification[];
}

export interface JobFailure {
  code: ErrorCode;
  message: string;
}

interface JobCommon {
  id: string;
  /** The resolved name of the model the job runs on. */
  model: string;
  classes: string[];
  imageCount: number;
  /** True when submitted as several images (GraphQL `images`, REST batched route); shapes REST results. */
  batched: boolean;
  createdAt: Date;
  /** When the store forgets the job. */
  expiresAt: Date;
}

export type Job =
  | (JobCommon & { status: 'queued' })
  | (JobCommon & { status: 'running'; startedAt: Date })
  | (JobCommon & { status: 'complete'; startedAt: Date; finishedAt: Date; result: JobResult })
  | (JobCommon & { status: 'failed'; startedAt: Date | null; finishedAt: Date; error: JobFailure })
  | (JobCommon & { status: 'cancelled'; startedAt: Date | null; finishedAt: Date });

/** What an API layer hands to JobService.submit: still untrusted user input. */
export interface SubmitJobInput {
  /**
   * Images in order: data URLs or bare base64 (JSON inputs), or the bytes themselves (file uploads, which
   * skip the base64 decoding; every other check is the same).
   */
  images: (string | Uint8Array)[];
  /** The name of the input field the images came from (`image`, `images`), for error messages. */
  imagesField: string;
  batched: boolean;
  classes: string[];
  /** Catalogue name, hub id or loaded-model name; the default model when omitted. */
  model?: string | undefined;
  /** Free-form per-job config (`promptTemplate`, `promptTemplates`); validated by JobService. */
  config?: unknown;
}

export function isTerminal(job: Job): boolean {
  return TERMINAL_STATUSES.has(job.status);
}
