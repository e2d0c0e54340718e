import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../../src/errors.js';
import type { Job, SubmitClassificationInput } from '../../../src/jobs/types.js';
import type { ClipModels } from '../../../src/rest/deps.js';
import {
  assertJobOnRoute,
  fesModelNames,
  fesTaskOf,
  isZeroShotTask,
  parseFesJobBody,
  unknownFesConfigKeys,
  requireFesModel,
  resolveFesModel,
  toFesJobResponse,
  toFesJobState,
  toFesNewJobResponse,
} from '../../../src/rest/shapes.js';
import { normaliseModelName } from '../../../src/clip/catalogue.js';

const common = {
  id: 'job-1',
  owner: null,
  task: 'classification' as const,
  model: 'clip-vit-base-patch32',
  classes: ['cat', 'dog'],
  texts: [],
  imageCount: 1,
  batched: false,
  createdAt: new Date(0),
  expiresAt: new Date(3_600_000),
  version: 0,
};

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected an AppError');
}

// Resolves as ClipModels promises (any case, kebab or snake), like ClipService does.
const clip: ClipModels = {
  models: () => [
    {
      name: 'my_model',
      source: '/m',
      precision: 'fp32',
      status: 'ready',
      embeddingSize: 8,
      contextLength: 77,
      imageSize: 32,
      logitScale: 100,
      error: null,
    },
    {
      name: 'clip-vit-base-patch32',
      source: 'clip-vit-base-patch32',
      precision: 'fp32',
      status: 'loading',
      embeddingSize: null,
      contextLength: null,
      imageSize: null,
      logitScale: null,
      error: null,
    },
  ],
  resolveModelName: (name) =>
    ['my_model', 'clip-vit-base-patch32'].find((model) => normaliseModelName(model) === normaliseModelName(name)),
};

describe('toFesJobState', () => {
  it('should map our statuses onto the seed JobState enum', () => {
    expect(toFesJobState('queued')).toBe('starting');
    expect(toFesJobState('running')).toBe('running');
    expect(toFesJobState('complete')).toBe('complete');
    expect(toFesJobState('failed')).toBe('failed');
    expect(toFesJobState('cancelled')).toBe('failed');
  });
});

describe('toFesJobResponse', () => {
  const complete: Job = {
    ...common,
    status: 'complete',
    startedAt: new Date(1),
    finishedAt: new Date(2),
    result: { task: 'classification', images: [{ probabilities: [0.25, 0.75] }] },
  };

  it('should answer a pending job with its status only', () => {
    expect(toFesJobResponse({ ...common, status: 'queued' }, false)).toEqual({ status: 'starting' });
    expect(toFesJobResponse({ ...common, status: 'running', startedAt: new Date(1) }, false)).toEqual({
      status: 'running',
    });
  });

  it('should answer one classification on the single route and a list on the batched route', () => {
    expect(toFesJobResponse(complete, false)).toEqual({ status: 'complete', result: { probabilities: [0.25, 0.75] } });
    expect(toFesJobResponse(complete, true)).toEqual({ status: 'complete', result: [{ probabilities: [0.25, 0.75] }] });
  });

  it('should answer a failed job with its error code and message', () => {
    const failed: Job = {
      ...common,
      status: 'failed',
      startedAt: null,
      finishedAt: new Date(2),
      error: { code: ErrorCode.InferenceFailed, message: 'image 0: not an image' },
    };
    expect(toFesJobResponse(failed, false)).toEqual({
      status: 'failed',
      error: { code: 'INFERENCE_FAILED', message: 'image 0: not an image' },
    });
  });

  it('should answer a cancelled job as failed with code CANCELLED', () => {
    const cancelled: Job = { ...common, status: 'cancelled', startedAt: null, finishedAt: new Date(2) };
    expect(toFesJobResponse(cancelled, false)).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } });
  });

  it('should refuse a job of several images on the single route, pointing at the batched one', () => {
    const batchedJob: Job = {
      ...complete,
      imageCount: 2,
      batched: true,
      result: { task: 'classification', images: [{ probabilities: [1, 0] }, { probabilities: [0, 1] }] },
    };
    const error = thrown(() => toFesJobResponse(batchedJob, false));
    expect(error.code).toBe(ErrorCode.BadUserInput);
    expect(error.message).toContain('/batched/jobs/job-1');
    expect(toFesJobResponse(batchedJob, true)).toEqual({
      status: 'complete',
      result: [{ probabilities: [1, 0] }, { probabilities: [0, 1] }],
    });
  });

  it('should answer a new job with id and the seed status', () => {
    expect(toFesNewJobResponse({ ...common, status: 'queued' })).toEqual({ id: 'job-1', status: 'starting' });
  });
});

describe('embedding jobs', () => {
  const vectors = [
    [0.6, 0.8],
    [1, 0],
  ];
  const imageJob: Job = {
    ...common,
    task: 'image-embedding',
    classes: [],
    imageCount: 2,
    batched: true,
    status: 'complete',
    startedAt: new Date(1),
    finishedAt: new Date(2),
    result: { task: 'image-embedding', embeddings: vectors },
  };
  const textJob: Job = {
    ...imageJob,
    task: 'text-embedding',
    texts: ['a cat'],
    imageCount: 0,
    batched: false,
    result: { task: 'text-embedding', embeddings: [[0, 1]] },
  };

  it('should answer {embedding} per input: a list in input order on the batched route, one object on the single route', () => {
    expect(toFesJobResponse(imageJob, true)).toEqual({
      status: 'complete',
      result: [{ embedding: [0.6, 0.8] }, { embedding: [1, 0] }],
    });
    expect(toFesJobResponse(textJob, false)).toEqual({ status: 'complete', result: { embedding: [0, 1] } });
    expect(toFesJobResponse(textJob, true)).toEqual({ status: 'complete', result: [{ embedding: [0, 1] }] });
  });

  it('should refuse a text job of several texts on the single route, pointing at the batched one', () => {
    const error = thrown(() => toFesJobResponse({ ...textJob, texts: ['a', 'b'] }, false));
    expect(error.code).toBe(ErrorCode.BadUserInput);
    expect(error.message).toContain('2 texts; read it at /api/tasks/text-embedding/batched/jobs/job-1');
  });

  it("should answer NOT_FOUND for a job read on another task's route, saying where it is", () => {
    const error = thrown(() => assertJobOnRoute(imageJob, 'text-embedding', true));
    expect(error.code).toBe(ErrorCode.NotFound);
    expect(error.message).toContain('/api/tasks/image-embedding/batched/jobs/job-1');
    expect(thrown(() => assertJobOnRoute(textJob, 'zero-shot-image-classification', false)).code).toBe(
      ErrorCode.NotFound,
    );
    expect(() => assertJobOnRoute(imageJob, 'image-embedding', true)).not.toThrow();
  });

  it("should read vitrivr-engine's bodies: image or text, single or list, no config", () => {
    expect(parseFesJobBody({ image: 'data:image/png;base64,AAAA' }, false, 'image-embedding')).toEqual({
      task: 'image-embedding',
      images: ['data:image/png;base64,AAAA'],
      imagesField: 'image',
      batched: false,
    });
    expect(parseFesJobBody({ image: ['AAAA', 'BBBB'], config: {} }, true, 'image-embedding')).toMatchObject({
      images: ['AAAA', 'BBBB'],
      batched: true,
    });
    // A generated client may send the optional config as null: the same as absent.
    expect(parseFesJobBody({ image: 'AAAA', config: null }, false, 'image-embedding')).toMatchObject({
      images: ['AAAA'],
    });
    expect(parseFesJobBody({ text: 'a', config: null }, false, 'text-embedding')).toMatchObject({
      texts: ['a'],
      config: undefined,
    });
    expect(parseFesJobBody({ text: 'a cat' }, false, 'text-embedding')).toEqual({
      task: 'text-embedding',
      texts: ['a cat'],
      textsField: 'text',
      batched: false,
      config: undefined,
    });
    expect(
      parseFesJobBody({ text: ['a', 'b'], config: { promptTemplate: '{}' } }, true, 'text-embedding'),
    ).toMatchObject({
      texts: ['a', 'b'],
      batched: true,
      config: { promptTemplate: '{}' },
    });
  });

  it.each([
    ['a missing image', {}, false, 'image-embedding', 'image'],
    ['a list image on the single route', { image: ['AAAA'] }, false, 'image-embedding', 'image'],
    ['a config that is not an object', { image: 'AAAA', config: [1] }, false, 'image-embedding', 'config'],
    ['a missing text', { config: {} }, false, 'text-embedding', 'text'],
    ['a list text on the single route', { text: ['a'] }, false, 'text-embedding', 'text'],
    ['a string text on the batched route', { text: 'a' }, true, 'text-embedding', 'text'],
    ['a non-string batched text', { text: ['a', 3] }, true, 'text-embedding', 'text[1]'],
  ] as const)('should refuse %s with BAD_USER_INPUT naming the field', (_name, body, batched, task, field) => {
    const error = thrown(() => parseFesJobBody(body, batched, task));
    expect(error.code).toBe(ErrorCode.BadUserInput);
    expect(error.field).toBe(field);
  });

  it('should know the three tasks in kebab or snake case', () => {
    expect(fesTaskOf('image_embedding')).toBe('image-embedding');
    expect(fesTaskOf('text-embedding')).toBe('text-embedding');
    expect(fesTaskOf('zero_shot_image_classification')).toBe('zero-shot-image-classification');
    expect(fesTaskOf('text-query-embedding')).toBeUndefined();
  });
});

describe('parseFesJobBody', () => {
  it("should accept and drop unknown config keys such as vitrivr-engine's top_k (FES declares config free-form), keeping the prompt settings", () => {
    const body = { image: 'AAAA', classes: ['a'], config: { top_k: 50, promptTemplate: 'a {}', temperature: 0.5 } };
    expect((parseFesJobBody(body, false) as SubmitClassificationInput).config).toEqual({ promptTemplate: 'a {}' });
    expect(unknownFesConfigKeys(body)).toEqual(['top_k', 'temperature']);
    expect(unknownFesConfigKeys({ image: 'AAAA', classes: ['a'] })).toEqual([]);
  });

  it('should read a single-image body', () => {
    expect(
      parseFesJobBody(
        { image: 'data:image/png;base64,AAAA', classes: ['a', 'b'], config: { promptTemplate: '{}' }, extra: 1 },
        false,
      ),
    ).toEqual({
      images: ['data:image/png;base64,AAAA'],
      imagesField: 'image',
      batched: false,
      classes: ['a', 'b'],
      config: { promptTemplate: '{}' },
    });
  });

  it('should read a batched body and treat a null config as absent', () => {
    expect(parseFesJobBody({ image: ['AAAA', 'BBBB'], classes: ['a'], config: null }, true)).toEqual({
      images: ['AAAA', 'BBBB'],
      imagesField: 'image',
      batched: true,
      classes: ['a'],
      config: undefined,
    });
  });

  it.each([
    ['a non-object body', [1, 2], false, undefined],
    ['a missing image', { classes: ['a'] }, false, 'image'],
    ['a list image on the single route', { image: ['AAAA'], classes: ['a'] }, false, 'image'],
    ['a string image on the batched route', { image: 'AAAA', classes: ['a'] }, true, 'image'],
    ['a non-string batched image', { image: ['AAAA', 5], classes: ['a'] }, true, 'image[1]'],
    ['missing classes', { image: 'AAAA' }, false, 'classes'],
    ['classes as a string', { image: 'AAAA', classes: 'cat' }, false, 'classes'],
    ['a non-string class', { image: 'AAAA', classes: ['cat', null] }, false, 'classes[1]'],
    ['a config that is not an object', { image: 'AAAA', classes: ['a'], config: 'x' }, false, 'config'],
  ])('should refuse %s with BAD_USER_INPUT naming the field', (_name, body, batched, field) => {
    const error = thrown(() => parseFesJobBody(body, batched));
    expect(error.code).toBe(ErrorCode.BadUserInput);
    expect(error.field).toBe(field);
  });
});

describe('model and task names', () => {
  it('should resolve kebab and snake spellings of a model name', () => {
    expect(resolveFesModel(clip, 'my-model')).toBe('my_model');
    expect(resolveFesModel(clip, 'my_model')).toBe('my_model');
    expect(resolveFesModel(clip, 'clip_vit_base_patch32')).toBe('clip-vit-base-patch32');
    expect(resolveFesModel(clip, 'nope')).toBeUndefined();
  });

  it('should refuse an unknown model with BAD_USER_INPUT on field model, listing the known ones', () => {
    const error = thrown(() => requireFesModel(clip, 'nope'));
    expect(error.field).toBe('model');
    expect(error.message).toContain('my-model, clip-vit-base-patch32');
  });

  it('should list model names in kebab case and accept the task in either case', () => {
    expect(fesModelNames(clip)).toEqual(['my-model', 'clip-vit-base-patch32']);
    expect(isZeroShotTask('zero-shot-image-classification')).toBe(true);
    expect(isZeroShotTask('zero_shot_image_classification')).toBe(true);
    expect(isZeroShotTask('image-captioning')).toBe(false);
  });
});
