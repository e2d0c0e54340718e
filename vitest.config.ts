import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Generates the tiny random-weight CLIP model once per run (test/.models/tiny).
    globalSetup: ['test/globalSetup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2 cores: ONNX Runtime sessions in parallel workers would just fight for them.
    maxWorkers: 2,
  },
});
