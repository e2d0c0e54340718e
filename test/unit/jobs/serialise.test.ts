import { describe, expect, it } from 'vitest';
import { jobFromJSON, jobToJSON } from '../../../src/jobs/serialise.js';
import type { Job } from '../../../src/jobs/types.js';

describe('serialise', () => {
  it('should round-trip a job through JSON, dates included', () => {
    const createdAt = new Date(1);
    const job: Job = {
      id: 'a',
      owner: null,
      task: 'classification',
      model: 'm',
      classes: ['a'],
      texts: [],
      imageCount: 1,
      batched: false,
      createdAt,
      expiresAt: new Date(60_001),
      status: 'complete',
      startedAt: new Date(5),
      finishedAt: new Date(9),
      version: 2,
      result: { task: 'classification', images: [{ probabilities: [1] }] },
    };
    const back = jobFromJSON(jobToJSON(job));
    expect(back).toEqual(job);
    expect(back.createdAt).toBeInstanceOf(Date);
    expect(() => jobFromJSON('{"hello":1}')).toThrow(/not a stored job/);
  });
});
