/**
 * ClipService set-up shared by the unit tests that run it in-process on the generated models: offline hub,
 * one ONNX thread, small batches; and deterministic noise images, distinct per seed.
 */
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll } from 'vitest';
import type { ClipService, ClipServiceOptions } from '../../src/clip/index.js';
import { silentLogger } from '../../src/logger.js';
import { TINY_MODEL_DIR } from './testModel.js';

export const TEST_IMAGE_LIMITS = { maxBytes: 5_000_000, maxPixels: 40_000_000 };

export interface TestServiceOverrides {
  defaultModel?: string;
  extraModels?: ClipServiceOptions['extraModels'];
  inference?: Partial<ClipServiceOptions['inference']>;
  caches?: ClipServiceOptions['caches'];
}

/** Options for a ClipService on `defaultModel` (the tiny model unless given), caches on unless given. */
export function testServiceOptions(overrides: TestServiceOverrides = {}): ClipServiceOptions {
  return {
    defaultModel: overrides.defaultModel ?? TINY_MODEL_DIR,
    extraModels: overrides.extraModels ?? [],
    precision: 'fp32',
    hub: {
      cacheDir: path.join(os.tmpdir(), 'clip-test-cache'),
      endpoint: 'http://127.0.0.1:9',
      offline: true,
      progress: false,
    },
    inference: {
      maxBatchSize: 32,
      maxBatchWaitMs: 5,
      maxTextBatchSize: 64,
      maxQueuedImages: 1000,
      intraOpThreads: 1,
      graphOptimizationLevel: 'all',
      allowSpinning: false,
      executionProviders: ['cpu'],
      ortTelemetry: false,
      preprocessConcurrency: 4,
      preprocessWorkers: 0,
      exactResizeMaxPixels: 400_000,
      ...overrides.inference,
    },
    caches: overrides.caches ?? { textEmbeddings: 1000, imageEmbeddings: 1000 },
    imageLimits: TEST_IMAGE_LIMITS,
    logger: silentLogger(),
    idleStopSeconds: 0,
  };
}

export interface NoiseImageOptions {
  /** @default 96 */
  width?: number;
  /** @default 64 */
  height?: number;
  /** @default 'png' */
  format?: 'png' | 'jpeg';
}

/** A distinct, deterministic RGB image of random pixels per seed. */
export async function noiseImage(
  seed: number,
  { width = 96, height = 64, format = 'png' }: NoiseImageOptions = {},
): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let s = seed * 2654435761 + 1;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  const image = sharp(data, { raw: { width, height, channels: 3 } });
  return (format === 'jpeg' ? image.jpeg({ quality: 90 }) : image.png()).toBuffer();
}

/**
 * `started(service)` starts a ClipService and remembers it; every one is stopped after the enclosing suite
 * (call at the top of a file or inside a `describe`).
 */
export function serviceStarter(): (service: ClipService) => Promise<ClipService> {
  const services: ClipService[] = [];
  afterAll(async () => {
    await Promise.all(services.splice(0).map((s) => s.stop()));
  });
  return async (service) => {
    services.push(service);
    await service.start();
    return service;
  };
}
