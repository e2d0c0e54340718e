import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';
import { ortTelemetryFrom } from './src/config.js';
import { applyOrtTelemetry } from './src/clip/runtime/telemetry.js';
import { TierSequencer } from './test/setup/sequencer.js';

// Test files load ONNX Runtime in vitest's workers and in the processes they start, which inherit this environment.
applyOrtTelemetry(ortTelemetryFrom(process.env));

/**
 * The tests in four tiers, one vitest project each (docs/testing.md): `npm test` runs them all, `npm run test:unit`
 * (or `vitest run --project unit`) one. Each tier's globalSetup prepares only what its tests use.
 */
export default defineConfig({
  resolve: {
    // Node resolves `graphql` to its CommonJS build (the one type-graphql and graphql-ws require); Vite would
    // pick the `module` (.mjs) build for our imports, and two copies of graphql reject each other's schemas.
    alias: [{ find: /^graphql$/, replacement: createRequire(import.meta.url).resolve('graphql') }],
  },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2 cores: ONNX Runtime sessions in parallel workers would just fight for them.
    maxWorkers: 2,
    // `npm test` runs the four tiers in one pool of workers: the long system files first, the short unit ones last.
    sequence: { sequencer: TierSequencer },
    projects: [
      {
        extends: true,
        // Pure code: no child process, no socket, no generated model, no real-time wait; nothing to prepare. The files
        // of a worker share one module cache (half the tier's time goes to imports otherwise), so a unit test leaves
        // no global state behind: no module mocks, fake timers restored after each test.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], isolate: false },
      },
      {
        extends: true,
        // Servers and services in the test's own process on port 0, the generated models, the page's bundle.
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/setup/webBundle.ts', 'test/setup/models.ts'],
        },
      },
      {
        extends: true,
        // Child processes (the compiled server, redis-server, the cluster), the reliability suites. Their servers
        // serve the page too, so a missing bundle would add a warning to the logs some of them read.
        test: {
          name: 'system',
          include: ['test/system/**/*.test.ts'],
          globalSetup: ['test/setup/webBundle.ts', 'test/setup/models.ts', 'test/setup/server.ts'],
        },
      },
      {
        extends: true,
        // The page and GraphiQL in Chromium, against an in-process server on the tiny model.
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          globalSetup: ['test/setup/webBundle.ts', 'test/setup/tinyModel.ts'],
        },
      },
    ],
  },
});
