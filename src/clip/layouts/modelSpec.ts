/**
 * The one model description every file layout produces (principle 10: the files drive behaviour). A layout module
 * (hfClip.ts, immich.ts) reads its directory and returns a {@link ModelSpec}; ClipModel builds everything from it.
 * What only a loaded ONNX session can tell (input and output names, dtypes, fixed or dynamic batch and length) is
 * read from the sessions by runtime/towers.ts, never assumed here.
 */
import type { TextClean } from '../text/index.js';
import type { Precision, PreprocessorConfig, ScoringKind } from '../types.js';
import type { LAYOUTS } from './index.js';

/** The file layouts the server loads: the names of the registry's layouts (index.ts). */
export type LayoutName = (typeof LAYOUTS)[number]['name'];

/** The text cleaning a tokenizer family applies before its tokenizer.json (open_clip's `clean`). */
export type TextCleanName = TextClean;

/** What the text side needs: where the tokenizer files are and how prompts are framed. */
export interface TextSpec {
  /** The directory holding `tokenizer.json` (and `tokenizer_config.json`, `special_tokens_map.json` when present). */
  tokenizerDir: string;
  /**
   * The context length and cleaning for the text graph actually loaded: a graph with a fixed sequence length
   * decides the length; an M-CLIP text graph (`input_ids` + `attention_mask`) ignores the root config, which
   * describes its image model.
   */
  resolve(graph: { fixedLength: number | undefined; takesAttentionMask: boolean }): {
    contextLength: number;
    clean: TextCleanName | undefined;
  };
  /**
   * Pad every prompt to the context length, as open_clip's tokenizers do. False only where padding provably cannot
   * change the embedding (Hugging Face CLIP: causal mask, pooled at the first end token), so batches run at their
   * longest real prompt.
   */
  padToContext: boolean;
}

/** Which graph files a model runs from. */
export type GraphFiles =
  | {
      kind: 'towers';
      vision: string;
      text: string;
      /** The combined graph as well, when present: a source of the trained scale. */ combined: string | undefined;
    }
  | { kind: 'combined'; combined: string };

/** A model directory, described. Paths are absolute. */
export interface ModelSpec {
  layout: LayoutName;
  dir: string;
  precision: Precision;
  /** Image preprocessing: size, mean, std, interpolation, resize mode, fill colour, crop. */
  image: PreprocessorConfig;
  text: TextSpec;
  graphs: GraphFiles;
  /** The embedding size the config declares (checked against the graphs' outputs at load); undefined when it says none. */
  embeddingSize: number | undefined;
  /** Which scoring the files declare: `sigmoid` for SigLIP (`init_logit_bias` / `model_type: siglip`), else `softmax`. */
  scoring: ScoringKind;
  /**
   * Embedding output names of this layout's towers beyond the common ones (`image_embeds`/`text_embeds`, `embedding`,
   * …): Hugging Face's SigLIP towers give theirs as `pooler_output`, which in a CLIP text tower would be the
   * unprojected state, so only a layout that knows it may name it.
   */
  embeddingOutputs?: { image: readonly string[]; text: readonly string[] } | undefined;
  /** The model's architecture name when the files give one (open_clip's model name, `_name_or_path`), for logs. */
  architecture: string | undefined;
}
