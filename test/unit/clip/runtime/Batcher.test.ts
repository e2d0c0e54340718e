import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Batcher } from '../../../../src/clip/runtime/Batcher.js';
import { AppError, ErrorCode } from '../../../../src/errors.js';

function recordingBatcher(
  options: Partial<{
    maxBatchSize: number;
    maxWaitMs: number;
    maxQueued: number;
    delayMs: number;
    concurrency: number;
  }> = {},
) {
  const batches: number[][] = [];
  const batcher = new Batcher<number, number>({
    name: 'test',
    concurrency: options.concurrency ?? 1,
    maxBatchSize: options.maxBatchSize ?? 4,
    maxWaitMs: options.maxWaitMs ?? 5,
    maxQueued: options.maxQueued ?? 100,
    run: async (items) => {
      batches.push(items);
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      if (items.includes(-1)) throw new Error('poison');
      return items.map((x) => x * 2);
    },
  });
  return { batcher, batches };
}

// The batch wait and the runs' durations are timers on a fake clock: `settle` fires them, in order, without waiting.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Fires every timer the batcher and its runs set, until none is left, then answers `work`. */
async function settle<T>(work: Promise<T>): Promise<T> {
  await vi.runAllTimersAsync();
  return work;
}

/** `promise`'s value if it is settled once the promise callbacks queued so far have run, else 'pending'. */
function settledOrPending<T>(promise: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

describe('Batcher', () => {
  it('should answer items a run delivers early at once, and rerun only the unanswered ones when the run then fails', async () => {
    const runs: number[][] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const batcher = new Batcher<number, number>({
      name: 'early',
      maxBatchSize: 8,
      maxWaitMs: 5,
      maxQueued: 100,
      run: async (items, deliver) => {
        runs.push(items);
        if (items.length === 1) {
          if (items[0] === 3) throw new Error('bad item 3');
          return items.map((x) => x * 10);
        }
        deliver(0, items[0]! * 10);
        deliver(1, items[1]! * 10);
        await gate;
        throw new Error('the batch failed after two items');
      },
    });
    const results = [1, 2, 3, 4].map((x) =>
      batcher.add(x).then(
        (v) => ({ ok: v }),
        (e: Error) => ({ err: e.message }),
      ),
    );
    // The batch's wait ends: the run delivers two items, then waits at the gate.
    await vi.advanceTimersByTimeAsync(5);
    // The two delivered items are answered while the run is still going.
    expect(await settledOrPending(results[0]!)).toEqual({ ok: 10 });
    expect(await results[1]).toEqual({ ok: 20 });
    release();
    expect(await Promise.all(results)).toEqual([{ ok: 10 }, { ok: 20 }, { err: 'bad item 3' }, { ok: 40 }]);
    expect(runs).toEqual([[1, 2, 3, 4], [3], [4]]);
  });

  it('should gather concurrent items into one batch and fan results back in order', async () => {
    const { batcher, batches } = recordingBatcher();
    const results = await settle(Promise.all([1, 2, 3].map((x) => batcher.add(x))));
    expect(results).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('should split at maxBatchSize and run the next batch as soon as the previous ends', async () => {
    const { batcher, batches } = recordingBatcher({ maxBatchSize: 2, delayMs: 10 });
    const results = await settle(Promise.all([1, 2, 3, 4, 5].map((x) => batcher.add(x))));
    expect(results).toEqual([2, 4, 6, 8, 10]);
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('should fail only the item that breaks a batch', async () => {
    const { batcher } = recordingBatcher();
    const settled = await settle(Promise.allSettled([1, -1, 3].map((x) => batcher.add(x))));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[2] as PromiseFulfilledResult<number>).value).toBe(6);
  });

  it('should refuse items with OVERLOADED once the queue is full', async () => {
    const { batcher } = recordingBatcher({ maxBatchSize: 1, maxQueued: 2, delayMs: 20 });
    const accepted = [batcher.add(1), batcher.add(2), batcher.add(3)];
    const refused = batcher.add(4);
    await expect(refused).rejects.toMatchObject({ code: ErrorCode.Overloaded });
    await expect(refused).rejects.toBeInstanceOf(AppError);
    expect(await settle(Promise.all(accepted))).toEqual([2, 4, 6]);
  });

  it('should drop a queued item whose signal aborts', async () => {
    const { batcher, batches } = recordingBatcher({ maxBatchSize: 1, delayMs: 20 });
    const controller = new AbortController();
    const first = batcher.add(1);
    const second = batcher.add(2, controller.signal);
    controller.abort(new Error('cancelled'));
    await expect(second).rejects.toThrow('cancelled');
    expect(await settle(first)).toBe(2);
    await batcher.stop();
    expect(batches).toEqual([[1]]);
  });

  it('should finish queued work on stop and refuse new work after', async () => {
    const { batcher } = recordingBatcher({ maxWaitMs: 1000 });
    const pending = batcher.add(7);
    await batcher.stop();
    expect(await pending).toBe(14);
    await expect(batcher.add(1)).rejects.toMatchObject({ code: ErrorCode.ShuttingDown });
  });

  it('should run what waits at once when hurried, and later items without the batch wait, still taking new work', async () => {
    const { batcher, batches } = recordingBatcher({ maxWaitMs: 60_000 });
    const first = batcher.add(1);
    await Promise.resolve();
    expect(batches).toEqual([]);
    batcher.hurry();
    expect(await first).toBe(2);
    // No timer was fired: the later item runs as soon as it is added.
    expect(await batcher.add(3)).toBe(6);
    expect(batches).toEqual([[1], [3]]);
  });

  it('should reject queued items on abort but let the running batch finish', async () => {
    const { batcher, batches } = recordingBatcher({ maxBatchSize: 1, delayMs: 30 });
    const running = batcher.add(1);
    // Observed before abort rejects it, so the rejection is never unhandled.
    const queued = expect(batcher.add(2)).rejects.toThrow('stopping');
    // The first batch is running (a batch of one starts at once) and waits on its 30 ms.
    expect(batcher.queued).toBe(1);
    await settle(batcher.abort(new Error('stopping')));
    expect(await running).toBe(2);
    await queued;
    expect(batches).toEqual([[1]]);
    await expect(batcher.add(3)).rejects.toMatchObject({ code: ErrorCode.ShuttingDown });
  });

  it('should run up to `concurrency` batches at once, sharing what waits between free runners', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const batches: number[][] = [];
    const batcher = new Batcher<number, number>({
      name: 'test',
      concurrency: 2,
      maxBatchSize: 8,
      maxWaitMs: 5,
      maxQueued: 100,
      run: async (items) => {
        batches.push(items);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        return items.map((x) => -x);
      },
    });
    const results = await settle(Promise.all([1, 2, 3, 4, 5, 6].map((x) => batcher.add(x))));
    expect(results).toEqual([-1, -2, -3, -4, -5, -6]);
    expect(maxInFlight).toBe(2);
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
  });

  describe("with fairShare (a fixed-batch graph's replicas)", () => {
    /** Two runners whose runs take 20 ms; records each batch. */
    function fairBatcher(fairShare: boolean) {
      const batches: number[][] = [];
      let inFlight = 0;
      let maxInFlight = 0;
      const batcher = new Batcher<number, number>({
        name: 'fair',
        concurrency: 2,
        fairShare,
        maxBatchSize: 16,
        maxWaitMs: 0,
        maxQueued: 100,
        run: async (items) => {
          batches.push(items);
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          await new Promise((r) => setTimeout(r, 20));
          inFlight--;
          if (items.includes(-1)) throw new Error('poison');
          return items.map((x) => x * 10);
        },
      });
      return { batcher, batches, maxInFlight: () => maxInFlight };
    }

    it('should let a runner that frees up take only its share of what waits, not all of it', async () => {
      const fair = fairBatcher(true);
      const unfair = fairBatcher(false);
      const items = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
      const [a, b] = await settle(
        Promise.all([
          Promise.all(items.map((x) => fair.batcher.add(x))),
          Promise.all(items.map((x) => unfair.batcher.add(x))),
        ]),
      );
      expect(a).toEqual(items.map((x) => x * 10));
      expect(b).toEqual(a);
      // 1 and 2 start the two runners at once; 3–10 wait. The first runner to free up takes half of them, not all 8.
      expect(fair.batches.slice(0, 3)).toEqual([[1], [2], [3, 4, 5, 6]]);
      expect(Math.max(...fair.batches.map((batch) => batch.length))).toBe(4);
      expect(unfair.batches.slice(0, 3)).toEqual([[1], [2], [3, 4, 5, 6, 7, 8, 9, 10]]);
      expect(fair.maxInFlight()).toBe(2);
    });

    it('should fail only the item that breaks a batch while the other runner carries on', async () => {
      const { batcher, maxInFlight } = fairBatcher(true);
      const results = await settle(Promise.allSettled([1, 2, 3, -1, 5, 6, 7, 8].map((x) => batcher.add(x))));
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
        10,
        20,
        30,
        'poison',
        50,
        60,
        70,
        80,
      ]);
      expect(maxInFlight()).toBe(2);
    });

    it("should finish both runners' batches and everything queued on stop", async () => {
      const { batcher, batches } = fairBatcher(true);
      const pending = [1, 2, 3, 4, 5, 6].map((x) => batcher.add(x));
      // With no batch wait, 1 and 2 start the two runners as they arrive; the other four wait.
      expect(batcher.queued).toBe(4);
      await settle(batcher.stop());
      expect(batches.flat().sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6]);
      await expect(Promise.all(pending)).resolves.toEqual([10, 20, 30, 40, 50, 60]);
      await expect(batcher.add(7)).rejects.toMatchObject({ code: ErrorCode.ShuttingDown });
    });
  });

  it('should reject invalid options with the expected/got wording', () => {
    expect(() => new Batcher({ name: 'x', maxBatchSize: 0, maxWaitMs: 1, maxQueued: 1, run: async () => [] })).toThrow(
      'Expected `maxBatchSize` to be an integer ≥ 1, got 0',
    );
  });
});
