import { OPEN_CALLER } from '../../../src/jobs/caller.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AppError, ErrorCode, ImageUrlRefusal, badUserInput } from '../../../src/errors.js';
import type { FetchImageUrl } from '../../../src/jobs/index.js';
import type { JobService } from '../../../src/jobs/JobService.js';
import type { JobClassifier } from '../../../src/jobs/validation.js';
import type { QueueCounts } from '../../../src/jobs/JobQueue.js';
import { MemoryJobQueue } from '../../../src/jobs/memory/MemoryJobQueue.js';
import { MemoryJobStore } from '../../../src/jobs/memory/MemoryJobStore.js';
import type {
  Job,
  SubmitClassificationInput,
  SubmitImageEmbeddingInput,
  SubmitTextEmbeddingInput,
} from '../../../src/jobs/types.js';
import { memoryJobService, type MemoryJobServiceOptions } from '../../utils/jobService.js';
import type {
  ClassifyRequest,
  ClassifyResult,
  EmbeddingVectors,
  EmbedImagesRequest,
  EmbedTextsRequest,
  ModelInfo,
  PromptConfig,
} from '../../../src/clip/types.js';

interface Call {
  request: ClassifyRequest;
  resolve: (result: ClassifyResult) => void;
  reject: (error: unknown) => void;
}

/** A stand-in for ClipService (the dependency, not the component under test): classify calls wait until released. */
class FakeClassifier implements JobClassifier {
  readonly defaultModelName = 'tiny';
  readonly calls: Call[] = [];
  /** When true, classify answers at once with uniform probabilities. */
  autoComplete = false;
  queued = 0;

  resolveModelName(name: string): string | undefined {
    return name === 'tiny' || name === 'Tiny' ? 'tiny' : undefined;
  }

  models(): ModelInfo[] {
    return [
      {
        name: 'tiny',
        source: 'dir',
        precision: 'fp32',
        status: 'ready',
        embeddingSize: 8,
        contextLength: 77,
        imageSize: 32,
        logitScale: 100,
        error: null,
      },
    ];
  }

  decodeImage(input: string, field: string): Buffer {
    if (input.startsWith('!')) throw badUserInput(`${field}: not base64`, field);
    return Buffer.from(input);
  }

  async inspectImage(bytes: Uint8Array, field: string): Promise<{ format: string; width: number; height: number }> {
    if (Buffer.from(bytes).toString().startsWith('text')) throw badUserInput(`${field}: not an image`, field);
    return { format: 'png', width: 1, height: 1 };
  }

  validatePrompt(config: unknown, field: string): PromptConfig {
    if (typeof config !== 'object' || config === null || 'bad' in config)
      throw badUserInput(`${field}: bad prompt`, field);
    return config;
  }

  async prepareModel(): Promise<void> {}

  classify(request: ClassifyRequest): Promise<ClassifyResult> {
    const uniform = (): ClassifyResult => ({
      probabilities: request.images.map(() => request.labels.map(() => 1 / request.labels.length)),
    });
    if (this.autoComplete) return Promise.resolve(uniform());
    return new Promise((resolve, reject) => {
      this.calls.push({ request, resolve, reject });
      request.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    });
  }

  /** Completes the n-th classify call with uniform probabilities. */
  complete(index = 0): void {
    const call = this.calls[index];
    if (call === undefined) throw new Error(`no classify call #${index}`);
    call.resolve({
      probabilities: call.request.images.map(() => call.request.labels.map(() => 1 / call.request.labels.length)),
    });
  }

  readonly embedCalls: (EmbedImagesRequest | EmbedTextsRequest)[] = [];

  /** A vector per image that tells the images apart: [first byte, length]. */
  async embedImages(request: EmbedImagesRequest): Promise<EmbeddingVectors> {
    this.embedCalls.push(request);
    return { embeddings: request.images.map((bytes) => [bytes[0] ?? 0, bytes.length]) };
  }

  /** A vector per text that tells the texts apart: [first code unit, length]. */
  async embedTexts(request: EmbedTextsRequest): Promise<EmbeddingVectors> {
    this.embedCalls.push(request);
    return { embeddings: request.texts.map((text) => [text.charCodeAt(0), text.length]) };
  }

  queuedImages(): number {
    return this.queued;
  }
}

const imageEmbedding = (overrides: Partial<SubmitImageEmbeddingInput> = {}): SubmitImageEmbeddingInput => ({
  task: 'image-embedding',
  images: ['img-a'],
  imagesField: 'image',
  batched: false,
  ...overrides,
});

const textEmbedding = (overrides: Partial<SubmitTextEmbeddingInput> = {}): SubmitTextEmbeddingInput => ({
  task: 'text-embedding',
  texts: ['a cat'],
  textsField: 'text',
  batched: false,
  ...overrides,
});

const input = (overrides: Partial<SubmitClassificationInput> = {}): SubmitClassificationInput => ({
  images: ['img-a'],
  imagesField: 'image',
  batched: false,
  classes: ['cat', 'dog'],
  ...overrides,
});

/** Resolves once every callback already queued has run, immediates included (the memory queue starts work in one). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Lets the service take `count` turns: enough for anything it would start without waiting on a timer. */
async function turns(count = 20): Promise<void> {
  for (let i = 0; i < count; i += 1) await nextTurn();
}

async function until(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await nextTurn();
  }
}

/** `promise`'s value if it is settled once the callbacks queued so far have run, else 'pending'. */
function settledOrPending<T>(promise: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([promise, nextTurn().then(() => 'pending' as const)]);
}

const idle = (jobs: JobService): boolean => jobs.stats().queued + jobs.stats().running === 0;

async function expectAppError(
  promise: Promise<unknown>,
  code: ErrorCode,
  field?: string,
  message?: RegExp,
): Promise<AppError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  const appError = error as AppError;
  expect(appError.code).toBe(code);
  if (field !== undefined) expect(appError.field).toBe(field);
  if (message !== undefined) expect(appError.message).toMatch(message);
  return appError;
}

/** The memory queue as an API on Redis sees it between refreshes: `lastCounts` stays as it was last read. */
class StaleCountsQueue extends MemoryJobQueue {
  freshReads = 0;
  constructor(private readonly stale: QueueCounts) {
    super();
  }

  override lastCounts(): QueueCounts {
    return this.stale;
  }

  override async counts(): Promise<QueueCounts> {
    this.freshReads += 1;
    return super.counts();
  }
}

describe('JobService', () => {
  let services: JobService[] = [];
  const make = (options: Partial<MemoryJobServiceOptions> = {}): { jobs: JobService; clip: FakeClassifier } => {
    const clip = (options.clip as FakeClassifier | undefined) ?? new FakeClassifier();
    const jobs = memoryJobService({ ...options, clip });
    services.push(jobs);
    return { jobs, clip };
  };
  afterEach(async () => {
    vi.useRealTimers();
    for (const jobs of services) {
      await jobs.drain(0);
      await jobs.close();
    }
    services = [];
  });

  it('should run a job queued → running → complete and keep the result', async () => {
    const { jobs, clip } = make();
    const job = await jobs.submit(OPEN_CALLER, input());
    expect(job.status).toBe('queued');
    expect(job.model).toBe('tiny');
    await until(() => clip.calls.length === 1);
    expect((await jobs.get(OPEN_CALLER, job.id))?.status).toBe('running');
    expect(clip.calls[0]?.request.labels).toEqual(['cat', 'dog']);
    clip.complete(0);
    await until(() => idle(jobs));
    const done = await jobs.get(OPEN_CALLER, job.id);
    expect(done?.status).toBe('complete');
    if (done?.status !== 'complete') throw new Error('unreachable');
    expect(done.task).toBe('classification');
    expect(done.result).toEqual({ task: 'classification', images: [{ probabilities: [0.5, 0.5] }] });
    expect(done.finishedAt.getTime()).toBeGreaterThanOrEqual(done.startedAt.getTime());
    // Reading does not delete (unlike the seed).
    expect((await jobs.get(OPEN_CALLER, job.id))?.status).toBe('complete');
    expect(jobs.stats().totals).toMatchObject({ queued: 1, running: 1, complete: 1 });
    expect(jobs.stats().pendingImages).toBe(0);
  });

  it('should refuse each kind of bad input with BAD_USER_INPUT naming the field', async () => {
    const { jobs } = make({ maxImagesPerJob: 2, maxClassesPerJob: 3, maxClassLength: 5 });
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ classes: [] })),
      ErrorCode.BadUserInput,
      'classes',
      /at least one/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ classes: ['a', 'b', 'c', 'd'] })),
      ErrorCode.BadUserInput,
      'classes',
      /at most 3/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ classes: ['a', '  '] })),
      ErrorCode.BadUserInput,
      'classes[1]',
      /non-empty/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ classes: ['a', 'toolong'] })),
      ErrorCode.BadUserInput,
      'classes[1]',
      /at most 5 characters/,
    );
    // Five astral code points are ten UTF-16 units but within the limit.
    await expect(jobs.submit(OPEN_CALLER, input({ classes: ['😀😀😀😀😀'] }))).resolves.toMatchObject({
      status: 'queued',
    });
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ classes: ['cat', 'dog', ' cat'] })),
      ErrorCode.BadUserInput,
      'classes[2]',
      /duplicates classes\[0\]/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ classes: ['a', 3 as unknown as string] })),
      ErrorCode.BadUserInput,
      'classes[1]',
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ model: 'nope' })),
      ErrorCode.BadUserInput,
      'model',
      /unknown model "nope"; available: tiny/,
    );
    await expectAppError(jobs.submit(OPEN_CALLER, input({ config: { bad: 1 } })), ErrorCode.BadUserInput, 'config');
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ images: [] })),
      ErrorCode.BadUserInput,
      'image',
      /at least one image/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ images: ['a', 'b', 'c'], imagesField: 'images', batched: true })),
      ErrorCode.BadUserInput,
      'images',
      /at most 2 images/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ images: ['ok', '!bad'], imagesField: 'images', batched: true })),
      ErrorCode.BadUserInput,
      'images[1]',
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ images: ['text file'] })),
      ErrorCode.BadUserInput,
      'image',
      /not an image/,
    );
    await expect(
      jobs.submit(OPEN_CALLER, input({ model: 'Tiny', config: { promptTemplate: '{}' } })),
    ).resolves.toMatchObject({ model: 'tiny' });
  });

  it('should run an image-embedding job to one vector per image, in order', async () => {
    const { jobs, clip } = make();
    const job = await jobs.submit(
      OPEN_CALLER,
      imageEmbedding({ images: ['b-img', 'a-image'], imagesField: 'images', batched: true, model: 'Tiny' }),
    );
    expect(job).toMatchObject({
      status: 'queued',
      task: 'image-embedding',
      model: 'tiny',
      classes: [],
      texts: [],
      imageCount: 2,
      batched: true,
    });
    await until(() => idle(jobs));
    const done = await jobs.get(OPEN_CALLER, job.id);
    expect(done).toMatchObject({
      status: 'complete',
      result: {
        task: 'image-embedding',
        embeddings: [
          [98, 5],
          [97, 7],
        ],
      },
    });
    expect(clip.embedCalls).toHaveLength(1);
    expect(clip.calls).toHaveLength(0);
    expect(jobs.stats().pendingImages).toBe(0);
    // The job is plain data: a JSON round trip (the planned Redis store) loses nothing but the Dates' type.
    expect(JSON.parse(JSON.stringify(done))).toMatchObject({
      task: 'image-embedding',
      result: {
        embeddings: [
          [98, 5],
          [97, 7],
        ],
      },
    });
  });

  it('should run a text-embedding job to one vector per text, in order, with the prompt config passed on', async () => {
    const { jobs, clip } = make();
    const job = await jobs.submit(
      OPEN_CALLER,
      textEmbedding({
        texts: ['zebra', 'a cat', 'a cat'],
        textsField: 'texts',
        batched: true,
        config: { promptTemplate: 'a photo of {}' },
      }),
    );
    expect(job).toMatchObject({
      task: 'text-embedding',
      texts: ['zebra', 'a cat', 'a cat'],
      classes: [],
      imageCount: 0,
    });
    await until(() => idle(jobs));
    expect(await jobs.get(OPEN_CALLER, job.id)).toMatchObject({
      status: 'complete',
      result: {
        task: 'text-embedding',
        embeddings: [
          [122, 5],
          [97, 5],
          [97, 5],
        ],
      },
    });
    expect(clip.embedCalls[0]).toMatchObject({
      model: 'tiny',
      texts: ['zebra', 'a cat', 'a cat'],
      prompt: { promptTemplate: 'a photo of {}' },
    });
    // No config: no template (the clip layer embeds verbatim).
    const plain = await jobs.submit(OPEN_CALLER, textEmbedding());
    await until(() => idle(jobs));
    expect(clip.embedCalls[1]).toMatchObject({ texts: ['a cat'], prompt: {} });
    expect((await jobs.get(OPEN_CALLER, plain.id))?.status).toBe('complete');
  });

  it('should refuse bad embedding input with BAD_USER_INPUT naming the field, as for classification', async () => {
    const { jobs } = make({ maxImagesPerJob: 2, maxTextsPerJob: 3, maxTextLength: 5, maxPromptsPerJob: 4 });
    await expectAppError(
      jobs.submit(OPEN_CALLER, imageEmbedding({ images: [] })),
      ErrorCode.BadUserInput,
      'image',
      /at least one image/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, imageEmbedding({ images: ['a', 'b', 'c'], imagesField: 'images', batched: true })),
      ErrorCode.BadUserInput,
      'images',
      /at most 2 images \(MAX_IMAGES_PER_JOB\)/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, imageEmbedding({ images: ['ok', '!bad'], imagesField: 'images', batched: true })),
      ErrorCode.BadUserInput,
      'images[1]',
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, imageEmbedding({ images: ['text file'] })),
      ErrorCode.BadUserInput,
      'image',
      /not an image/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, imageEmbedding({ model: 'nope' })),
      ErrorCode.BadUserInput,
      'model',
      /unknown model/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, textEmbedding({ texts: [], textsField: 'texts', batched: true })),
      ErrorCode.BadUserInput,
      'texts',
      /at least one text/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, textEmbedding({ texts: ['a', 'b', 'c', 'd'], textsField: 'texts', batched: true })),
      ErrorCode.BadUserInput,
      'texts',
      /at most 3 texts \(MAX_TEXTS_PER_JOB\)/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, textEmbedding({ texts: ['  '] })),
      ErrorCode.BadUserInput,
      'text',
      /non-empty text/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, textEmbedding({ texts: ['ok', ''], textsField: 'texts', batched: true })),
      ErrorCode.BadUserInput,
      'texts[1]',
      /non-empty/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, textEmbedding({ texts: ['toolong'] })),
      ErrorCode.BadUserInput,
      'text',
      /at most 5 characters \(MAX_TEXT_LENGTH\)/,
    );
    await expectAppError(
      jobs.submit(
        OPEN_CALLER,
        textEmbedding({ texts: ['a', 7 as unknown as string], textsField: 'texts', batched: true }),
      ),
      ErrorCode.BadUserInput,
      'texts[1]',
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, textEmbedding({ config: { bad: 1 } })),
      ErrorCode.BadUserInput,
      'config',
    );
    await expectAppError(
      jobs.submit(
        OPEN_CALLER,
        textEmbedding({
          texts: ['a', 'b', 'c'],
          textsField: 'texts',
          batched: true,
          config: { promptTemplates: ['{}', 'a {}'] },
        }),
      ),
      ErrorCode.BadUserInput,
      'config.promptTemplates',
      /3 texts × 2 templates = 6 prompts, over the limit of 4/,
    );
    await expect(jobs.submit(OPEN_CALLER, textEmbedding({ texts: ['😀😀😀😀😀'] }))).resolves.toMatchObject({
      status: 'queued',
    });
  });

  it('should bound texts by MAX_TEXTS_PER_JOB and MAX_TEXT_LENGTH', async () => {
    const { jobs } = make({ maxClassesPerJob: 1, maxClassLength: 3, maxTextsPerJob: 1, maxTextLength: 3 });
    await expectAppError(
      jobs.submit(OPEN_CALLER, textEmbedding({ texts: ['a', 'b'], textsField: 'texts', batched: true })),
      ErrorCode.BadUserInput,
      'texts',
      /at most 1 texts/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, textEmbedding({ texts: ['abcd'] })),
      ErrorCode.BadUserInput,
      'text',
      /at most 3 characters/,
    );
  });

  it('should rank one embedding job against another, refusing jobs that cannot be compared', async () => {
    const { jobs, clip } = make({ maxTextsPerJob: 3, maxImagesPerJob: 2 });
    const texts = await jobs.submit(
      OPEN_CALLER,
      textEmbedding({ texts: ['ab', 'ba'], textsField: 'texts', batched: true }),
    );
    const images = await jobs.submit(
      OPEN_CALLER,
      imageEmbedding({ images: ['a', 'b'], imagesField: 'images', batched: true }),
    );
    const classified = await jobs.submit(OPEN_CALLER, input());
    await until(() => clip.calls.length === 1);
    await until(() => jobs.stats().running === 1);
    // Fake vectors: text 'ab' → [97, 2], 'ba' → [98, 2]; image 'a' → [97, 1], 'b' → [98, 1] (not unit, but ranked by dot product all the same).
    const ranked = await jobs.rank(OPEN_CALLER, texts.id, images.id, 1);
    expect(ranked.rankings).toEqual([
      { index: 0, matches: [{ index: 1, score: 97 * 98 + 2 }] },
      { index: 1, matches: [{ index: 1, score: 98 * 98 + 2 }] },
    ]);
    expect(ranked.queries.texts).toEqual(['ab', 'ba']);
    await expectAppError(
      jobs.rank(OPEN_CALLER, 'nope', images.id, 1),
      ErrorCode.NotFound,
      undefined,
      /queries: job "nope" not found/,
    );
    await expectAppError(
      jobs.rank(OPEN_CALLER, texts.id, classified.id, 1),
      ErrorCode.BadUserInput,
      'candidates',
      /running/,
    );
    clip.complete(0);
    await until(() => idle(jobs));
    await expectAppError(
      jobs.rank(OPEN_CALLER, classified.id, images.id, 1),
      ErrorCode.BadUserInput,
      'queries',
      /classification/,
    );
    await expectAppError(jobs.rank(OPEN_CALLER, texts.id, images.id, 0), ErrorCode.BadUserInput, 'k');
    const many = await jobs.submit(
      OPEN_CALLER,
      textEmbedding({ texts: ['a', 'b', 'c'], textsField: 'texts', batched: true }),
    );
    await until(() => idle(jobs));
    await expect(jobs.rank(OPEN_CALLER, many.id, images.id, 2)).resolves.toMatchObject({ rankings: { length: 3 } });
    await expectAppError(
      jobs.rank(OPEN_CALLER, many.id, many.id, 2),
      ErrorCode.BadUserInput,
      'candidates',
      /9 pairs, over the limit of 6/,
    );
  });

  it('should count text-embedding jobs against MAX_QUEUED_JOBS', async () => {
    const { jobs } = make({ maxQueuedJobs: 1, maxConcurrentJobs: 1 });
    await jobs.submit(OPEN_CALLER, input());
    await expectAppError(
      jobs.submit(OPEN_CALLER, textEmbedding()),
      ErrorCode.Overloaded,
      undefined,
      /MAX_QUEUED_JOBS=1/,
    );
  });

  it('should refuse a job whose classes × templates exceed MAX_PROMPTS_PER_JOB, naming the field', async () => {
    const { jobs } = make({ maxPromptsPerJob: 4 });
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ classes: ['a', 'b', 'c', 'd', 'e'] })),
      ErrorCode.BadUserInput,
      'classes',
      /5 classes × 1 templates = 5 prompts, over the limit of 4/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, input({ classes: ['a', 'b', 'c'], config: { promptTemplates: ['{}', 'a {}'] } })),
      ErrorCode.BadUserInput,
      'config.promptTemplates',
      /3 classes × 2 templates = 6 prompts/,
    );
    await expect(
      jobs.submit(OPEN_CALLER, input({ classes: ['a', 'b'], config: { promptTemplates: ['{}', 'a {}'] } })),
    ).resolves.toMatchObject({ status: 'queued' });
  });

  it('should refuse with OVERLOADED when the admission bounds are reached', async () => {
    const { jobs, clip } = make({ maxQueuedJobs: 2, maxConcurrentJobs: 1 });
    await jobs.submit(OPEN_CALLER, input());
    await jobs.submit(OPEN_CALLER, input());
    await expectAppError(jobs.submit(OPEN_CALLER, input()), ErrorCode.Overloaded, undefined, /MAX_QUEUED_JOBS=2/);
    clip.queued = 0;
    const images = make({ maxQueuedImages: 3, maxImagesPerJob: 3 });
    images.clip.queued = 2;
    await expectAppError(
      images.jobs.submit(OPEN_CALLER, input({ images: ['a', 'b'], imagesField: 'images', batched: true })),
      ErrorCode.Overloaded,
      undefined,
      /MAX_QUEUED_IMAGES=3/,
    );
    await expect(images.jobs.submit(OPEN_CALLER, input())).resolves.toMatchObject({ status: 'queued' });
    const bytes = make({ maxPendingImageBytes: 8 });
    await bytes.jobs.submit(OPEN_CALLER, input({ images: ['12345'] }));
    await expectAppError(
      bytes.jobs.submit(OPEN_CALLER, input({ images: ['12345'] })),
      ErrorCode.Overloaded,
      undefined,
      /MAX_PENDING_IMAGE_BYTES/,
    );
  });

  it('should not refuse on counts last seen that are stale (another API drained since), only on counts read again', async () => {
    // As on Redis between refreshes: the counts last seen are a second old and show a burst that has drained.
    const queue = new StaleCountsQueue({ jobs: 2, waiting: 2, active: 0, images: 2, imageBytes: 10, owners: {} });
    const { jobs } = make({ queue, maxQueuedJobs: 2, maxQueuedImages: 2, maxPendingImageBytes: 10 });
    await expect(jobs.submit(OPEN_CALLER, input())).resolves.toMatchObject({ status: 'queued' });
    await expect(jobs.submit(OPEN_CALLER, textEmbedding())).resolves.toMatchObject({ status: 'queued' });
    expect(queue.freshReads).toBeGreaterThan(0);
    // Really saturated now (two unfinished jobs): refused, on the counts read again.
    await expectAppError(
      jobs.submit(OPEN_CALLER, input()),
      ErrorCode.Overloaded,
      undefined,
      /too many jobs in progress \(2, MAX_QUEUED_JOBS=2\)/,
    );
    await expectAppError(
      jobs.submit(OPEN_CALLER, textEmbedding()),
      ErrorCode.Overloaded,
      undefined,
      /MAX_QUEUED_JOBS=2/,
    );
  });

  it('should keep at most maxConcurrentJobs running and the rest queued', async () => {
    const { jobs, clip } = make({ maxConcurrentJobs: 2 });
    const submitted = await Promise.all([1, 2, 3].map(() => jobs.submit(OPEN_CALLER, input())));
    await until(() => clip.calls.length === 2);
    await turns();
    expect(clip.calls).toHaveLength(2);
    expect(jobs.stats()).toMatchObject({ queued: 1, running: 2 });
    clip.complete(0);
    await until(() => clip.calls.length === 3);
    clip.complete(1);
    clip.complete(2);
    await until(() => idle(jobs));
    for (const job of submitted) expect((await jobs.get(OPEN_CALLER, job.id))?.status).toBe('complete');
  });

  it('should mark a job FAILED with the AppError code, and mask unknown errors', async () => {
    const { jobs, clip } = make();
    const a = await jobs.submit(OPEN_CALLER, input());
    const b = await jobs.submit(OPEN_CALLER, input());
    const c = await jobs.submit(OPEN_CALLER, input());
    await until(() => clip.calls.length === 3);
    clip.calls[0]?.reject(new AppError(ErrorCode.InferenceFailed, 'the model produced NaN'));
    clip.calls[1]?.reject(new Error('secret /path/to/file detail'));
    clip.complete(2);
    await until(() => idle(jobs));
    expect(await jobs.get(OPEN_CALLER, a.id)).toMatchObject({
      status: 'failed',
      error: { code: 'INFERENCE_FAILED', message: 'the model produced NaN' },
    });
    expect(await jobs.get(OPEN_CALLER, b.id)).toMatchObject({
      status: 'failed',
      error: { code: 'INTERNAL_SERVER_ERROR', message: 'internal error' },
    });
    // One failing job does not affect another.
    expect((await jobs.get(OPEN_CALLER, c.id))?.status).toBe('complete');
  });

  it('should fail a job whose classifier result has the wrong shape', async () => {
    const { jobs, clip } = make();
    const job = await jobs.submit(OPEN_CALLER, input());
    await until(() => clip.calls.length === 1);
    clip.calls[0]?.resolve({ probabilities: [[1]] });
    await until(() => idle(jobs));
    expect(await jobs.get(OPEN_CALLER, job.id)).toMatchObject({
      status: 'failed',
      error: { code: 'INTERNAL_SERVER_ERROR' },
    });
  });

  it('should cancel queued and running jobs, and return finished ones unchanged', async () => {
    const { jobs, clip } = make({ maxConcurrentJobs: 1 });
    const running = await jobs.submit(OPEN_CALLER, input());
    const queued = await jobs.submit(OPEN_CALLER, input());
    await until(() => clip.calls.length === 1);
    const cancelledQueued = await jobs.cancel(OPEN_CALLER, queued.id);
    expect(cancelledQueued).toMatchObject({ status: 'cancelled', startedAt: null });
    const cancelledRunning = await jobs.cancel(OPEN_CALLER, running.id);
    expect(cancelledRunning?.status).toBe('cancelled');
    expect(clip.calls[0]?.request.signal?.aborted).toBe(true);
    await turns();
    // The queued job never reached the classifier.
    expect(clip.calls).toHaveLength(1);
    expect((await jobs.get(OPEN_CALLER, running.id))?.status).toBe('cancelled');
    expect(await jobs.cancel(OPEN_CALLER, running.id)).toMatchObject({ status: 'cancelled' });
    expect(await jobs.cancel(OPEN_CALLER, 'unknown')).toBeUndefined();
    expect(jobs.stats()).toMatchObject({ queued: 0, running: 0, pendingImages: 0, pendingImageBytes: 0 });
  });

  it('should watch a job: current state first, then every change, then end', async () => {
    const { jobs, clip } = make();
    const job = await jobs.submit(OPEN_CALLER, input());
    const watch = await jobs.watch(OPEN_CALLER, job.id);
    const seen: string[] = [];
    const consumed = (async () => {
      for await (const state of watch) seen.push(state.status);
    })();
    await until(() => clip.calls.length === 1);
    clip.complete(0);
    await consumed;
    expect(seen).toEqual(['queued', 'running', 'complete']);
    expect(jobs.stats().watchers).toBe(0);
    expect(jobs.events.listenerCount('jobUpdated')).toBe(0);
  });

  it('should watch a finished job: one terminal state, then end', async () => {
    const { jobs, clip } = make();
    clip.autoComplete = true;
    const job = await jobs.submit(OPEN_CALLER, input());
    await until(() => idle(jobs));
    const seen: Job[] = [];
    for await (const state of await jobs.watch(OPEN_CALLER, job.id)) seen.push(state);
    expect(seen.map((state) => state.status)).toEqual(['complete']);
  });

  it('should deliver a state that changes before the first next() (no race with a fast job)', async () => {
    const { jobs, clip } = make();
    clip.autoComplete = true;
    const job = await jobs.submit(OPEN_CALLER, input());
    const watch = await jobs.watch(OPEN_CALLER, job.id);
    await until(() => idle(jobs));
    const seen: string[] = [];
    for await (const state of watch) seen.push(state.status);
    expect(seen).toEqual(['queued', 'running', 'complete']);
  });

  it('should resolve whenWatchersGone once the last watcher ends, and to false at its deadline while one is open', async () => {
    const { jobs, clip } = make();
    expect(await settledOrPending(jobs.whenWatchersGone(5000))).toBe(true);
    const job = await jobs.submit(OPEN_CALLER, input());
    const watch = await jobs.watch(OPEN_CALLER, job.id);
    const consumed = (async () => {
      for await (const _state of watch);
    })();
    expect(await jobs.whenWatchersGone(20)).toBe(false);
    const gone = jobs.whenWatchersGone(5000);
    expect(await settledOrPending(gone)).toBe('pending');
    await until(() => clip.calls.length === 1);
    clip.complete(0);
    await consumed;
    expect(await gone).toBe(true);
  });

  it('should reject watching an unknown job with NOT_FOUND', async () => {
    const { jobs } = make();
    await expectAppError(jobs.watch(OPEN_CALLER, 'nope'), ErrorCode.NotFound);
  });

  it('should remove the listener when a watcher stops early, even while waiting', async () => {
    const { jobs } = make({ maxConcurrentJobs: 1 });
    await jobs.submit(OPEN_CALLER, input());
    const job = await jobs.submit(OPEN_CALLER, input());
    const watch = await jobs.watch(OPEN_CALLER, job.id);
    expect((await watch.next()).value?.status).toBe('queued');
    const waiting = watch.next();
    expect(jobs.events.listenerCount('jobUpdated')).toBe(1);
    await watch.return?.();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(jobs.events.listenerCount('jobUpdated')).toBe(0);
    expect(jobs.stats().watchers).toBe(0);
  });

  it('should list jobs with paging and refuse a bad page size or cursor', async () => {
    const { jobs } = make();
    const ids = [];
    for (let i = 0; i < 3; i += 1) ids.push((await jobs.submit(OPEN_CALLER, input())).id);
    const page = await jobs.list(OPEN_CALLER, { first: 2 });
    expect(page.jobs.map((job) => job.id)).toEqual(ids.slice(0, 2));
    const next = await jobs.list(OPEN_CALLER, { first: 2, after: page.endCursor ?? undefined });
    expect(next.jobs.map((job) => job.id)).toEqual(ids.slice(2));
    await expectAppError(jobs.list(OPEN_CALLER, { first: 0 }), ErrorCode.BadUserInput, 'first');
    await expectAppError(jobs.list(OPEN_CALLER, { first: 101 }), ErrorCode.BadUserInput, 'first');
    await expectAppError(jobs.list(OPEN_CALLER, { after: 'garbage' }), ErrorCode.BadUserInput, 'after');
  });

  it('should expire finished jobs after the TTL', async () => {
    // The TTL runs on a fake clock; the queue's immediates stay real, so the job still runs by itself.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const store = new MemoryJobStore();
    const { jobs, clip } = make({ ttlSeconds: 1, store });
    clip.autoComplete = true;
    const job = await jobs.submit(OPEN_CALLER, input());
    await vi.waitFor(() => expect(idle(jobs)).toBe(true));
    expect((await jobs.get(OPEN_CALLER, job.id))?.status).toBe('complete');
    await vi.advanceTimersByTimeAsync(1100);
    expect(await jobs.get(OPEN_CALLER, job.id)).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it('should drain: refuse new jobs, finish accepted ones, then fail stragglers at the timeout', async () => {
    const { jobs, clip } = make();
    const finishing = await jobs.submit(OPEN_CALLER, input());
    const straggler = await jobs.submit(OPEN_CALLER, input());
    await until(() => clip.calls.length === 2);
    const watch = await jobs.watch(OPEN_CALLER, straggler.id);
    const draining = jobs.drain(300);
    await expectAppError(jobs.submit(OPEN_CALLER, input()), ErrorCode.ShuttingDown);
    clip.complete(0);
    expect(await draining).toBe(1);
    expect((await jobs.get(OPEN_CALLER, finishing.id))?.status).toBe('complete');
    expect(await jobs.get(OPEN_CALLER, straggler.id)).toMatchObject({
      status: 'failed',
      error: { code: 'SHUTTING_DOWN' },
    });
    const seen: string[] = [];
    for await (const state of watch) seen.push(state.status);
    expect(seen).toEqual(['running', 'failed']);
  });

  it('should resolve drain at once when idle', async () => {
    const { jobs } = make();
    // Settled before the next turn: it never waited on its timeout.
    expect(await settledOrPending(jobs.drain(5000))).toBe(0);
    expect(jobs.draining).toBe(true);
  });

  it('should reject invalid options', () => {
    expect(() => memoryJobService({ clip: new FakeClassifier(), maxQueuedJobs: 0 })).toThrow(/maxQueuedJobs/);
  });
});

describe('JobService images by URL', () => {
  const imageA = Buffer.from('image bytes A');
  const imageB = Buffer.from('image bytes B, a little longer');
  const host = { url: 'http://images.test' };
  const services: JobService[] = [];

  afterEach(async () => {
    for (const service of services.splice(0)) await service.close();
  });

  async function serviceWith(
    options: Partial<MemoryJobServiceOptions>,
  ): Promise<{ jobs: JobService; clip: FakeClassifier }> {
    const clip = new FakeClassifier();
    const jobs = memoryJobService({ ...options, clip });
    services.push(jobs);
    return { jobs, clip };
  }

  /**
   * The fetcher is JobService's dependency, injected as the server injects the guarded one (src/imageUrls, tested
   * against real loopback servers in test/integration/imageUrls): here it answers from a table, refusing an unknown
   * path as the guard refuses an HTTP 404.
   */
  const fetcher = (): FetchImageUrl => {
    const files: Record<string, Uint8Array> = { [`${host.url}/a.png`]: imageA, [`${host.url}/b.png`]: imageB };
    return async (url, field) => {
      const bytes = files[url];
      if (bytes === undefined)
        throw new AppError(ErrorCode.BadUserInput, `${field}: HTTP 404`, {
          field,
          refusal: ImageUrlRefusal.HttpStatus,
        });
      return bytes;
    };
  };

  it('should run a job on the fetched bytes, in input order, URLs and inline images mixed', async () => {
    const { jobs, clip } = await serviceWith({ fetchImageUrl: fetcher() });
    const job = await jobs.submit(
      OPEN_CALLER,
      imageEmbedding({
        images: [`${host.url}/b.png`, 'inline', `${host.url}/a.png`],
        imagesField: 'images',
        batched: true,
      }),
    );
    expect(job.imageCount).toBe(3);
    await until(() => clip.embedCalls.length === 1);
    const request = clip.embedCalls[0] as EmbedImagesRequest;
    expect(request.images.map((bytes) => Buffer.from(bytes).toString())).toEqual([
      imageB.toString(),
      'inline',
      imageA.toString(),
    ]);
  });

  it('should refuse a URL the guard refuses, naming its field, and run nothing', async () => {
    const { jobs, clip } = await serviceWith({ fetchImageUrl: fetcher() });
    const error = await expectAppError(
      jobs.submit(
        OPEN_CALLER,
        input({ images: ['inline', `${host.url}/missing.png`], imagesField: 'images', batched: true }),
      ),
      ErrorCode.BadUserInput,
      'images[1]',
    );
    expect(error.refusal).toBe(ImageUrlRefusal.HttpStatus);
    expect(clip.calls).toHaveLength(0);
    expect(jobs.stats().totals.queued).toBe(0);
  });

  it('should refuse URLs when it has no fetcher', async () => {
    const { jobs } = await serviceWith({});
    const error = await expectAppError(
      jobs.submit(OPEN_CALLER, input({ images: [`${host.url}/a.png`] })),
      ErrorCode.BadUserInput,
      'image',
    );
    expect(error.refusal).toBe(ImageUrlRefusal.Off);
  });

  it('should stop fetching once a job’s images pass MAX_PENDING_IMAGE_BYTES', async () => {
    const { jobs } = await serviceWith({
      fetchImageUrl: fetcher(),
      maxPendingImageBytes: imageA.length + imageB.length - 1,
    });
    await expectAppError(
      jobs.submit(
        OPEN_CALLER,
        input({ images: [`${host.url}/a.png`, `${host.url}/b.png`], imagesField: 'images', batched: true }),
      ),
      ErrorCode.BadUserInput,
      'images',
      /MAX_PENDING_IMAGE_BYTES/,
    );
  });
});
