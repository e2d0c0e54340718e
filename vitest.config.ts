import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';
import { ortTelemetryFrom } from './src/config.js';
import { applyOrtTelemetry } from './src/clip/runtime/telemetry.js';

// Test files load ONNX Runtime in vitest's workers and in the processes they start, which inherit this environment.
applyOrtTelemetry(ortTelemetryFrom(process.env));

export default defineConfig({
  resolve: {
    // Node resolves `graphql` to its CommonJS build (the one type-graphql and graphql-ws require); Vite would
    // pick the `module` (.mjs) build for our imports, and two copies of graphql reject each other's schemas.
    alias: [{ find: /^graphql$/, replacement: createRequire(import.meta.url).resolve('graphql') }],
  },
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
