/**
 * ORT_EXECUTION_PROVIDERS (issue 12): the selection reaches the sessions the worker threads create, and a
 * provider the installed onnxruntime-node cannot use fails the load with an error that names it and why.
 * Only the CPU provider really runs on these machines (no GPU; the CUDA libraries are never downloaded here).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ExecutionProviderUnavailableError,
  howToInstall,
  INSTALL_CUDA_COMMAND,
} from '../../../../src/clip/runtime/executionProviders.js';
import { OnnxGraph, sessionOptionsFor } from '../../../../src/clip/runtime/onnx.js';
import { TINY_MODEL_DIR } from '../../../utils/testModel.js';

const VISION = path.join(TINY_MODEL_DIR, 'onnx', 'vision_model.onnx');
const BASE = { intraOpThreads: 1, graphOptimizationLevel: 'all' } as const;
const PIXELS = {
  pixel_values: {
    kind: 'float' as const,
    data: new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i)),
    dims: [1, 3, 224, 224],
  },
};

async function loadError(options: Parameters<typeof OnnxGraph.load>[1]): Promise<ExecutionProviderUnavailableError> {
  const error: unknown = await OnnxGraph.load(VISION, options).then(
    async (graph) => {
      await graph.release();
      return new Error('the graph loaded');
    },
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(ExecutionProviderUnavailableError);
  return error as ExecutionProviderUnavailableError;
}

const nativeDir = path.join(
  path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node')),
  '..',
  'bin',
  'napi-v6',
  process.platform,
  process.arch,
);
const cudaInstalled = fs.existsSync(path.join(nativeDir, 'libonnxruntime_providers_cuda.so'));

describe('execution providers', () => {
  it('should hand the providers, in their order, to the session options (cpu when unset)', () => {
    expect(sessionOptionsFor(BASE).executionProviders).toEqual(['cpu']);
    expect(sessionOptionsFor({ ...BASE, executionProviders: ['cuda', 'webgpu', 'cpu'] }).executionProviders).toEqual([
      'cuda',
      'webgpu',
      'cpu',
    ]);
  });

  it('should run a graph on the cpu provider when it is asked for by name', async () => {
    const graph = await OnnxGraph.load(VISION, { ...BASE, executionProviders: ['cpu'] });
    const out = await graph.run(PIXELS, ['image_embeds']);
    await graph.release();
    expect(out.image_embeds!.dims).toEqual([1, 16]);
  });

  it('should refuse a provider this onnxruntime-node binary was not built with, naming it', async () => {
    const provider = process.platform === 'darwin' ? 'dml' : 'coreml';
    const error = await loadError({ ...BASE, executionProviders: [provider, 'cpu'] });
    expect(error.provider).toBe(provider);
    expect(error.reason).toBe('not-in-binary');
    expect(error.detail).toMatch(/has only cpu/);
    expect(error.message).toContain(VISION);
  });

  it.skipIf(cudaInstalled)(
    'should say that the CUDA libraries are not installed (they were skipped by .npmrc) and how to get them',
    async () => {
      const error = await loadError({ ...BASE, executionProviders: ['cuda', 'cpu'] });
      expect(error.provider).toBe('cuda');
      expect(error.reason).toBe('not-installed');
      expect(error.detail).toContain(nativeDir);
      expect(howToInstall('cuda', error.reason)).toContain(INSTALL_CUDA_COMMAND);
      const tensorrt = await loadError({ ...BASE, executionProviders: ['tensorrt'] });
      expect([tensorrt.provider, tensorrt.reason]).toEqual(['tensorrt', 'not-installed']);
    },
  );

  it('should run on webgpu where an adapter exists, and otherwise name webgpu as the provider that failed', async () => {
    // webgpu is bundled in the Linux x64 binary, but needs a GPU adapter (Vulkan here); a headless CI machine has none.
    const loaded = await OnnxGraph.load(VISION, { ...BASE, executionProviders: ['webgpu', 'cpu'] }).catch(
      (error: unknown) => error,
    );
    if (loaded instanceof OnnxGraph) {
      const onCpu = await OnnxGraph.load(VISION, BASE);
      const [gpu, cpu] = [await loaded.run(PIXELS, ['image_embeds']), await onCpu.run(PIXELS, ['image_embeds'])];
      await Promise.all([loaded.release(), onCpu.release()]);
      console.log('webgpu: an adapter exists here; the graph ran on it');
      Array.from(cpu.image_embeds!.data).forEach((value, i) => expect(gpu.image_embeds!.data[i]).toBeCloseTo(value, 3));
      return;
    }
    console.log(`webgpu: no adapter here: ${(loaded as Error).message}`);
    expect(loaded).toBeInstanceOf(ExecutionProviderUnavailableError);
    const error = loaded as ExecutionProviderUnavailableError;
    expect([error.provider, error.reason]).toEqual(['webgpu', 'failed']);
    expect(error.detail).toMatch(/adapter/i);
  });
});
