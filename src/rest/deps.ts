/**
 * What the REST layer needs from the rest of the server, and nothing more: it submits and reads jobs,
 * lists models and resolves model names. Kept minimal so the router can be driven by a small double in
 * unit tests and so the job or clip services can change without touching the REST code.
 */
import type { Request, Response } from 'express';
import type { ModelInfo, ModelStatus } from '../clip/index.js';
import type { Caller, Job, SubmitJobInput } from '../jobs/index.js';
import type { JsonShapeLimits } from '../jsonShape.js';
import type { Logger } from '../logger.js';

/** The part of JobService the REST API calls. */
export interface JobSubmitter {
  /** Accepts a job of `caller`'s; throws AppError BAD_USER_INPUT, OVERLOADED or SHUTTING_DOWN. */
  submit(caller: Caller, input: SubmitJobInput): Promise<Job>;
  /** The job, or undefined when it never existed, has expired, or is not `caller`'s to see. */
  get(caller: Caller, id: string): Promise<Job | undefined>;
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
  /** The model's status and the unfinished jobs on it that `caller` may see (the cluster's, with Redis). */
  status(name: string, caller: Caller): Promise<{ status: ModelStatus; jobs: Job[] }>;
  /** Throws FORBIDDEN when `caller` may not start or stop models (an operator action). */
  authorize(caller: Caller): void;
}

/** Everything `createRestRouter` needs. */
export interface RestDeps {
  jobs: JobSubmitter;
  clip: ClipModels;
  /** Model start / stop / status; without it those routes answer 404. */
  models?: ModelControl | undefined;
  logger: Logger;
  /** Who sent the request (the API key check in front of the router decides). */
  callerOf(req: Request, res: Response): Caller;
  /**
   * The largest JSON request body accepted, in bytes; larger ones get 413 PAYLOAD_TOO_LARGE.
   * @default DEFAULT_MAX_BODY_BYTES (64 MiB: 64 images of ~750 KB each once base64-encoded)
   */
  maxBodyBytes?: number;
  /**
   * How much structure a JSON body may have (MAX_JSON_DEPTH, MAX_JSON_VALUES), checked on its bytes before it is
   * parsed; a body over it gets 413 PAYLOAD_TOO_LARGE naming the setting.
   */
  jsonLimits: JsonShapeLimits;
  /**
   * How often the synchronous legacy route (`/api/legacy/tasks/...`) re-reads a job while it waits, in ms.
   * @default 25
   */
  legacyPollIntervalMs?: number;
}

/** The body limit when `RestDeps.maxBodyBytes` is not given, in bytes. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
