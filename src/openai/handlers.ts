/**
 * The OpenAI-compatible request handlers. `POST /v1/embeddings` answers synchronously, as OpenAI does, but runs
 * as jobs like every other route: one image-embedding job for its images and one text-embedding job for its
 * texts, submitted through JobService (same admission, limits, batching across requests, Redis and shutdown),
 * followed to their end, and cancelled when the caller disconnects first. Errors are thrown and leave through
 * ./errors.ts.
 */
import type { Request, RequestHandler, Response } from 'express';
import { AppError, ErrorCode, badUserInput, isAppError } from '../errors.js';
import { isTerminal, type Caller, type Job, type SubmitJobInput } from '../jobs/index.js';
import type { OpenAiDeps, OpenAiJobs, OpenAiModels } from './deps.js';
import { parseEmbeddingRequest, type EmbeddingRequest } from './request.js';
import { toEmbeddingsResponse, toModelsResponse } from './response.js';

export interface OpenAiHandlers {
  listModels: RequestHandler;
  getModel: RequestHandler<{ model: string }>;
  embeddings: RequestHandler;
}

type CompleteJob = Extract<Job, { status: 'complete' }>;

/** One job of a request and where its vectors go in the answer. */
interface PlannedJob {
  input: SubmitJobInput;
  /** `positions[k]` is the request index of the job's k-th input. */
  positions: number[];
}

/** The caller's view of the jobs: every call below acts on the request's own jobs. */
interface CallerJobs {
  submit(input: SubmitJobInput): Promise<Job>;
  watch(id: string): Promise<AsyncIterableIterator<Job>>;
  cancel(id: string): Promise<Job | undefined>;
}

function jobsOf(jobs: OpenAiJobs, caller: Caller): CallerJobs {
  return {
    submit: (input) => jobs.submit(caller, input),
    watch: (id) => jobs.watch(caller, id),
    cancel: (id) => jobs.cancel(caller, id),
  };
}

/** The field every job input is named by, so a JobService refusal (`input[k]`) can be mapped back to the request's index. */
const INPUT_FIELD = 'input';

export function createOpenAiHandlers(deps: OpenAiDeps): OpenAiHandlers {
  return {
    listModels: (_req, res) => {
      sendJson(res, toModelsResponse(deps.models.models(), deps.createdAt));
    },

    getModel: (req, res) => {
      const name = resolveModel(deps.models, req.params.model);
      const models = toModelsResponse(deps.models.models(), deps.createdAt).data;
      sendJson(
        res,
        models.find((model) => model.id === name),
      );
    },

    embeddings: async (req: Request, res: Response) => {
      const request = parseEmbeddingRequest(req.body);
      const model = resolveModel(deps.models, request.model);
      checkDimensions(deps.models, model, request.dimensions);
      // 'close' before the answer is written: the caller left, and its jobs are cancelled.
      const left = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) left.abort();
      });
      const planned = planJobs(request, model);
      const callerJobs = jobsOf(deps.jobs, deps.callerOf(req, res));
      const jobs = await submitAll(callerJobs, planned, request.single);
      const finished = await finishAll(callerJobs, jobs, left.signal);
      if (finished === undefined) return;
      const { vectors, tokens } = inInputOrder(finished, planned, request.inputs.length);
      if (request.dimensions !== undefined && vectors[0]?.length !== request.dimensions)
        throw wrongDimensions(request.dimensions, vectors[0]?.length ?? 0);
      sendJson(res, toEmbeddingsResponse(vectors, model, request.encodingFormat, tokens));
    },
  };
}

/** The jobs' vectors put back in the request's order, and the texts' tokens summed. */
function inInputOrder(
  finished: readonly CompleteJob[],
  planned: readonly PlannedJob[],
  inputs: number,
): { vectors: number[][]; tokens: number } {
  const vectors = new Array<number[]>(inputs);
  let tokens = 0;
  for (const [i, job] of finished.entries()) {
    const positions = planned[i]?.positions ?? [];
    const { result } = job;
    if (result.task === 'classification') throw new Error(`job ${job.id} is a classification, not an embedding`);
    for (const [k, vector] of result.embeddings.entries()) vectors[positions[k] ?? -1] = vector;
    tokens += result.tokens ?? 0;
  }
  return { vectors, tokens };
}

function resolveModel(models: OpenAiModels, name: string): string {
  const resolved = models.resolveModelName(name);
  if (resolved !== undefined) return resolved;
  const known = models.models().map((model) => model.name);
  const shown = name.length > 100 ? `${name.slice(0, 100)}…` : name;
  throw new AppError(
    ErrorCode.NotFound,
    `The model "${shown}" does not exist on this server; it has: ${known.join(', ') || 'none'}`,
    { field: 'model' },
  );
}

/** CLIP vectors are not Matryoshka vectors: a cut one is no longer a point of the joint space, so only the model's own size is taken. */
function checkDimensions(models: OpenAiModels, model: string, dimensions: number | undefined): void {
  if (dimensions === undefined) return;
  const size = models.models().find((info) => info.name === model)?.embeddingSize ?? null;
  // Unknown until a worker has loaded the model: the vectors' own length is checked instead.
  if (size !== null && size !== dimensions) throw wrongDimensions(dimensions, size);
}

function wrongDimensions(dimensions: number, size: number): AppError {
  return badUserInput(
    `"dimensions" must be the model's own size, ${size}, got ${dimensions}: CLIP vectors cannot be shortened`,
    'dimensions',
  );
}

/** The request's images as one image-embedding job, its texts as one text-embedding job; positions keep the input order. */
function planJobs(request: EmbeddingRequest, model: string): PlannedJob[] {
  const images: string[] = [];
  const imagePositions: number[] = [];
  const texts: string[] = [];
  const textPositions: number[] = [];
  for (const [index, input] of request.inputs.entries()) {
    if (input.kind === 'image') {
      images.push(input.image);
      imagePositions.push(index);
    } else {
      texts.push(input.text);
      textPositions.push(index);
    }
  }
  const planned: PlannedJob[] = [];
  if (images.length > 0) {
    planned.push({
      input: { task: 'image-embedding', model, images, imagesField: INPUT_FIELD, batched: true },
      positions: imagePositions,
    });
  }
  if (texts.length > 0) {
    planned.push({
      input: { task: 'text-embedding', model, texts, textsField: INPUT_FIELD, batched: true },
      positions: textPositions,
    });
  }
  return planned;
}

/** Submits every job; if one is refused, the others are cancelled and the refusal names the request's own index. */
async function submitAll(jobs: CallerJobs, planned: PlannedJob[], single: boolean): Promise<Job[]> {
  const settled = await Promise.allSettled(planned.map((plan) => jobs.submit(plan.input)));
  const refused = settled.findIndex((outcome) => outcome.status === 'rejected');
  if (refused === -1) return settled.map((outcome) => (outcome as PromiseFulfilledResult<Job>).value);
  await cancelAll(
    jobs,
    settled.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : [])),
  );
  const reason: unknown = (settled[refused] as PromiseRejectedResult).reason;
  throw inRequestTerms(reason, planned[refused]?.positions ?? [], single);
}

/**
 * A refusal naming a job's `input[k]` renamed to the request's index (`input[positions[k]]`), or `input` when the
 * request's input was one string.
 */
function inRequestTerms(error: unknown, positions: number[], single: boolean): unknown {
  if (!isAppError(error) || error.field === undefined) return error;
  const match = /^input\[(\d+)\]/.exec(error.field);
  if (match === null) return error;
  const field = `${single ? INPUT_FIELD : `${INPUT_FIELD}[${positions[Number(match[1])] ?? match[1]}]`}${error.field.slice(match[0].length)}`;
  const message = error.message.startsWith(error.field)
    ? `${field}${error.message.slice(error.field.length)}`
    : error.message;
  return new AppError(error.code, message, { field, refusal: error.refusal, cause: error });
}

/**
 * Follows every job to its end. Resolves to the complete jobs, or undefined when the caller left first (its jobs
 * are then cancelled). A failed job fails the request with the job's code; the others are cancelled.
 */
async function finishAll(jobs: CallerJobs, submitted: Job[], left: AbortSignal): Promise<CompleteJob[] | undefined> {
  const stop = new AbortController();
  const onLeft = (): void => stop.abort();
  left.addEventListener('abort', onLeft, { once: true });
  try {
    const ends = await Promise.all(
      submitted.map(async (job) => {
        const end = await waitForEnd(jobs, job.id, stop.signal);
        // One job that did not complete makes the others pointless.
        if (end?.status !== 'complete') stop.abort();
        return end;
      }),
    );
    const failure = ends.find((end) => end !== undefined && end.status !== 'complete');
    if (left.aborted || failure !== undefined) await cancelAll(jobs, submitted);
    if (left.aborted) return undefined;
    if (failure !== undefined) throw failureOf(failure);
    return ends as CompleteJob[];
  } finally {
    left.removeEventListener('abort', onLeft);
  }
}

/** The job's terminal state, or undefined once `signal` aborts. */
async function waitForEnd(jobs: CallerJobs, id: string, signal: AbortSignal): Promise<Job | undefined> {
  if (signal.aborted) return undefined;
  const states = await jobs.watch(id);
  let onAbort = (): void => undefined;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    for (;;) {
      const next = await Promise.race([states.next(), aborted]);
      if (next === undefined) return undefined;
      if (next.done === true) throw new Error(`the states of job ${id} ended before a terminal one`);
      if (isTerminal(next.value)) return next.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    await states.return?.();
  }
}

function failureOf(job: Job): AppError {
  if (job.status === 'failed') return new AppError(job.error.code, job.error.message);
  return new AppError(ErrorCode.NotFound, `Job ${job.id} was cancelled before it finished`);
}

async function cancelAll(jobs: CallerJobs, submitted: readonly Job[]): Promise<void> {
  await Promise.allSettled(submitted.map((job) => jobs.cancel(job.id)));
}

function sendJson(res: Response, body: unknown): void {
  res.setHeader('Cache-Control', 'no-store');
  res.json(body);
}
