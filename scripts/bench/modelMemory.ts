/**
 * `npm run bench -- --only model-memory`: what stopping a model gives back. One server process holds the fp32
 * ViT-B/32-shaped test model as its only (lazy) model, one image-tower copy; the model is started and stopped
 * through the REST routes `cycles` times, and the process's resident memory (VmRSS) is read after each start and
 * each stop. Targets: the first stop returns >= 70 % of the weight bytes the sessions held (Model.sessionBytes);
 * RSS after the last start is within 5 % of RSS after the first. Prints numbers; asserts nothing.
 */
import fs from 'node:fs';
import { startServer } from './server.js';

export interface ModelMemoryResult {
  cycles: number;
  /** The allocator setting the server ran with (MALLOC_MMAP_THRESHOLD_), or null for glibc's default. */
  mallocMmapThreshold: number | null;
  weightBytes: number;
  rssBeforeStartMiB: number;
  rssAfterStartMiB: number[];
  rssAfterStopMiB: number[];
  /** RSS after the first start minus RSS after the first stop, over the weight bytes. */
  returnedShare: number;
  /** RSS after the last start over RSS after the first start, minus 1. */
  lastVersusFirstStart: number;
}

export interface ModelMemoryOptions {
  cycles: number;
  mallocMmapThreshold: number | null;
  log: (line: string) => void;
}

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

async function untilModelStatus(url: string, model: string, wanted: string): Promise<void> {
  for (;;) {
    const body = (await (await fetch(`${url}/api/models/${model}/status`)).json()) as { status: string };
    if (body.status === wanted) return;
    if (body.status === 'failed') throw new Error(`the model failed to start`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function control(url: string, model: string, change: 'start' | 'stop', wanted: string): Promise<void> {
  const answer = await fetch(`${url}/api/models/${model}/${change}`, { method: 'POST' });
  if (answer.status !== 200) throw new Error(`${change} answered ${answer.status}: ${await answer.text()}`);
  await untilModelStatus(url, model, wanted);
}

export async function benchModelMemory(
  root: string,
  modelDir: string,
  options: ModelMemoryOptions,
): Promise<ModelMemoryResult> {
  const model = modelDir.split('/').filter(Boolean).at(-1)!;
  const env: Record<string, string> = {
    CLIP_MODEL: `${modelDir};load=lazy`,
    CLIP_PRECISION: 'fp32',
    VISION_REPLICAS: '1',
    ORT_INTRA_OP_THREADS: '1',
  };
  if (options.mallocMmapThreshold !== null) env.MALLOC_MMAP_THRESHOLD_ = String(options.mallocMmapThreshold);
  const server = await startServer(root, env);
  try {
    const rssBeforeStartMiB = rssMiB(server.pid);
    const rssAfterStartMiB: number[] = [];
    const rssAfterStopMiB: number[] = [];
    let weightBytes = 0;
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      await control(server.url, model, 'start', 'running');
      rssAfterStartMiB.push(rssMiB(server.pid));
      if (cycle === 1) {
        const answer = (await (
          await fetch(`${server.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: '{ models { sessionBytes } }' }),
          })
        ).json()) as { data: { models: { sessionBytes: number }[] } };
        weightBytes = answer.data.models[0]!.sessionBytes;
      }
      await control(server.url, model, 'stop', 'stopped');
      rssAfterStopMiB.push(rssMiB(server.pid));
      options.log(
        `cycle ${cycle}: RSS ${rssAfterStartMiB.at(-1)!.toFixed(0)} MiB started, ${rssAfterStopMiB.at(-1)!.toFixed(0)} MiB stopped`,
      );
    }
    const returnedShare = ((rssAfterStartMiB[0]! - rssAfterStopMiB[0]!) * 2 ** 20) / weightBytes;
    const lastVersusFirstStart = rssAfterStartMiB.at(-1)! / rssAfterStartMiB[0]! - 1;
    return {
      cycles: options.cycles,
      mallocMmapThreshold: options.mallocMmapThreshold,
      weightBytes,
      rssBeforeStartMiB,
      rssAfterStartMiB,
      rssAfterStopMiB,
      returnedShare,
      lastVersusFirstStart,
    };
  } finally {
    await server.stop();
  }
}

export function formatModelMemory(r: ModelMemoryResult): string {
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
  return [
    `Model start/stop memory, fp32 ViT-B/32-shaped model, ${r.cycles} cycles, MALLOC_MMAP_THRESHOLD_=${r.mallocMmapThreshold ?? 'glibc default'}`,
    `  weight bytes held by the sessions: ${mib(r.weightBytes)} MiB`,
    `  RSS before the first start: ${r.rssBeforeStartMiB.toFixed(0)} MiB`,
    `  RSS after each start (MiB): ${r.rssAfterStartMiB.map((v) => v.toFixed(0)).join(', ')}`,
    `  RSS after each stop (MiB):  ${r.rssAfterStopMiB.map((v) => v.toFixed(0)).join(', ')}`,
    `  first stop returned ${(r.returnedShare * 100).toFixed(0)} % of the weight bytes (target >= 70 %)`,
    `  RSS after start ${r.cycles} vs start 1: ${(r.lastVersusFirstStart * 100).toFixed(1)} % (target within 5 %)`,
  ].join('\n');
}
