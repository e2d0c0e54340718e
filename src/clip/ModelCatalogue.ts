/**
 * The configured models by name, and the checks of a request's inputs, without any inference code: what an API
 * needs to accept or refuse a job. ClipService builds one and delegates to it; ROLE=api builds one instead of a
 * ClipService, so an API process opens no ONNX session and starts no preprocessing thread.
 */
import path from 'node:path';
import { parseModelOptions, type LoadPolicy } from '../config.js';
import { findCatalogueEntry, normaliseModelName, resolveModelSource } from './catalogue.js';
import { decodeImageString, inspectImage } from './image/imageInput.js';
import { parsePromptConfig } from './scoring.js';
import type { ImageInfo, ImageLimits, ModelInfo, Precision, PromptConfig } from './types.js';

export interface ModelCatalogueOptions {
  /** Source of the default model: catalogue name, hub id `owner/name[@rev]`, or a local directory. */
  defaultModel: string;
  /** More models, by name. */
  extraModels: readonly { name: string; source: string }[];
  precision: Precision;
  imageLimits: ImageLimits;
}

/** One configured model: its canonical name and the operator's source string (which may be a server path). */
export interface ConfiguredModel {
  readonly name: string;
  readonly source: string;
}

export class ModelCatalogue {
  readonly defaultModelName: string;
  readonly #options: ModelCatalogueOptions;
  /** The operator's source string per model, the default first (never shown to clients). */
  readonly #sources = new Map<string, string>();

  /** Throws TypeError when two models share a name (in any case, kebab or snake). */
  constructor(options: ModelCatalogueOptions) {
    this.#options = options;
    this.defaultModelName = defaultNameOf(options.defaultModel);
    const specs: ConfiguredModel[] = [{ name: this.defaultModelName, source: options.defaultModel }];
    for (const extra of options.extraModels) {
      if (specs.some((s) => normaliseModelName(s.name) === normaliseModelName(extra.name))) {
        throw new TypeError(`Expected distinct model names, got ${extra.name} twice`);
      }
      specs.push(extra);
    }
    for (const spec of specs) this.#sources.set(spec.name, spec.source);
  }

  /** Every configured model, the default first. */
  configured(): ConfiguredModel[] {
    return [...this.#sources].map(([name, source]) => ({ name, source }));
  }

  /** The canonical name of a configured model: exact, case-insensitive, kebab or snake case, or its source / hub id. */
  resolveModelName(name: string): string | undefined {
    if (this.#sources.has(name)) return name;
    const wanted = normaliseModelName(name);
    for (const [key, raw] of this.#sources) {
      const source = sourceOf(raw);
      if (normaliseModelName(key) === wanted || normaliseModelName(source) === wanted) return key;
    }
    // Then through the catalogue: FES's `open-clip-vit-b32` finds the model configured as `xlm-roberta-base-ViT-B-32`,
    // or under any name whose source is that hub repo.
    const catalogue = findCatalogueEntry(name);
    if (catalogue === undefined) return undefined;
    for (const [key, raw] of this.#sources) {
      const source = sourceOf(raw);
      const configured = findCatalogueEntry(source) ?? findCatalogueEntry(key);
      if (configured === catalogue) return key;
    }
    return undefined;
  }

  /** Every configured model as it is before any load: what a process that loads none shows. */
  models(): ModelInfo[] {
    return this.configured().map((model) => this.infoBeforeLoad(model));
  }

  /** A configured model's info before it is loaded: its public source, no metadata yet. */
  infoBeforeLoad(model: ConfiguredModel): ModelInfo {
    return {
      name: model.name,
      source: publicSourceOf(model.source),
      precision: this.#options.precision,
      status: 'uninitialized',
      embeddingSize: null,
      contextLength: null,
      imageSize: null,
      logitScale: null,
      scoring: null,
      logitBias: null,
      layout: null,
      sessionBytes: null,
      error: null,
    };
  }

  /** A model's `load` option; an unparsable source is eager (loading it at start reports why). */
  loadPolicyOf(model: ConfiguredModel): LoadPolicy {
    try {
      return parseModelOptions(model.source).options.load ?? 'eager';
    } catch {
      return 'eager';
    }
  }

  /** An image given as a base64 or data-URL string, decoded; BAD_USER_INPUT naming `field`. */
  decodeImage(input: string, field: string): Buffer {
    return decodeImageString(input, field, this.#options.imageLimits.maxBytes);
  }

  /** The image's format and size from its header, within the limits; BAD_USER_INPUT naming `field`. */
  inspectImage(bytes: Uint8Array, field: string): Promise<ImageInfo> {
    return inspectImage(bytes, field, this.#options.imageLimits);
  }

  /** A request's prompt configuration, checked; BAD_USER_INPUT naming `field`. */
  validatePrompt(config: unknown, field: string): PromptConfig {
    return parsePromptConfig(config, field);
  }
}

/** How a source is shown to clients: hub ids and catalogue names as they are, a local directory as `local:<folder>`. */
export function publicSourceOf(raw: string): string {
  const source = sourceOf(raw);
  try {
    const resolved = resolveModelSource(source);
    return resolved.kind === 'local' ? `local:${path.basename(resolved.path)}` : source;
  } catch {
    return withoutServerPaths(source);
  }
}

/**
 * Load errors name the file at fault, but clients must not learn the server's directory layout:
 * an absolute path keeps only its last two segments (`…/onnx/text_model.onnx`). The full message is logged.
 */
export function withoutServerPaths(message: string): string {
  // The look-behind leaves URLs (`https://host/…`) and hub ids (`owner/name`) alone.
  return message.replace(/(?<![\w:/.~-])(?:\/[^\s/'"`:,;()]+)*\/([^\s/'"`:,;()]+\/[^\s/'"`:,;()]+)/g, '…/$1');
}

/** A catalogue model is called by its short name, a local directory by its folder name, a hub model by its id. */
function defaultNameOf(raw: string): string {
  const source = sourceOf(raw);
  const catalogue = findCatalogueEntry(source);
  if (catalogue) return catalogue.name;
  try {
    const resolved = resolveModelSource(source);
    if (resolved.kind === 'local') return path.basename(resolved.path);
  } catch {
    // An unusable source keeps its own string as its name; loading it reports why.
  }
  return source;
}

/** The source without its per-model options (`source;logitScale=…`); an unparsable string is kept whole (loading reports it). */
function sourceOf(raw: string): string {
  try {
    return parseModelOptions(raw).source;
  } catch {
    return raw.split(';')[0]!.trim();
  }
}
