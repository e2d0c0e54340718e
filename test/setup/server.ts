/**
 * vitest globalSetup of the system tier: compiles the server its tests start as processes, once per run instead of
 * once per test file, and tells the test files so (buildServer in test/utils/processServer.ts).
 */
import type { TestProject } from 'vitest/node';
import { compileServer } from '../utils/serverBuild.js';

export default async function setup(project: TestProject): Promise<void> {
  await compileServer();
  project.provide('serverBuilt', true);
}
