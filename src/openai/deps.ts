/**
 * What the OpenAI-compatible API needs from the rest of the server: it submits embedding jobs through the same
 * JobService calls as the other APIs (admission, limits, batching, Redis and shutdown apply unchanged), follows
 * them to their end and cancels them when the caller leaves.
 */
import type { ModelInfo } from '../clip/index.js';
import type { Request, Response } from 'express';
import type { Caller, Job, SubmitJobInput } from '../jobs/index.js';
import type { JsonShapeLimits } from '../jsonShape.js';
import type { Logger } from '../logger.js';

/** The part of JobService the OpenAI routes call, each call on behalf of the request's caller (its API key). */
export interface OpenAiJobs {
  /** Accepts a job of the caller's; throws AppError BAD_USER_INPUT, OVERLOADED, SHUTTING_DOWN or SERVICE_UNAVAILABLE. */
  submit(caller: Caller, input: SubmitJobInput): Promise<Job>;
  /** The job's states, the current one first, ending after a terminal one. */
  watch(caller: Caller, id: string): Promise<AsyncIterableIterator<Job>>;
  /** Cancels a queued or running job. */
  cancel(caller: Caller, id: string): Promise<Job | undefined>;
}

/** The configured models: their names, sizes (once loaded) and how a user's name resolves. */
export interface OpenAiModels {
  models(): ModelInfo[];
  resolveModelName(name: string): string | undefined;
}

export interface OpenAiDeps {
  jobs: OpenAiJobs;
  models: OpenAiModels;
  logger: Logger;
  /** Who sent the request (from its API key, checked before the router). */
  callerOf(req: Request, res: Response): Caller;
  /** The largest JSON body accepted, in bytes (MAX_BODY_BYTES); 413 over it. */
  maxBodyBytes: number;
  /** Bounds on a JSON body's depth and value count (MAX_JSON_DEPTH, MAX_JSON_VALUES), checked before parsing. */
  jsonLimits: JsonShapeLimits;
  /** `created` of every model in `GET /v1/models`: when this server started, in Unix seconds. */
  createdAt: number;
}
