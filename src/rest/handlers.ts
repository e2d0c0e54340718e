/**
 * The REST request handlers: each reads path and body, calls the job or clip layer, and answers in the
 * feature-extraction-server's shapes (src/rest/shapes.ts). They decide nothing about jobs; errors are thrown
 * and leave through src/rest/errors.ts. Express 5 forwards rejected promises to the error handler.
 */
import type { Request, RequestHandler, Response } from 'express';
import { AppError, ErrorCode, isAppError, UnreachableCaseError } from '../errors.js';
import { isTerminal, type Caller, type Job, type ModelControl } from '../jobs/index.js';
import type { JobSubmitter, RestDeps } from './deps.js';
import {
  FES_TASKS,
  assertJobOnRoute,
  fesModelNames,
  parseFesJobBody,
  requireFesModel,
  requireFesTask,
  resolveFesModel,
  toFesJobResponse,
  toFesModelStatus,
  toFesNewJobResponse,
  unknownFesConfigKeys,
  toFesOutputs,
  type FesTaskOutput,
} from './shapes.js';

type TaskParams = { task: string };
type ModelParams = { model: string };
type TaskModelParams = { task: string; model: string };
type TaskJobParams = { task: string; id: string };

/** The handlers `createRestRouter` mounts, built over one set of dependencies. */
export interface RestHandlers {
  listTasks: RequestHandler;
  listModels: RequestHandler;
  listModelsForTask: RequestHandler<TaskParams>;
  listTasksForModel: RequestHandler<ModelParams>;
  newJob(batched: boolean): RequestHandler<TaskModelParams>;
  getJob(batched: boolean): RequestHandler<TaskJobParams>;
  runLegacyJob: RequestHandler<TaskModelParams>;
  startModel: RequestHandler<ModelParams>;
  stopModel: RequestHandler<ModelParams>;
  modelStatus: RequestHandler<ModelParams>;
}

// setTimeout fires at once for delays over 2^31-1 ms (~24.8 days): a job living longer is not watched for its expiry.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Builds the handlers over one set of dependencies; `createRestRouter` decides which path each serves. */
export function createRestHandlers(deps: RestDeps): RestHandlers {
  async function submit(req: Request<TaskModelParams>, res: Response, batched: boolean): Promise<Job> {
    const task = requireFesTask(req.params.task);
    const model = requireFesModel(deps.clip, req.params.model);
    // The body is checked after the path so that a wrong URL is reported as such, not as a body error.
    const input = parseFesJobBody(req.body, batched, task);
    const ignored = unknownFesConfigKeys(req.body);
    if (ignored.length > 0)
      deps.logger.debug(
        { model, ignored: ignored.slice(0, 20).map((k) => k.slice(0, 100)) },
        'FES config keys ignored',
      );
    return deps.jobs.submit(deps.callerOf(req, res), { ...input, model });
  }

  return {
    // Every configured model is a CLIP model, and CLIP serves all three tasks.
    listTasks: (_req, res) => {
      sendJson(res, [...FES_TASKS]);
    },

    listModels: (_req, res) => {
      sendJson(res, fesModelNames(deps.clip));
    },

    listModelsForTask: (req, res) => {
      requireFesTask(req.params.task);
      sendJson(res, fesModelNames(deps.clip));
    },

    listTasksForModel: (req, res) => {
      if (resolveFesModel(deps.clip, req.params.model) === undefined) {
        throw new AppError(ErrorCode.NotFound, `Unknown model "${req.params.model.slice(0, 100)}"`);
      }
      sendJson(res, [...FES_TASKS]);
    },

    newJob: (batched) => async (req, res) => {
      const job = await submit(req, res, batched);
      sendJson(res, toFesNewJobResponse(job));
    },

    getJob: (batched) => async (req, res) => {
      const task = requireFesTask(req.params.task);
      const job = await deps.jobs.get(deps.callerOf(req, res), req.params.id);
      if (job === undefined) throw jobNotFound(req.params.id);
      assertJobOnRoute(job, task, batched);
      sendJson(res, toFesJobResponse(job, batched));
    },

    // FES answers start and stop with an empty 200 once the change is under way; both are idempotent.
    startModel: async (req, res) => {
      const models = modelControlOf(deps);
      models.authorize(deps.callerOf(req, res));
      await models.start(req.params.model);
      sendEmpty(res);
    },

    stopModel: async (req, res) => {
      const models = modelControlOf(deps);
      models.authorize(deps.callerOf(req, res));
      await models.stop(req.params.model);
      sendEmpty(res);
    },

    modelStatus: async (req, res) => {
      const { status, jobs } = await modelControlOf(deps).status(req.params.model, deps.callerOf(req, res));
      sendJson(res, toFesModelStatus(status, jobs));
    },

    // FES's synchronous route (legacy_api.py): submit, wait, answer the result itself.
    runLegacyJob: async (req, res) => {
      const aborted = new AbortController();
      // 'close' on the response fires when the client goes away before we answer: stop waiting for it.
      res.on('close', () => aborted.abort());
      const caller = deps.callerOf(req, res);
      const submitted = await submit(req, res, false);
      const job = await awaitTerminal(deps.jobs, caller, submitted.id, aborted.signal);
      if (job === undefined) return;
      sendJson(res, legacyResult(job));
    },
  };
}

/** The single (non-batched) output, as FES's legacy_api answers it: `{probabilities}` or `{embedding}`. */
function legacyResult(job: Job): FesTaskOutput {
  switch (job.status) {
    case 'complete': {
      const first = toFesOutputs(job.result)[0];
      if (first === undefined) throw new Error(`Complete job ${job.id} has no results`);
      return first;
    }
    case 'failed':
      throw new AppError(job.error.code, job.error.message);
    case 'cancelled':
      throw new AppError(ErrorCode.NotFound, `Job ${job.id} was cancelled before it finished`);
    case 'queued':
    case 'running':
      throw new Error(`Job ${job.id} is still ${job.status}`);
    default:
      throw new UnreachableCaseError(job);
  }
}

/**
 * Awaits the job's terminal state through the watch the subscription uses (no reads in between); undefined when the
 * client went away first. A job that expires unfinished is announced by nothing, so the wait also ends at the job's
 * expiry, answering NOT_FOUND as a read would then.
 */
async function awaitTerminal(
  jobs: JobSubmitter,
  caller: Caller,
  id: string,
  signal: AbortSignal,
): Promise<Job | undefined> {
  if (signal.aborted) return undefined;
  const states = await jobs.watch(caller, id).catch((error: unknown) => {
    throw isAppError(error) && error.code === ErrorCode.NotFound ? jobNotFound(id) : error;
  });
  const stop = (): void => void states.return?.();
  signal.addEventListener('abort', stop, { once: true });
  let expiry: NodeJS.Timeout | undefined;
  let expired = false;
  try {
    for await (const job of states) {
      if (isTerminal(job)) return job;
      clearTimeout(expiry);
      const untilExpiry = job.expiresAt.getTime() - Date.now();
      if (untilExpiry > MAX_TIMER_MS) continue;
      expiry = setTimeout(
        () => {
          expired = true;
          stop();
        },
        Math.max(0, untilExpiry),
      );
    }
  } finally {
    clearTimeout(expiry);
    signal.removeEventListener('abort', stop);
  }
  if (!expired || signal.aborted) return undefined;
  // At its expiry: gone (NOT_FOUND), or changed at the last moment (then its latest state decides).
  const job = await jobs.get(caller, id);
  if (job === undefined) throw jobNotFound(id);
  return isTerminal(job) ? job : awaitTerminal(jobs, caller, id, signal);
}

function modelControlOf(deps: RestDeps): ModelControl {
  if (deps.models === undefined)
    throw new AppError(ErrorCode.NotFound, 'Model control is not available on this server');
  return deps.models;
}

function jobNotFound(id: string): AppError {
  return new AppError(ErrorCode.NotFound, `Job "${id.slice(0, 100)}" not found (it never existed or has expired)`);
}

function sendEmpty(res: Response): void {
  res.setHeader('Cache-Control', 'no-store');
  res.status(200).end();
}

// Job states change between polls, so no intermediary may cache an answer.
function sendJson(res: Response, body: unknown): void {
  res.setHeader('Cache-Control', 'no-store');
  res.json(body);
}
