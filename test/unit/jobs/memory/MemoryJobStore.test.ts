import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidCursorError } from '../../../../src/jobs/JobStore.js';
import { MemoryJobStore } from '../../../../src/jobs/memory/MemoryJobStore.js';
import type { Job } from '../../../../src/jobs/types.js';

function makeJob(id: string, ttlMs = 60_000, status: Job['status'] = 'queued'): Job {
  const createdAt = new Date();
  const base = {
    id,
    owner: null,
    task: 'classification' as const,
    model: 'm',
    classes: ['a'],
    texts: [],
    imageCount: 1,
    batched: false,
    createdAt,
    expiresAt: new Date(createdAt.getTime() + ttlMs),
    version: 0,
  };
  if (status === 'complete') {
    return {
      ...base,
      version: 1,
      status,
      startedAt: createdAt,
      finishedAt: createdAt,
      result: { task: 'classification', images: [{ probabilities: [1] }] },
    };
  }
  return { ...base, status: 'queued' };
}

describe('MemoryJobStore', () => {
  let store: MemoryJobStore;
  afterEach(async () => {
    vi.useRealTimers();
    await store.close();
  });

  it('should create, get, transition and delete a job', async () => {
    store = new MemoryJobStore();
    const job = makeJob('a');
    await store.create(job);
    expect(await store.get('a')).toBe(job);
    const done = makeJob('a', 60_000, 'complete');
    expect(await store.transition('a', 'running', done)).toBe(false);
    expect(await store.transition('a', 'queued', done)).toBe(true);
    expect((await store.get('a'))?.status).toBe('complete');
    expect(await store.transition('a', 'queued', done)).toBe(false);
    expect(await store.delete('a')).toBe(true);
    expect(await store.get('a')).toBeUndefined();
    expect(await store.transition('a', 'complete', { ...done, version: 2 })).toBe(false);
    expect(await store.get('a')).toBeUndefined();
  });

  it('should refuse a second job with the same id', async () => {
    store = new MemoryJobStore();
    await store.create(makeJob('a'));
    await expect(store.create(makeJob('a'))).rejects.toThrow(/already exists/);
  });

  it('should forget a job when its TTL passes, by timer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    store = new MemoryJobStore();
    await store.create(makeJob('short', 50));
    await store.create(makeJob('long', 60_000));
    expect(store.size).toBe(2);
    await vi.advanceTimersByTimeAsync(49);
    expect(store.size).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(store.size).toBe(1);
    expect(await store.get('short')).toBeUndefined();
    expect(await store.get('long')).toBeDefined();
  });

  it('should hide an expired job even before its timer fires', async () => {
    let now = Date.now();
    store = new MemoryJobStore({ now: () => now });
    await store.create(makeJob('a', 1000));
    now += 2000;
    expect(await store.get('a')).toBeUndefined();
    expect((await store.list({ first: 10 })).jobs).toEqual([]);
  });

  it('should list in creation order with a status filter and cursor pagination', async () => {
    store = new MemoryJobStore();
    for (let i = 0; i < 5; i += 1) await store.create(makeJob(`j${i}`, 60_000, i % 2 === 0 ? 'queued' : 'complete'));
    const page1 = await store.list({ first: 2 });
    expect(page1.jobs.map((job) => job.id)).toEqual(['j0', 'j1']);
    expect(page1.hasNextPage).toBe(true);
    const page2 = await store.list({ first: 2, after: page1.endCursor ?? undefined });
    expect(page2.jobs.map((job) => job.id)).toEqual(['j2', 'j3']);
    const page3 = await store.list({ first: 2, after: page2.endCursor ?? undefined });
    expect(page3.jobs.map((job) => job.id)).toEqual(['j4']);
    expect(page3.hasNextPage).toBe(false);
    // A cursor stays valid when the job it points at is gone.
    await store.delete('j1');
    expect((await store.list({ first: 10, after: page1.endCursor ?? undefined })).jobs.map((job) => job.id)).toEqual([
      'j2',
      'j3',
      'j4',
    ]);
    const queued = await store.list({ first: 10, status: 'queued' });
    expect(queued.jobs.map((job) => job.id)).toEqual(['j0', 'j2', 'j4']);
    const empty = await store.list({ first: 10, status: 'failed' });
    expect(empty).toEqual({ jobs: [], endCursor: null, hasNextPage: false });
  });

  it('should reject a cursor it did not produce', async () => {
    store = new MemoryJobStore();
    await expect(store.list({ first: 1, after: 'nonsense' })).rejects.toBeInstanceOf(InvalidCursorError);
  });
});
