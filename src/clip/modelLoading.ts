/**
 * Loading one model from its files: the ONNX graphs (the text tower, the image-tower replicas, or one combined graph),
 * the towers read off the loaded sessions, and the tokenizer the text graph fits. Everything is released again when a
 * step fails, so a failed load leaves no session or worker behind.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from '../logger.js';
import type { ModelSpec } from './layouts/index.js';
import { OnnxGraph, type OnnxSessionOptions } from './runtime/onnx.js';
import { planVisionReplicasOf } from './runtime/replicas.js';
import { ImageTower, TextTower } from './runtime/towers.js';
import { loadTextTokenizer, type TextTokenizer } from './tokenizer.js';

export interface Graphs {
  text: OnnxGraph;
  /** Image-tower replicas; for a combined-only model, the combined graph itself (once). */
  visions: readonly OnnxGraph[];
  /** The combined graph when the towers came without it but it exists (a source of the trained scale). */
  combinedPath: string | undefined;
}

/** The graphs, tokenizer and towers of a model, before its scoring is known. */
export interface LoadedModel {
  spec: ModelSpec;
  graphs: Graphs;
  tokenizer: TextTokenizer;
  text: TextTower;
  visions: readonly ImageTower[];
}

export interface GraphLoadOptions {
  session: OnnxSessionOptions;
  /** See VISION_REPLICAS; undefined: decided by the graph (runtime/replicas.ts). */
  visionReplicas: number | undefined;
  logger: Logger;
  /** The model's name, for the log. */
  name: string;
}

/** Loads the sessions of `spec`'s graphs; the image-tower replicas share the text tower's threads. */
export async function loadGraphs(spec: ModelSpec, options: GraphLoadOptions): Promise<Graphs> {
  const { session } = options;
  const files = spec.graphs;
  if (files.kind === 'combined') {
    const combined = await OnnxGraph.load(files.combined, session);
    return { text: combined, visions: [combined], combinedPath: files.combined };
  }
  const plan = await planVisionReplicasOf(
    files.vision,
    options.visionReplicas,
    session.intraOpThreads,
    options.logger,
    options.name,
  );
  const visionSession = { ...session, intraOpThreads: plan.threadsEach };
  // All settle before anything is decided: a tower still loading in its worker when another failed would
  // outlive the model, and a process exiting under a busy worker aborts in native code.
  const loads = await Promise.allSettled([
    OnnxGraph.load(files.text, session),
    ...Array.from({ length: plan.replicas }, () => OnnxGraph.load(files.vision, visionSession)),
  ]);
  const failed = loads.find((load): load is PromiseRejectedResult => load.status === 'rejected');
  const loaded = loads.flatMap((load) => (load.status === 'fulfilled' ? [load.value] : []));
  if (failed) {
    await Promise.allSettled(loaded.map((graph) => graph.release()));
    throw failed.reason;
  }
  const [text, ...visions] = loaded;
  return { text: text!, visions, combinedPath: files.combined };
}

export async function releaseGraphs(graphs: Graphs): Promise<void> {
  const distinct = new Set([graphs.text, ...graphs.visions]);
  await Promise.allSettled([...distinct].map((graph) => graph.release()));
}

/** The graph files behind the sessions, with the external weights of graphs over 2 GB (`model.onnx_data`). */
export async function sessionBytesOf(graphs: Graphs): Promise<number> {
  const sizeOf = (file: string): Promise<number> =>
    stat(file).then(
      (s) => s.size,
      () => 0,
    );
  const sessions = [...new Set([graphs.text, ...graphs.visions])];
  const sizes = await Promise.all(
    sessions.map(async (graph) => (await sizeOf(graph.path)) + (await sizeOf(`${graph.path}_data`))),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

/** Towers over the loaded graphs (names, dtypes, fixed dims from the sessions), and the tokenizer the text graph fits. */
export async function describeTowers(spec: ModelSpec, graphs: Graphs): Promise<LoadedModel> {
  const crop = { height: spec.image.cropHeight, width: spec.image.cropWidth };
  const combined = graphs.text === graphs.visions[0];
  // A combined graph needs both inputs on every run: a blank image for text runs, a minimal prompt for image runs.
  let textForImages: TextTower | undefined;
  let minimalIds: readonly number[] = [];
  const also = spec.embeddingOutputs ?? { image: [], text: [] };
  const text = new TextTower(
    graphs.text,
    combined
      ? () => ({
          pixel_values: {
            kind: 'float',
            data: new Float32Array(3 * crop.height * crop.width),
            dims: [1, 3, crop.height, crop.width],
          },
        })
      : undefined,
    also.text,
  );
  const visions = graphs.visions.map(
    (graph) => new ImageTower(graph, crop, combined ? () => textForImages!.feeds([minimalIds]) : undefined, also.image),
  );
  const { contextLength, clean } = spec.text.resolve({
    fixedLength: text.fixedLength,
    takesAttentionMask: text.maskInput !== undefined,
  });
  const tokenizer = await loadTextTokenizer(spec.text.tokenizerDir, { contextLength, clean });
  text.setPadding(tokenizer.padId, spec.text.padToContext ? tokenizer.contextLength : undefined);
  textForImages = text;
  minimalIds = tokenizer.minimalIds;
  return { spec, graphs, tokenizer, text, visions };
}
