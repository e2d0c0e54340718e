/**
 * `npm run bench -- --redis`: the scale-out deployment against one in-memory process (issue 9), on the same model
 * (the vit-b-32 test model, fp32, image cache off, distinct images per job): a real redis-server on a free port
 * with 1 ROLE=api + 1 ROLE=worker over it, and a ROLE=all server without Redis, measured in one run, alternating
 * round by round (and which side goes first), reported as medians.
 *
 * Rows: throughput at 16 clients (1 image × 10 classes, completion by subscription) and the latency of a single job
 * at 1 client (p50). Targets: the Redis deployment's throughput ≥ 0.95 × memory's, and its p50 overhead ≤ 10 ms.
 * On one machine the API and the worker share its cores; the worker gets the same ONNX threads as ROLE=all, so the
 * model runs alike and the difference is what Redis, BullMQ and pub/sub add. Prints; asserts nothing.
 */
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { redisServerPath, startRedisServer } from '../redisServer.js';
import { CLASSES_10, type BenchImage } from './images.js';
import { cpuMs, runLoad, startServer, type BenchServer, type LoadResult } from './server.js';
import { median } from './stats.js';

export interface RedisBenchOptions {
  rounds: number;
  /** Jobs per throughput run (16 clients). */
  jobs: number;
  /** Jobs per latency run (1 client). */
  latencyJobs: number;
  nextImages: (count: number) => BenchImage[];
  log: (message: string) => void;
}

/** One side's medians. */
export interface RedisBenchSide {
  /** 16 clients × (1 image × 10 classes), images/s. */
  c16ImagesPerSecond: number;
  c16P50Ms: number;
  /** 1 client, one job at a time: p50 of submit → COMPLETE on the subscription, ms. */
  c1P50Ms: number;
  /** CPU time (all threads) per job in the 16-client runs: the server, or the API and the worker. */
  cpuMsPerJob: number;
}

export interface RedisRow {
  memory: RedisBenchSide;
  redis: RedisBenchSide & { apiCpuMsPerJob: number; workerCpuMsPerJob: number };
  /** Median of the rounds' throughput ratios, Redis ÷ memory (target ≥ 0.95). */
  ratio: number;
  ratios: number[];
  /** Median of the rounds' p50 differences, Redis − memory, ms (target ≤ 10). */
  overheadMs: number;
  overheads: number[];
  /**
   * Redis commands per job in the 16-client runs, by command (INFO commandstats: commands run by scripts count too),
   * most frequent first: what each job costs Redis, independent of how loaded the machine is.
   */
  redisCommandsPerJob: Record<string, number>;
  /** Bytes sent to Redis per job (INFO stats total_net_input_bytes). */
  redisInputBytesPerJob: number;
  /** The model directory's name. */
  model: string;
  ortThreads: number;
  rounds: number;
}

export const REDIS_TARGETS = { ratio: 0.95, overheadMs: 10 } as const;

/** Every command's call count and the bytes received so far, from INFO. */
async function redisCounters(client: Redis): Promise<{ calls: Map<string, number>; inputBytes: number }> {
  const calls = new Map<string, number>();
  for (const match of (await client.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    calls.set(match[1]!, Number(match[2]));
  const inputBytes = Number(/^total_net_input_bytes:(\d+)/m.exec(await client.info('stats'))?.[1] ?? NaN);
  return { calls, inputBytes };
}

interface Sample {
  c16: LoadResult;
  c1: LoadResult;
  cpuMsPerJob: number;
  apiCpuMsPerJob: number;
  workerCpuMsPerJob: number;
  /** Redis only: commands per job by command, and input bytes per job. */
  commands?: Map<string, number>;
  inputBytes?: number;
}

export async function benchRedisRow(root: string, modelDir: string, options: RedisBenchOptions): Promise<RedisRow> {
  if (redisServerPath() === null)
    throw new Error('--redis needs redis-server on the PATH (Debian: apt-get install redis-server)');
  // Both sides run the model on the same threads; on one machine the API takes its share of the cores besides.
  const ortThreads = os.availableParallelism();
  // The image cache is off so that reused benchmark images are really inferred every time.
  const env = {
    CLIP_MODEL: modelDir,
    CLIP_PRECISION: 'fp32',
    IMAGE_CACHE_SIZE: '0',
    MAX_QUEUED_JOBS: '10000',
    MAX_QUEUED_IMAGES: '100000',
    ORT_INTRA_OP_THREADS: String(ortThreads),
  };
  const redis = await startRedisServer();
  const probe = new Redis(redis.url);
  const started: BenchServer[] = [];
  const start = async (extra: Record<string, string>): Promise<BenchServer> => {
    const server = await startServer(root, { ...env, ...extra });
    started.push(server);
    return server;
  };
  try {
    options.log(
      `Redis row: redis-server on port ${redis.port}, ROLE=api + ROLE=worker over it, and ROLE=all in memory (ORT threads ${ortThreads} each)`,
    );
    const memory = await start({});
    const redisEnv = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'bench' };
    const worker = await start({ ...redisEnv, ROLE: 'worker' });
    const api = await start({ ...redisEnv, ROLE: 'api' });
    const job = () => ({ images: options.nextImages(1), classes: CLASSES_10 });

    const measure = async (target: BenchServer, workerPid: number | null): Promise<Sample> => {
      const workerCpu = workerPid === null ? 0 : cpuMs(workerPid);
      const countersBefore = workerPid === null ? null : await redisCounters(probe);
      const c16 = await runLoad(target, 16, options.jobs, job);
      const workerCpuMsPerJob = workerPid === null ? 0 : (cpuMs(workerPid) - workerCpu) / options.jobs;
      let redisCost: Pick<Sample, 'commands' | 'inputBytes'> = {};
      if (countersBefore !== null) {
        const after = await redisCounters(probe);
        // Less the two INFO calls of this probe.
        const perJob = [...after.calls].map(
          ([name, calls]) =>
            [name, (calls - (countersBefore.calls.get(name) ?? 0) - (name === 'info' ? 2 : 0)) / options.jobs] as const,
        );
        redisCost = {
          commands: new Map(perJob.filter(([, calls]) => calls > 0)),
          inputBytes: (after.inputBytes - countersBefore.inputBytes) / options.jobs,
        };
      }
      const c1 = await runLoad(target, 1, options.latencyJobs, job);
      return {
        c16,
        c1,
        cpuMsPerJob: c16.serverCpuMsPerJob + workerCpuMsPerJob,
        apiCpuMsPerJob: c16.serverCpuMsPerJob,
        workerCpuMsPerJob,
        ...redisCost,
      };
    };
    // Warm both paths (model, text cache for the 10 classes, connections) so first-run costs stay out of the medians.
    await runLoad(memory, 4, 8, job);
    await runLoad(api, 4, 8, job);

    const memorySamples: Sample[] = [];
    const redisSamples: Sample[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const redisFirst = round % 2 === 0;
      options.log(
        `Redis row, round ${round}/${options.rounds}: ${redisFirst ? 'Redis, then memory' : 'memory, then Redis'} (16 clients, then 1)`,
      );
      if (redisFirst) redisSamples.push(await measure(api, worker.pid));
      memorySamples.push(await measure(memory, null));
      if (!redisFirst) redisSamples.push(await measure(api, worker.pid));
    }
    const side = (samples: Sample[]): RedisBenchSide => ({
      c16ImagesPerSecond: median(samples.map((s) => s.c16.imagesPerSecond)),
      c16P50Ms: median(samples.map((s) => s.c16.p50Ms)),
      c1P50Ms: median(samples.map((s) => s.c1.p50Ms)),
      cpuMsPerJob: median(samples.map((s) => s.cpuMsPerJob)),
    });
    const ratios = redisSamples.map((s, i) => s.c16.imagesPerSecond / memorySamples[i]!.c16.imagesPerSecond);
    const overheads = redisSamples.map((s, i) => s.c1.p50Ms - memorySamples[i]!.c1.p50Ms);
    return {
      memory: side(memorySamples),
      redis: {
        ...side(redisSamples),
        apiCpuMsPerJob: median(redisSamples.map((s) => s.apiCpuMsPerJob)),
        workerCpuMsPerJob: median(redisSamples.map((s) => s.workerCpuMsPerJob)),
      },
      ratio: median(ratios),
      ratios,
      overheadMs: median(overheads),
      overheads,
      redisCommandsPerJob: Object.fromEntries(
        [...new Set(redisSamples.flatMap((s) => [...(s.commands?.keys() ?? [])]))]
          .map((name) => [name, median(redisSamples.map((s) => s.commands?.get(name) ?? 0))] as const)
          .sort((a, b) => b[1] - a[1]),
      ),
      redisInputBytesPerJob: median(redisSamples.map((s) => s.inputBytes ?? NaN)),
      model: path.basename(modelDir),
      ortThreads,
      rounds: options.rounds,
    };
  } finally {
    probe.disconnect();
    await Promise.allSettled(started.map((server) => server.stop()));
    await redis.dispose();
  }
}

export function formatRedisRow(row: RedisRow): string {
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const met = (ok: boolean) => (ok ? 'met' : 'not met');
  return [
    `| ${row.model}, fp32, 1 image × 10 classes (ORT threads ${row.ortThreads}) | 16 clients, images/s | 16 clients, p50 ms | 1 client, p50 ms | CPU ms/job |`,
    '| --- | ---: | ---: | ---: | ---: |',
    `| ROLE=all, in memory | ${f(row.memory.c16ImagesPerSecond)} | ${f(row.memory.c16P50Ms, 0)} | ${f(row.memory.c1P50Ms)} | ${f(row.memory.cpuMsPerJob, 0)} |`,
    `| ROLE=api + ROLE=worker on Redis | ${f(row.redis.c16ImagesPerSecond)} | ${f(row.redis.c16P50Ms, 0)} | ${f(row.redis.c1P50Ms)} | ${f(row.redis.cpuMsPerJob, 0)} (API ${f(row.redis.apiCpuMsPerJob, 0)} + worker ${f(row.redis.workerCpuMsPerJob, 0)}) |`,
    '',
    '| target | measured | wanted | met |',
    '| --- | ---: | --- | --- |',
    `| throughput, Redis ÷ memory, 16 clients (median of the rounds' ratios: ${row.ratios.map((r) => f(r, 2)).join(', ')}) | ${f(row.ratio, 2)} | ≥ ${REDIS_TARGETS.ratio} | ${met(row.ratio >= REDIS_TARGETS.ratio)} |`,
    `| single-job latency overhead, p50 at 1 client (rounds: ${row.overheads.map((o) => f(o, 1)).join(', ')} ms) | ${f(row.overheadMs, 1)} ms | ≤ ${REDIS_TARGETS.overheadMs} ms | ${met(row.overheadMs <= REDIS_TARGETS.overheadMs)} |`,
    '',
    `Redis per job (16 clients; commands run inside scripts count too): ${f(
      Object.values(row.redisCommandsPerJob).reduce((a, b) => a + b, 0),
      1,
    )} commands (${Object.entries(row.redisCommandsPerJob)
      .slice(0, 8)
      .map(([name, perJob]) => `${name} ${f(perJob, 1)}`)
      .join(', ')}), ${f(row.redisInputBytesPerJob / 1024, 1)} KiB sent.`,
  ].join('\n');
}
