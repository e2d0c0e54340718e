import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../src/errors.js';
import { estimatedJobHeapBytes } from '../../../src/jobs/retention.js';
import type { Job } from '../../../src/jobs/types.js';

const base: Job = {
  id: 'j',
  status: 'queued',
  task: 'text-embedding',
  model: 'm',
  classes: [],
  texts: [],
  imageCount: 0,
  batched: true,
  owner: null,
  createdAt: new Date(0),
  expiresAt: new Date(1),
  version: 0,
};

describe('estimatedJobHeapBytes', () => {
  it('should count 2 bytes per character of texts and classes, and 8 per number of a result', () => {
    const empty = estimatedJobHeapBytes(base);
    const texts = estimatedJobHeapBytes({ ...base, texts: ['x'.repeat(10_000), 'y'.repeat(10_000)] });
    expect(texts - empty).toBeGreaterThanOrEqual(40_000);
    expect(texts - empty).toBeLessThan(40_200);
    const classes = estimatedJobHeapBytes({ ...base, task: 'classification', classes: ['cat', 'dog'] });
    expect(classes - empty).toBeGreaterThanOrEqual(12);
    const complete: Job = {
      ...base,
      status: 'complete',
      startedAt: new Date(0),
      finishedAt: new Date(0),
      result: {
        task: 'text-embedding',
        embeddings: [new Array<number>(512).fill(0.5), new Array<number>(512).fill(0.5)],
      },
    };
    expect(estimatedJobHeapBytes(complete) - empty).toBeGreaterThanOrEqual(2 * 512 * 8);
    const failed: Job = {
      ...base,
      status: 'failed',
      startedAt: null,
      finishedAt: new Date(0),
      error: { code: ErrorCode.InternalServerError, message: 'm'.repeat(100) },
    };
    expect(estimatedJobHeapBytes(failed) - empty).toBeGreaterThanOrEqual(200);
  });
});
