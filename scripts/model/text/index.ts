/**
 * @file The generator's tokenizer-file writers, one call per family: what an immich-layout export keeps in
 * `textual/` (`tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`; CLIP BPE also `vocab.json`
 * and `merges.txt`, as transformers' `save_pretrained` writes them).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TokenizerFamily } from '../../../src/clip/text/index.js';
import { CLIP_VOCAB_SIZE } from '../presets.js';
import { END_OF_TEXT, loadClipVocabulary, tokenizerFiles as clipTokenizerFiles } from '../tokenizerFiles.js';
import {
  bertFiles,
  nllbFiles,
  siglipGemmaFiles,
  siglipT5Files,
  xlmRobertaFiles,
  type FamilyTokenizerFiles,
} from './familyFiles.js';

/** What {@link writeTokenizerFiles} wrote: what the text tower must be sized and padded for. */
export interface WrittenTokenizer {
  family: TokenizerFamily;
  /** Ids the embedding table must hold (special tokens included). */
  vocabSize: number;
  padId: number;
  contextLength: number;
  /** The file names written into the directory. */
  files: string[];
}

export interface WriteTokenizerOptions {
  /** The text graph's sequence length L (written where the real files hold it, e.g. T5's `model_max_length`). */
  contextLength: number;
  /**
   * For `siglip`: SigLIP's T5 SentencePiece Unigram (`t5`, `timm/ViT-B-16-SigLIP`, 32k pieces on the real model)
   * or SigLIP2's Gemma BPE (`gemma`, `timm/ViT-B-16-SigLIP2`, 256k on the real model). Default `t5`.
   */
  siglipVocabulary?: 't5' | 'gemma' | undefined;
}

function clipFiles(contextLength: number): FamilyTokenizerFiles {
  const vocabulary = loadClipVocabulary();
  return {
    files: clipTokenizerFiles(vocabulary, contextLength),
    vocabSize: CLIP_VOCAB_SIZE,
    padId: vocabulary.tokens.indexOf(END_OF_TEXT),
  };
}

/** The files of one family, by name, without writing them. */
export function tokenizerFilesFor(family: TokenizerFamily, options: WriteTokenizerOptions): FamilyTokenizerFiles {
  const { contextLength } = options;
  if (!Number.isInteger(contextLength) || contextLength < 2)
    throw new TypeError(`expected contextLength to be an integer ≥ 2, got ${String(contextLength)}`);
  switch (family) {
    case 'clip-bpe':
      return clipFiles(contextLength);
    case 'xlm-r':
      return xlmRobertaFiles();
    case 'siglip':
      if (options.siglipVocabulary === 'gemma') return siglipGemmaFiles(contextLength);
      if (options.siglipVocabulary !== undefined && options.siglipVocabulary !== 't5') {
        throw new TypeError(`expected siglipVocabulary to be t5 or gemma, got ${String(options.siglipVocabulary)}`);
      }
      return siglipT5Files(contextLength);
    case 'nllb':
      return nllbFiles();
    case 'bert':
      return bertFiles(contextLength);
    default: {
      const unknown: never = family;
      throw new TypeError(`expected family to be clip-bpe, xlm-r, siglip, nllb or bert, got ${String(unknown)}`);
    }
  }
}

/** Writes one family's tokenizer files into `dir` (created if needed). Deterministic; no network. */
export async function writeTokenizerFiles(
  dir: string,
  family: TokenizerFamily,
  options: WriteTokenizerOptions,
): Promise<WrittenTokenizer> {
  const { files, vocabSize, padId } = tokenizerFilesFor(family, options);
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  return { family, vocabSize, padId, contextLength: options.contextLength, files: Object.keys(files) };
}
