/**
 * A provider ORT_EXECUTION_PROVIDERS asks for that this machine's onnxruntime-node cannot use stops the start
 * (issue 12): the process prints one paragraph that names the provider and how to install it, and exits 1.
 * cuda is built into the Linux x64 binary but its libraries come from the install script .npmrc skips; coreml
 * is not in a Linux binary at all.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { INSTALL_CUDA_COMMAND } from '../../../src/clip/index.js';
import { buildServer, spawnServer, startProcessServer, type ProcessLogLine } from '../../utils/processServer.js';
import { TINY_MODEL_DIR } from '../../utils/testModel.js';

async function startFailure(env: Record<string, string>): Promise<{ code: number | null; paragraph: string }> {
  const server = spawnServer({ CLIP_MODEL: TINY_MODEL_DIR, ...env });
  const code = await server.exited;
  await new Promise((resolve) => setTimeout(resolve, 50));
  const fatal = server.logs.filter((line: ProcessLogLine) => line.level === 60);
  expect(fatal).toHaveLength(1);
  return { code, paragraph: fatal[0]!.msg ?? '' };
}

describe('ORT_EXECUTION_PROVIDERS at start', () => {
  beforeAll(async () => {
    await buildServer();
  }, 180_000);

  it.skipIf(process.platform !== 'linux' || process.arch !== 'x64')(
    'should stop with how to install the CUDA libraries when cuda is asked for and exit 1',
    async () => {
      const { code, paragraph } = await startFailure({ ORT_EXECUTION_PROVIDERS: 'cuda,cpu' });
      console.log(`cuda without its libraries:\n${paragraph}`);
      expect(code).toBe(1);
      expect(paragraph).toContain('asks for the cuda execution provider');
      expect(paragraph).toMatch(/its libraries are not installed|could not create a session with it/);
      expect(paragraph).toContain(INSTALL_CUDA_COMMAND);
      expect(paragraph).toContain('ORT_EXECUTION_PROVIDERS=cpu');
      expect(paragraph).not.toMatch(/\n\s+at /);
    },
    60_000,
  );

  it('should stop, naming the provider, when the binary was not built with it', async () => {
    const provider = process.platform === 'darwin' ? 'dml' : 'coreml';
    const { code, paragraph } = await startFailure({ ORT_EXECUTION_PROVIDERS: `${provider},cpu` });
    expect(code).toBe(1);
    expect(paragraph).toContain(
      `asks for the ${provider} execution provider, but the installed onnxruntime-node was not built with it`,
    );
  }, 60_000);

  it('should start, ready, on the cpu provider named explicitly', async () => {
    const server = await startProcessServer({ CLIP_MODEL: TINY_MODEL_DIR, ORT_EXECUTION_PROVIDERS: 'cpu' });
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 60_000);
});
