/**
 * What the REST layer needs from the rest of the server, and nothing more: it submits and reads jobs,
 * lists models and resolves model names. Kept minimal so the router can be driven by a small double in
 * unit tests and so the job or clip services can change without touching the REST code.
 */
import type { Request } from 'express';
import type { ModelInfo, ModelStatus } from '../clip/types.js';
import type { Job, SubmitJobInput } from '../jobs/types.js';
import type { Logger } from '../logger.js';

/** The part of JobService the REST API calls. */
export interface JobSubmitter {
  /** Accepts a job; throws AppError BAD_USER_INPUT, OVERLOADED or SHUTTING_DOWN. */
  submit(input: SubmitJobInput): Promise<Job>;
  /** The job, or undefined when it never existed or has expired. */
  get(id: string): Promise<Job | undefined>;
}

/** The part of the clip layer the REST API calls. */
export interface ClipModels {
  /** Every configured model, loaded or not. */
  models(): ModelInfo[];
  /** The name a user's model string refers to (any case, kebab or snake), or undefined when unknown. */
  resolveModelName(name: string): string | undefined;
}

/**
 * Starting and stopping models (FES's `/api/models/{model}/start|stop|status`). Names are users' strings (kebab or
 * snake case, catalogue names); an unknown one throws NOT_FOUND.
 */
export interface ModelControl {
  /** Begins starting the model (idempotent); resolves, once that is under way, with the model as it then is. */
  start(name: string): Promise<ModelInfo>;
  /** Begins stopping the model (idempotent); resolves, once that is under way, with the model as it then is. */
  stop(name: string): Promise<ModelInfo>;
  /** The model's status and its unfinished jobs (the cluster's, with Redis). */
  status(name: string): Promise<{ status: ModelStatus; jobs: Job[] }>;
  /** Throws FORBIDDEN (or UNAUTHENTICATED) when the caller may not start or stop models. */
  authorize(apiKey: string | undefined): void;
}

/** Everything `createRestRouter` needs. */
export interface RestDeps {
  jobs: JobSubmitter;
  clip: ClipModels;
  /** Model start / stop / status; without it those routes answer 404. */
  models?: ModelControl | undefined;
  /** The API key a request carries (the router's mount point has already checked it is valid). */
  apiKeyOf?: ((req: Request) => string | undefined) | undefined;
  logger: Logger;
  /**
   * The largest JSON request body accepted, in bytes; larger ones get 413 PAYLOAD_TOO_LARGE.
   * @default DEFAULT_MAX_BODY_BYTES (64 MiB: 64 images of ~750 KB each once base64-encoded)
   */
  maxBodyBytes?: number;
  /**
   * How often the synchronous legacy route (`/api/legacy/tasks/...`) re-reads a job while it waits, in ms.
   * @default 25
   */
  legacyPollIntervalMs?: number;
}

/** The body limit when `RestDeps.maxBodyBytes` is not given, in bytes. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
