/**
 * ONNX Runtime's CPU time, per thread (issue 12): a session's worker thread reports itself and the intra-op pool
 * threads ONNX Runtime started for it, and a run's CPU time shows up on them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxGraph } from '../../../../src/clip/runtime/onnx.js';
import { onnxCpuSeconds, onnxThreadCount, threadCpuSeconds } from '../../../../src/clip/runtime/threadCpu.js';
import { TINY_MODEL_DIR } from '../../../utils/testModel.js';

describe.skipIf(process.platform !== 'linux')('ONNX Runtime thread CPU time', () => {
  it("should count a session's worker thread and its pool threads, and the CPU time a run spends on them", async () => {
    const before = onnxThreadCount();
    const graph = await OnnxGraph.load(path.join(TINY_MODEL_DIR, 'onnx', 'vision_model.onnx'), {
      intraOpThreads: 2,
      graphOptimizationLevel: 'all',
    });
    try {
      // The worker thread plus one pool thread (ONNX Runtime also starts one thread of its own with a process's first session).
      expect(onnxThreadCount() - before).toBeGreaterThanOrEqual(2);
      const live = fs.readdirSync('/proc/self/task').map(Number);
      const cpuBefore = onnxCpuSeconds();
      const mainBefore = threadCpuSeconds(process.pid) ?? 0;
      await graph.run(
        { pixel_values: { kind: 'float', data: new Float32Array(256 * 3 * 224 * 224), dims: [256, 3, 224, 224] } },
        ['image_embeds'],
      );
      const spent = onnxCpuSeconds() - cpuBefore;
      const mainSpent = (threadCpuSeconds(process.pid) ?? 0) - mainBefore;
      console.log(
        `a batch of 256: ${spent.toFixed(2)} s on ONNX Runtime's threads, ${mainSpent.toFixed(2)} s on the main thread; ${live.length} threads`,
      );
      expect(spent).toBeGreaterThan(0.05);
      expect(spent).toBeGreaterThan(mainSpent);
    } finally {
      await graph.release();
    }
  });
});
