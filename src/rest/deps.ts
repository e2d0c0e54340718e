/**
 * What the REST layer needs from the rest of the server, and nothing more: it submits and reads jobs,
 * lists models and resolves model names. Kept minimal so the router can be driven by a small double in
 * unit tests and so the job or clip services can change without touching the REST code.
 */
import type { Request, Response } from 'express';
import type { ModelInfo } from '../clip/index.js';
import type { Caller, Job, ModelControl, SubmitJobInput } from '../jobs/index.js';
import type { JsonShapeLimits } from '../jsonShape.js';
import type { Logger } from '../logger.js';

/** The part of JobService the REST API calls. */
export interface JobSubmitter {
  /** Accepts a job of `caller`'s; throws AppError BAD_USER_INPUT, OVERLOADED or SHUTTING_DOWN. */
  submit(caller: Caller, input: SubmitJobInput): Promise<Job>;
  /** The job, or undefined when it never existed, has expired, or is not `caller`'s to see. */
  get(caller: Caller, id: string): Promise<Job | undefined>;
  /**
   * The job's states, the current one first, ending after a terminal one (JobService.watch); rejects with NOT_FOUND
   * for a job `caller` may not see. `return()` stops it.
   */
  watch(caller: Caller, id: string): Promise<AsyncIterableIterator<Job>>;
}

/** The part of the clip layer the REST API calls. */
export interface ClipModels {
  /** Every configured model, loaded or not. */
  models(): ModelInfo[];
  /** The name a user's model string refers to (any case, kebab or snake), or undefined when unknown. */
  resolveModelName(name: string): string | undefined;
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
  /** The largest JSON request body accepted, in bytes (MAX_BODY_BYTES); larger ones get 413 PAYLOAD_TOO_LARGE. */
  maxBodyBytes: number;
  /**
   * How much structure a JSON body may have (MAX_JSON_DEPTH, MAX_JSON_VALUES), checked on its bytes before it is
   * parsed; a body over it gets 413 PAYLOAD_TOO_LARGE naming the setting.
   */
  jsonLimits: JsonShapeLimits;
}
