/**
 * The built-in model catalogue and the one function that turns a user's model string
 * (`CLIP_MODEL`, `CLIP_MODELS`, a job's `model`) into a {@link ModelSource}.
 *
 * Accepted forms, tried in this order:
 * 1. a catalogue name, case-insensitive, kebab or snake case (`clip-vit-base-patch32`, `CLIP_ViT_Base_Patch32`),
 *    optionally with `@revision`;
 * 2. a local directory: absolute (`/models/clip`), relative (`./clip`, `../clip`), home (`~/clip`), or any
 *    other string that names an existing directory relative to the working directory;
 * 3. a hub id `owner/name` or `owner/name@revision` (revision default `main`).
 *
 * Hub ids and revisions are validated strictly here because hub/fetchModel.ts puts them into URLs and cache paths.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AppError, ErrorCode } from '../errors.js';
import type { LayoutName } from './layouts/modelSpec.js';
import type { ModelSource, ScoringKind } from './types.js';

/** One built-in model. */
export interface CatalogueEntry {
  /** The short name, kebab case (`clip-vit-base-patch32`). */
  name: string;
  /** Other names that resolve to it: FES's names (`open-clip-vit-b32`), kebab case. */
  aliases: readonly string[];
  /** The hub repository (`owner/name`). */
  repo: string;
  /** Its file layout (for documentation: the layout is always detected from the files). */
  layout: LayoutName;
  /** Its tokenizer family (for documentation: the family is always chosen from the files). */
  tokenizerFamily: 'clip-bpe' | 'xlm-r' | 'siglip';
  scoring: ScoringKind;
  /** The joint embedding size. */
  embeddingSize: number;
  /**
   * The trained logit scale, `exp(logit_scale)` of the checkpoint, for when the model's files do not reveal it;
   * undefined where no published value is known (a softmax model then gets 100 with a warning, a SigLIP model
   * refuses to load until the per-model option gives it).
   */
  logitScale: number | undefined;
  /** A SigLIP model's trained `logit_bias`; undefined where no published value is known. */
  logitBias: number | undefined;
  description: string;
}

/** The catalogue name used when no model is configured. */
export const DEFAULT_MODEL_NAME = 'clip-vit-base-patch32';

/** The default hub revision. */
export const DEFAULT_REVISION = 'main';

// Sources of the scales below:
// - OpenAI CLIP: every released checkpoint's logit_scale is ln(100) (it hit the clamp at 100 during training; CLIP paper,
//   section 2.5: "clipped to prevent scaling the logits by more than 100"); HF's openai/clip-* configs' logit_scale_init_value
//   2.6592 is the initial value, and the exported combined graphs of Xenova/clip-* compute their logits with 100.
// - OpenCLIP: training clamps logit_scale at ln(100) (open_clip src/training/train.py, `clamp_(0, math.log(100))`), and
//   LAION's large runs end at that clamp; 100 unless a published value says otherwise.
// - SigLIP / SigLIP2: trained with a learnt scale and bias (SigLIP paper, init t' = log 10, b = −10); immich's files carry
//   only `init_logit_bias` (the initial −10), and we know no published trained pair for these checkpoints, so none is
//   listed: such a model refuses to load until its per-model option gives `logitScale` and `logitBias`.
//   (For reference: open_clip issue #746 gives ViT-SO400M-14-SigLIP-384/webli's trained logit_scale as 4.7215, i.e. ~112.3.)

/**
 * Built-in models. The hub layout of each was checked against immich's exporter (immich layout) or the repo's file
 * list (Hugging Face layout); every layout and tokenizer is still detected from the downloaded files.
 */
export const CATALOGUE: readonly CatalogueEntry[] = Object.freeze([
  {
    name: 'clip-vit-base-patch32',
    aliases: [],
    repo: 'Xenova/clip-vit-base-patch32',
    layout: 'hf-clip',
    tokenizerFamily: 'clip-bpe',
    scoring: 'softmax',
    embeddingSize: 512,
    logitScale: 100,
    logitBias: undefined,
    description: 'OpenAI CLIP ViT-B/32 (224 px, 512-d embeddings); the default: fastest on CPU.',
  },
  {
    name: 'clip-vit-base-patch16',
    aliases: [],
    repo: 'Xenova/clip-vit-base-patch16',
    layout: 'hf-clip',
    tokenizerFamily: 'clip-bpe',
    scoring: 'softmax',
    embeddingSize: 512,
    logitScale: 100,
    logitBias: undefined,
    description: 'OpenAI CLIP ViT-B/16 (224 px, 512-d embeddings); ~4.4x the image cost of ViT-B/32, more accurate.',
  },
  {
    name: 'clip-vit-large-patch14',
    aliases: [],
    repo: 'Xenova/clip-vit-large-patch14',
    layout: 'hf-clip',
    tokenizerFamily: 'clip-bpe',
    scoring: 'softmax',
    embeddingSize: 768,
    logitScale: 100,
    logitBias: undefined,
    description:
      "OpenAI CLIP ViT-L/14 (224 px, 768-d embeddings); the most accurate and much the slowest. FES's clip-vit-large-patch14.",
  },
  {
    name: 'xlm-roberta-base-vit-b-32',
    aliases: ['open-clip-vit-b32'],
    repo: 'immich-app/XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k',
    layout: 'immich',
    tokenizerFamily: 'xlm-r',
    scoring: 'softmax',
    embeddingSize: 512,
    logitScale: 100,
    logitBias: undefined,
    description: "OpenCLIP xlm-roberta-base-ViT-B-32 (laion5b_s13b_b90k): multilingual; FES's open-clip-vit-b32.",
  },
  {
    name: 'vit-b-32-openai',
    aliases: [],
    repo: 'immich-app/ViT-B-32__openai',
    layout: 'immich',
    tokenizerFamily: 'clip-bpe',
    scoring: 'softmax',
    embeddingSize: 512,
    logitScale: 100,
    logitBias: undefined,
    description: "OpenAI CLIP ViT-B/32 in immich's export (fixed batch 1).",
  },
  {
    name: 'vit-b-16-openai',
    aliases: [],
    repo: 'immich-app/ViT-B-16__openai',
    layout: 'immich',
    tokenizerFamily: 'clip-bpe',
    scoring: 'softmax',
    embeddingSize: 512,
    logitScale: 100,
    logitBias: undefined,
    description: "OpenAI CLIP ViT-B/16 in immich's export.",
  },
  {
    name: 'vit-l-14-openai',
    aliases: [],
    repo: 'immich-app/ViT-L-14__openai',
    layout: 'immich',
    tokenizerFamily: 'clip-bpe',
    scoring: 'softmax',
    embeddingSize: 768,
    logitScale: 100,
    logitBias: undefined,
    description: "OpenAI CLIP ViT-L/14 in immich's export (weights as ONNX external data).",
  },
  {
    name: 'vit-b-16-siglip',
    aliases: [],
    repo: 'immich-app/ViT-B-16-SigLIP__webli',
    layout: 'immich',
    tokenizerFamily: 'siglip',
    scoring: 'sigmoid',
    embeddingSize: 768,
    logitScale: undefined,
    logitBias: undefined,
    description: 'SigLIP ViT-B/16 (webli), sigmoid scoring; needs the per-model logitScale and logitBias options.',
  },
  {
    name: 'vit-b-16-siglip2',
    aliases: [],
    repo: 'immich-app/ViT-B-16-SigLIP2__webli',
    layout: 'immich',
    tokenizerFamily: 'siglip',
    scoring: 'sigmoid',
    embeddingSize: 768,
    logitScale: undefined,
    logitBias: undefined,
    description: 'SigLIP2 ViT-B/16 (webli), sigmoid scoring; needs the per-model logitScale and logitBias options.',
  },
  {
    name: 'siglip-base-patch16-224',
    aliases: [],
    repo: 'Xenova/siglip-base-patch16-224',
    layout: 'hf-siglip',
    tokenizerFamily: 'siglip',
    scoring: 'sigmoid',
    embeddingSize: 768,
    // Read at load from the export's combined onnx/model.onnx, which computes its logits with the trained pair.
    logitScale: undefined,
    logitBias: undefined,
    description:
      "SigLIP ViT-B/16 224 px in Hugging Face's layout (the export transformers.js loads), sigmoid scoring with the trained scale and bias read from its combined graph.",
  },
  {
    name: 'xlm-roberta-large-vit-b-16plus',
    aliases: ['m-clip-xlm-roberta-large-vit-b-16plus'],
    repo: 'immich-app/XLM-Roberta-Large-Vit-B-16Plus',
    layout: 'immich',
    tokenizerFamily: 'xlm-r',
    scoring: 'softmax',
    embeddingSize: 640,
    logitScale: 100,
    logitBias: undefined,
    description:
      'M-CLIP XLM-Roberta-Large-Vit-B-16Plus: multilingual text tower (input_ids + attention_mask) with OpenCLIP ViT-B-16-plus-240.',
  },
]);

/** `Clip_ViT_Base_Patch32` → `clip-vit-base-patch32`: the form model names are compared in. */
export function normaliseModelName(name: string): string {
  return name.trim().toLowerCase().replace(/_/g, '-');
}

/**
 * The catalogue entry for a short name (any case, kebab or snake) or for its hub repo id
 * (so `Xenova/clip-vit-base-patch32` also finds the known logit scale); undefined when unknown.
 */
export function findCatalogueEntry(nameOrRepo: string): CatalogueEntry | undefined {
  const key = normaliseModelName(nameOrRepo);
  return CATALOGUE.find(
    (entry) => entry.name === key || entry.aliases.includes(key) || normaliseModelName(entry.repo) === key,
  );
}

// One part of a hub id: what huggingface_hub's validate_repo_id accepts (word chars, '-', '.'; at most 96;
// starting and ending with a word char); '--' and '..' are refused separately.
const REPO_PART = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?$/;
// A branch, tag, commit sha or `refs/pr/N`. Slashes are allowed (the hub encodes them in URLs and cache paths), '..' and empty segments are not.
const REVISION = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;

/** True for `owner/name` ids that are safe to put into a URL path and a cache directory name. */
export function isValidRepoId(repo: string): boolean {
  const parts = repo.split('/');
  return (
    parts.length === 2 &&
    parts.every((part) => REPO_PART.test(part) && !part.includes('--') && !part.includes('..')) &&
    !repo.endsWith('.git')
  );
}

/** True for revisions (branch, tag, commit, `refs/pr/1`) that are safe in a URL and a cache path. */
export function isValidRevision(revision: string): boolean {
  return (
    revision.length <= 255 && REVISION.test(revision) && !revision.split('/').some((s) => s === '.' || s.includes('..'))
  );
}

/** Options of {@link resolveModelSource}. */
export interface ResolveModelSourceOptions {
  /** Base of relative paths; default `process.cwd()`. */
  cwd?: string;
  /** What `~` means; default `os.homedir()`. */
  homeDir?: string;
  /** The input field named in errors (e.g. `model`, `CLIP_MODEL`); default `model`. */
  field?: string;
}

const ACCEPTED_FORMS =
  `a catalogue name (${CATALOGUE.map((e) => e.name).join(', ')}), ` +
  'a local model directory (/abs/path, ./relative, ~/path), or a hub id owner/name[@revision]';

/**
 * Resolves a user's model string. Throws an AppError (BAD_USER_INPUT, with `field`) that names the accepted forms
 * when the string is none of them, and "no such directory" when it looks like a path that does not exist.
 * The local path returned is absolute; nothing is downloaded or read here beyond a `stat`.
 */
export function resolveModelSource(input: string, options: ResolveModelSourceOptions = {}): ModelSource {
  const field = options.field ?? 'model';
  const text = input.trim();
  if (text === '') {
    throw new AppError(ErrorCode.BadUserInput, `${field}: expected ${ACCEPTED_FORMS}, but got an empty string`, {
      field,
    });
  }

  const [base, revision] = splitRevision(text);
  const invalidRevision = (): AppError =>
    new AppError(
      ErrorCode.BadUserInput,
      `${field}: "${revision}" is not a valid revision: expected a branch, tag or commit of letters, digits, '-', '_', '.' or '/'`,
      { field },
    );
  const entry = findByShortName(base);
  if (entry !== undefined) {
    if (revision !== undefined && !isValidRevision(revision)) throw invalidRevision();
    return { kind: 'hub', repo: entry.repo, revision: revision ?? DEFAULT_REVISION };
  }

  const cwd = options.cwd ?? process.cwd();
  if (looksLikePath(text)) {
    const dir = expandPath(text, cwd, options.homeDir ?? os.homedir());
    const kind = statKind(dir);
    if (kind === 'directory') return { kind: 'local', path: dir };
    const why = kind === 'missing' ? 'no such directory' : 'not a directory';
    throw new AppError(ErrorCode.BadUserInput, `${field}: ${why}: ${dir} (from "${text}")`, { field });
  }
  // A bare relative path such as `models/clip` reads like a hub id; an existing directory wins, as in transformers.
  const relative = path.resolve(cwd, text);
  if (statKind(relative) === 'directory') return { kind: 'local', path: relative };

  if (base.includes('/')) {
    if (!isValidRepoId(base)) {
      throw new AppError(
        ErrorCode.BadUserInput,
        `${field}: "${base}" is not a valid hub id: expected owner/name with letters, digits, '-', '_' or '.' ` +
          `(no '--' or '..', at most 96 characters each)`,
        { field },
      );
    }
    if (revision !== undefined && !isValidRevision(revision)) throw invalidRevision();
    return { kind: 'hub', repo: base, revision: revision ?? DEFAULT_REVISION };
  }

  throw new AppError(ErrorCode.BadUserInput, `${field}: expected ${ACCEPTED_FORMS}, but got "${text}"`, { field });
}

/** The user-facing string for a source: `owner/name@rev` (without `@main`) or the local path. */
export function formatModelSource(source: ModelSource): string {
  switch (source.kind) {
    case 'local':
      return source.path;
    case 'hub':
      return source.revision === DEFAULT_REVISION ? source.repo : `${source.repo}@${source.revision}`;
  }
}

function findByShortName(name: string): CatalogueEntry | undefined {
  const key = normaliseModelName(name);
  return CATALOGUE.find((entry) => entry.name === key || entry.aliases.includes(key));
}

function splitRevision(text: string): [string, string | undefined] {
  const at = text.lastIndexOf('@');
  // '@' inside a path (`./a@b/c`) is not a revision marker; paths are checked before the revision matters.
  if (at <= 0) return [text, undefined];
  return [text.slice(0, at), text.slice(at + 1)];
}

function looksLikePath(text: string): boolean {
  return (
    path.isAbsolute(text) ||
    text === '.' ||
    text === '..' ||
    text === '~' ||
    /^(?:\.{1,2}|~)[/\\]/.test(text) ||
    /^[A-Za-z]:[/\\]/.test(text)
  );
}

function expandPath(text: string, cwd: string, homeDir: string): string {
  if (text === '~') return homeDir;
  if (/^~[/\\]/.test(text)) return path.join(homeDir, text.slice(2));
  return path.resolve(cwd, text);
}

function statKind(p: string): 'directory' | 'other' | 'missing' {
  try {
    return fs.statSync(p).isDirectory() ? 'directory' : 'other';
  } catch {
    return 'missing';
  }
}
