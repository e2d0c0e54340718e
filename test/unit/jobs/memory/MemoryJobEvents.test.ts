import { describe, expect, it } from 'vitest';
import { MemoryJobEvents } from '../../../../src/jobs/memory/MemoryJobEvents.js';
import type { Job } from '../../../../src/jobs/types.js';

const job: Job = {
  id: 'a',
  owner: null,
  status: 'queued',
  task: 'classification',
  model: 'm',
  classes: ['x'],
  texts: [],
  imageCount: 1,
  batched: false,
  createdAt: new Date(),
  expiresAt: new Date(),
  version: 0,
};

describe('MemoryJobEvents', () => {
  it('should deliver jobUpdated to listeners until they unsubscribe', () => {
    const events = new MemoryJobEvents();
    const seen: string[] = [];
    const off = events.on('jobUpdated', (updated) => seen.push(updated.id));
    void events.publish(job);
    expect(events.listenerCount('jobUpdated')).toBe(1);
    off();
    off();
    void events.publish(job);
    expect(seen).toEqual(['a']);
    expect(events.listenerCount('jobUpdated')).toBe(0);
  });

  it('should isolate a throwing listener from the others', () => {
    const errors: unknown[] = [];
    const events = new MemoryJobEvents((error) => errors.push(error));
    const seen: string[] = [];
    events.on('jobUpdated', () => {
      throw new Error('boom');
    });
    events.on('jobUpdated', (updated) => seen.push(updated.id));
    void events.publish(job);
    expect(seen).toEqual(['a']);
    expect(errors).toHaveLength(1);
  });
});
