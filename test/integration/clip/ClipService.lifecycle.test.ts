/**
 * Models as runtime resources, on the tiny generated model in-process: start / stop, a stop that waits for running
 * inference, lazy loading, a failed load, idle stop on an injected clock, and readiness.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClipService } from '../../../src/clip/index.js';
import { ErrorCode } from '../../../src/errors.js';
import { noiseImage, serviceStarter, testServiceOptions } from '../../utils/clipService.js';
import { TINY_MODEL_DIR } from '../../utils/testModel.js';

const CLASSES = ['cat', 'dog'];

async function classifyOn(service: ClipService, model: string, seed = 1): Promise<number[]> {
  const { probabilities } = await service.classify({
    model,
    images: [await noiseImage(seed)],
    labels: CLASSES,
    prompt: {},
  });
  return probabilities[0]!;
}

describe('ClipService model lifecycle', () => {
  const started = serviceStarter();
  const emptyDirs: string[] = [];
  afterAll(async () => {
    await Promise.all(emptyDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('should stop a model after its running inference, release it, and start it again on the next request', async () => {
    const service = await started(
      new ClipService(testServiceOptions({ extraModels: [{ name: 'extra', source: TINY_MODEL_DIR }] })),
    );
    await service.startModel('extra');
    expect(service.modelInfo('extra')).toMatchObject({ status: 'ready', load: 'eager' });
    expect(service.modelInfo('extra').sessionBytes).toBeGreaterThan(0);

    const image = await noiseImage(1);
    // The stop is asked for once the request is inside the model (its image cache is consulted there).
    const inside = new Promise<void>((resolve) =>
      service.events.on('cacheLookup', (e) => e.model === 'extra' && e.kind === 'image' && resolve()),
    );
    const running = service
      .classify({ model: 'extra', images: [image], labels: CLASSES, prompt: {} })
      .then((r) => r.probabilities[0]!);
    await inside;
    const stopped = service.stopModel('extra');
    expect(service.modelInfo('extra').status).toBe('stopping');
    const probabilities = await running;
    expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect((await stopped).status).toBe('stopped');
    expect(service.cacheSizes().map((c) => c.model)).not.toContain('extra');
    // Idempotent.
    expect((await service.stopModel('extra')).status).toBe('stopped');
    // The default model is untouched, and readiness follows it alone.
    expect(service.modelInfo('tiny').status).toBe('ready');
    expect(service.readiness()).toEqual({ ready: true, reason: null });

    // A request on the stopped model starts it again, with the same results.
    expect(await classifyOn(service, 'extra')).toEqual(probabilities);
    expect(service.modelInfo('extra').status).toBe('ready');
    expect((await service.startModel('extra')).status).toBe('ready');
  });

  it('should load a lazy model on its first request, not at start', async () => {
    const service = await started(
      new ClipService(testServiceOptions({ extraModels: [{ name: 'lazy', source: `${TINY_MODEL_DIR};load=lazy` }] })),
    );
    expect(service.modelInfo('lazy')).toMatchObject({
      status: 'uninitialized',
      load: 'lazy',
      embeddingSize: null,
      sessionBytes: null,
    });
    await service.prepareModel('lazy');
    expect(service.modelInfo('lazy').status).toBe('ready');
    expect(service.modelInfo('lazy').embeddingSize).toBeGreaterThan(0);
    expect(await classifyOn(service, 'lazy')).toHaveLength(2);
  });

  it('should fail requests on a model that cannot load with MODEL_UNAVAILABLE and the reason, and retry only on an explicit start', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'lifecycle-empty-'));
    emptyDirs.push(empty);
    const service = await started(
      new ClipService(testServiceOptions({ extraModels: [{ name: 'broken', source: `${empty};load=lazy` }] })),
    );
    const failure = classifyOn(service, 'broken');
    await expect(failure).rejects.toMatchObject({
      code: ErrorCode.ModelUnavailable,
      message: expect.stringMatching(/^The model broken is not available: .+/),
    });
    const info = service.modelInfo('broken');
    expect(info.status).toBe('failed');
    expect(info.error).toMatch(/\S/);
    // A later request does not load it again…
    await expect(service.prepareModel('broken')).rejects.toMatchObject({ code: ErrorCode.ModelUnavailable });
    // …an explicit start does (and fails again); a stop clears the failure.
    expect((await service.startModel('broken')).status).toBe('failed');
    expect((await service.stopModel('broken')).status).toBe('stopped');
    expect(service.readiness().ready).toBe(true);
  });

  it('should answer NOT_FOUND for control of an unknown model', async () => {
    const service = await started(new ClipService(testServiceOptions()));
    await expect(service.startModel('nope')).rejects.toMatchObject({ code: ErrorCode.NotFound });
    await expect(service.stopModel('nope')).rejects.toMatchObject({ code: ErrorCode.NotFound });
    expect(() => service.modelInfo('nope')).toThrow(/Unknown model "nope"/);
  });

  it('should stop a model idle for idleStopSeconds, by its clock, and keep one that is in use', async () => {
    let now = 1_000_000;
    const service = await started(new ClipService({ ...testServiceOptions(), idleStopSeconds: 60, clock: () => now }));
    await classifyOn(service, 'tiny');
    now += 59_000;
    expect(await service.stopIdleModels()).toEqual([]);
    // Used again: the idle time counts from this request.
    await classifyOn(service, 'tiny', 2);
    now += 30_000;
    expect(await service.stopIdleModels()).toEqual([]);
    now += 31_000;
    expect(await service.stopIdleModels()).toEqual(['tiny']);
    expect(service.modelInfo('tiny').status).toBe('stopped');
    // A stopped default model keeps the server ready: its next request starts it.
    expect(service.readiness()).toEqual({ ready: true, reason: null });
    expect(await classifyOn(service, 'tiny')).toHaveLength(2);
    expect(service.modelInfo('tiny').status).toBe('ready');
  });

  it('should be unready until an eager default model has loaded, and ready at once when the default is lazy', async () => {
    const eager = new ClipService(testServiceOptions());
    expect(eager.readiness()).toEqual({ ready: false, reason: 'loading the default model tiny' });
    await started(eager);
    expect(eager.readiness()).toEqual({ ready: true, reason: null });

    const lazy = await started(new ClipService(testServiceOptions({ defaultModel: `${TINY_MODEL_DIR};load=lazy` })));
    expect(lazy.modelInfo('tiny').status).toBe('uninitialized');
    expect(lazy.readiness()).toEqual({ ready: true, reason: null });
    expect(await classifyOn(lazy, 'tiny')).toHaveLength(2);
  });

  it('should never stop an idle model when idleStopSeconds is 0', async () => {
    let now = 0;
    const service = await started(new ClipService({ ...testServiceOptions(), idleStopSeconds: 0, clock: () => now }));
    now += 365 * 24 * 3600 * 1000;
    expect(await service.stopIdleModels()).toEqual([]);
    expect(service.modelInfo('tiny').status).toBe('ready');
  });
});
