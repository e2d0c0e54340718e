/**
 * @file The contract of the text room: what every tokenizer family gives the model code. Declared once here;
 * `index.ts` re-exports it, and each family module implements it.
 */

/**
 * How a text becomes ids, picked from a model's tokenizer files (never from its name):
 * - `clip-bpe`: OpenAI's CLIP byte-level BPE, `<|startoftext|> … <|endoftext|>`, lower-cased (OpenAI and most OpenCLIP models).
 * - `xlm-r`: a SentencePiece Unigram with `<s> … </s>` framing (OpenCLIP `xlm-roberta-*` towers, M-CLIP).
 * - `siglip`: a SentencePiece tokenizer that adds only an end token (SigLIP's T5 Unigram, SigLIP2's Gemma BPE).
 * - `nllb`: NLLB's SentencePiece BPE, `<language code> … </s>` (immich's `nllb-clip-*` exports; the code the files were
 *   saved with, `eng_Latn` by default, as open_clip uses it when no language is set).
 * - `bert`: a WordPiece tokenizer, `[CLS] … [SEP]` (M-CLIP's `LABSE-Vit-L-14`).
 */
export type TokenizerFamily = 'clip-bpe' | 'xlm-r' | 'siglip' | 'nllb' | 'bert';

/** open_clip's `text_cfg.tokenizer_kwargs.clean` (`get_clean_fn` in `open_clip/tokenizer.py`). */
export type TextClean = 'whitespace' | 'lower' | 'canonicalize';

/** Every family's tokenizer, as the model code uses it. */
export interface TextTokenizer {
  readonly family: TokenizerFamily;
  /** The text graph's sequence length L; encode() never returns more ids. */
  readonly contextLength: number;
  /** The id a padded position holds (the graph may build its attention mask from ids != padId, so it matters). */
  readonly padId: number;
  /** The shortest valid sequence (the family's special tokens only), for warm-up and probe runs. */
  readonly minimalIds: readonly number[];
  /** Ids of the cleaned text with the family's special tokens, truncated to contextLength keeping the end token last; NOT padded. */
  encode(text: string): number[];
}

/** Options of {@link TextTokenizer} loaders. */
export interface TextTokenizerOptions {
  /** The text graph's sequence length L (open_clip's `text_cfg.context_length`; 77 when absent, 64 on SigLIP). */
  contextLength: number;
  /**
   * For HF-tokenizer families (`xlm-r`, `siglip`); CLIP BPE always cleans as OpenAI's simple_tokenizer.
   * Default: what open_clip defaults to — `whitespace` (HFTokenizer's default) for `xlm-r`, `canonicalize` for
   * `siglip` (every open_clip SigLIP config sets it, and open_clip's SigLipTokenizer always applies it).
   */
  clean?: TextClean | undefined;
}

export const TEXT_CLEANS: readonly TextClean[] = ['whitespace', 'lower', 'canonicalize'];
