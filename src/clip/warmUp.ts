/**
 * The first run of both towers of a freshly loaded model: it compiles the graphs' kernels before a job waits on
 * them, and it is where the embedding size is learnt and the towers are checked to agree (and to match what an
 * immich config.json declares), so a mismatched export fails at load rather than on its first job.
 */
import { AppError, ErrorCode } from '../errors.js';
import type { LoadedModel } from './modelLoading.js';

/** The prompt of the text tower's first run. */
const WARM_UP_PROMPT = 'warm up';

/** Runs each tower once; resolves with the embedding size both give, MODEL_UNAVAILABLE when they disagree. */
export async function warmUp(loaded: LoadedModel): Promise<number> {
  const { spec, visions, text, tokenizer } = loaded;
  const vision = visions[0]!;
  const probe = (await vision.embed([new Float32Array(vision.pixelCount)]))[0]!;
  if (spec.embeddingSize !== undefined && spec.embeddingSize !== probe.length && spec.layout === 'immich') {
    throw new AppError(
      ErrorCode.ModelUnavailable,
      `${spec.dir}: config.json declares embed_dim ${spec.embeddingSize}, but ${spec.graphs.kind === 'towers' ? spec.graphs.vision : 'the graph'} gives ${probe.length}-d embeddings`,
    );
  }
  const warm = (await text.embed([tokenizer.encode(WARM_UP_PROMPT)]))[0]!;
  if (warm.length !== probe.length) {
    throw new AppError(
      ErrorCode.ModelUnavailable,
      `${spec.dir}: the text graph gives ${warm.length}-d embeddings, the image graph ${probe.length}-d`,
    );
  }
  return probe.length;
}
