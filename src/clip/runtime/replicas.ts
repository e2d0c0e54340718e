/**
 * How many copies of a model's image tower run side by side, and with how many ONNX Runtime threads each.
 *
 * The rule when VISION_REPLICAS is not set (measured; README, "Fixed-batch immich model"): a graph whose batch is fixed
 * at 1 (immich's exports) runs two single-image runs in flight with half the threads each. ONNX Runtime splits one
 * image's operators across its threads with a barrier after each, so a second thread buys far less than a second
 * core: on 2 cores a batch-1 ViT-B/32 run costs ~100 ms of CPU on one thread and ~125 ms on two, and a thread taken
 * by image decoding stalls its partner at every barrier. Two independent single-threaded runs keep both cores on
 * useful work. A dynamic-batch graph already fills its threads with a batch, so it keeps one copy with all of them.
 */
import type { Logger } from '../../logger.js';
import { declaredInputs } from './onnxHeader.js';
import { fixedDim, type ValueInfo } from './onnx.js';
import { findPixelInput, type ImageTower } from './towers.js';

export interface VisionPlan {
  replicas: number;
  threadsEach: number;
  /** Why, for the log. */
  reason: string;
}

/**
 * Batches a fixed-batch replica holds at once: the one it runs and the next, already in its worker's queue, so it starts
 * the next image the moment one ends instead of waiting for a busy event loop to hand it over. (Its worker interleaves
 * the items of the two, never running two at a time.)
 */
export const FIXED_BATCH_BATCHES_PER_REPLICA = 2;

/** Copies of a fixed-batch image tower when the setting leaves it to the runtime. */
const FIXED_BATCH_RUNS_IN_FLIGHT = 2;

/**
 * `requested` is VISION_REPLICAS (undefined: decide by the graph); `inputs` are what the image graph declares
 * (onnxHeader.ts reads them before any session exists, since a session's thread count is fixed at creation).
 */
export function planVisionReplicas(
  requested: number | undefined,
  intraOpThreads: number,
  inputs: readonly ValueInfo[],
): VisionPlan {
  const split = (replicas: number, reason: string): VisionPlan => ({
    replicas,
    threadsEach: Math.max(1, Math.floor(intraOpThreads / replicas)),
    reason,
  });
  if (requested !== undefined) return split(requested, 'VISION_REPLICAS');
  const pixels = findPixelInput(inputs);
  if (pixels === undefined) return split(1, 'no image input known ahead of loading: one copy on every thread');
  if (fixedDim(pixels, 0) !== 1) return split(1, 'dynamic batch: one copy runs whole batches on every thread');
  if (intraOpThreads < FIXED_BATCH_RUNS_IN_FLIGHT)
    return split(1, `fixed batch of 1, but only ${intraOpThreads} thread`);
  return split(
    FIXED_BATCH_RUNS_IN_FLIGHT,
    `fixed batch of 1: ${FIXED_BATCH_RUNS_IN_FLIGHT} runs in flight with ${Math.floor(intraOpThreads / FIXED_BATCH_RUNS_IN_FLIGHT)} thread(s) each`,
  );
}

/**
 * The plan for the image graph at `visionPath`, made from the inputs the file declares before any session exists
 * (the replicas share the threads, and a session's thread count is fixed at creation); logged with its reason.
 */
export async function planVisionReplicasOf(
  visionPath: string,
  requested: number | undefined,
  intraOpThreads: number,
  logger: Logger,
  model: string,
): Promise<VisionPlan> {
  const inputs =
    requested === undefined
      ? await declaredInputs(visionPath).catch((error: unknown) => {
          // ONNX Runtime has the last word on the file: if it loads it, one copy on every thread is always right.
          logger.warn(
            { model, err: error },
            'could not read the image graph inputs ahead of loading; running one copy of it',
          );
          return [];
        })
      : [];
  const plan = planVisionReplicas(requested, intraOpThreads, inputs);
  logger.info(
    { model, visionReplicas: plan.replicas, threadsEach: plan.threadsEach, reason: plan.reason },
    'image tower replicas',
  );
  return plan;
}

/** The image-tower replicas of one model; each run goes to the least busy one. */
export class VisionReplicas {
  readonly #towers: readonly ImageTower[];
  /** Batches each replica has in flight (the batcher bounds them, so the loads stay even). */
  readonly #loads: number[];

  constructor(towers: readonly ImageTower[]) {
    if (towers.length === 0) throw new RangeError('Expected at least one image tower');
    this.#towers = towers;
    this.#loads = towers.map(() => 0);
  }

  get count(): number {
    return this.#towers.length;
  }

  /** Whether the graph fixes its batch (it runs a gathered batch item by item). */
  get fixedBatch(): boolean {
    return this.#towers[0]!.fixedBatch !== undefined;
  }

  /** See ImageTower.embed. */
  async embed(
    pixels: readonly Float32Array[],
    onEach?: (index: number, embedding: Float32Array) => void,
  ): Promise<Float32Array[]> {
    const index = this.#loads.indexOf(Math.min(...this.#loads));
    this.#loads[index]!++;
    try {
      return await this.#towers[index]!.embed(pixels, onEach);
    } finally {
      this.#loads[index]!--;
    }
  }
}
