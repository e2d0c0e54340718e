/**
 * Everything a user can get wrong in a submission, refused before the job exists: the task's inputs (classes,
 * texts, images) within the per-job limits, the model name and prompt settings (checked by the model side), and each
 * image taken in (base64 decoded or URL fetched) and its header inspected before any pixel is decoded. The API then
 * answers BAD_USER_INPUT naming the field at once, never with a job that fails later for bad input.
 */
import { AppError, ErrorCode, ImageUrlRefusal, badUserInput, UnreachableCaseError } from '../errors.js';
import type { ModelInfo, PromptConfig } from '../clip/index.js';
import { isImageUrl } from '../imageUrls/index.js';
import type { Caller } from './caller.js';
import type { JobClassifiers } from './classifierPort.js';
import type { JobTask, SubmitImages, SubmitJobInput } from './types.js';

/**
 * What the API side needs from the models: names, input checks. ClipService satisfies it, and so does the
 * ModelCatalogue of the api role (which loads no inference code).
 */
export interface JobClassifier {
  readonly defaultModelName: string;
  resolveModelName(name: string): string | undefined;
  models(): ModelInfo[];
  decodeImage(input: string, field: string): Buffer;
  inspectImage(bytes: Uint8Array, field: string): Promise<{ format: string; width: number; height: number }>;
  validatePrompt(config: unknown, field: string): PromptConfig;
  /** Images waiting in this process's batchers (the all role), counted against MAX_QUEUED_IMAGES too. */
  queuedImages?(): number;
}

/**
 * Fetches an image given as a URL, at submission (src/imageUrls/ builds the guarded one). Throws AppError
 * BAD_USER_INPUT naming `field`; rejects with the signal's reason once `signal` aborts.
 */
export type FetchImageUrl = (url: string, field: string, signal?: AbortSignal) => Promise<Uint8Array>;

/** The per-job bounds on a submission's inputs (each names its setting). */
export interface SubmissionLimits {
  /** Most images in one job (MAX_IMAGES_PER_JOB). */
  maxImagesPerJob: number;
  /** Most classes in one job (MAX_CLASSES_PER_JOB). */
  maxClassesPerJob: number;
  /** Longest class name in code points (MAX_CLASS_LENGTH). */
  maxClassLength: number;
  /** Most texts in one text-embedding job (MAX_TEXTS_PER_JOB). */
  maxTextsPerJob: number;
  /** Longest text to embed in code points (MAX_TEXT_LENGTH). */
  maxTextLength: number;
  /** Most prompts (classes × templates) in one job, each a text-model run (MAX_PROMPTS_PER_JOB). */
  maxPromptsPerJob: number;
  /** A job's images may not add up to more than this (MAX_PENDING_IMAGE_BYTES): its URL fetches stop past it. */
  maxPendingImageBytes: number;
}

/** A submission checked up to image decoding: what the job will be. */
export interface JobPlan {
  task: JobTask;
  model: string;
  classes: string[];
  texts: string[];
  prompt: PromptConfig;
  /** The images to decode, or null for a task without images. */
  images: SubmitImages | null;
  batched: boolean;
  /** The stored classifier a classification scores against. */
  classifier?: string;
}

export interface SubmissionValidatorOptions {
  clip: JobClassifier;
  limits: SubmissionLimits;
  /** Images given as http(s) URLs are fetched with it; without it they are refused. */
  fetchImageUrl: FetchImageUrl | undefined;
  /** Stored classifiers (see classifierPort.ts); without them a classification by `classifier` is refused. */
  classifiers: JobClassifiers | undefined;
}

export class SubmissionValidator {
  readonly #clip: JobClassifier;
  readonly #limits: SubmissionLimits;
  readonly #fetchImageUrl: FetchImageUrl | undefined;
  readonly #classifiers: JobClassifiers | undefined;

  constructor(options: SubmissionValidatorOptions) {
    this.#clip = options.clip;
    this.#limits = options.limits;
    this.#fetchImageUrl = options.fetchImageUrl;
    this.#classifiers = options.classifiers;
  }

  /** The plan of `caller`'s submission: on a stored classifier (see classifierPort.ts), or checked inline. */
  async planFor(caller: Caller, input: SubmitJobInput): Promise<JobPlan> {
    if ((input.task ?? 'classification') !== 'classification' || !('classifier' in input)) return this.plan(input);
    if (input.classifier === undefined) return this.plan(input);
    if (input.classes.length > 0)
      throw badUserInput('input: expected exactly one of classes or classifier, got both', 'classes,classifier');
    if (input.config !== undefined)
      throw badUserInput("config: a classifier's prompt templates are its own; give no prompt settings", 'config');
    if (this.#classifiers === undefined)
      throw badUserInput('classifier: this server keeps no classifiers; give classes instead', 'classifier');
    const { classes, model } = await this.#classifiers.plan(caller, input.classifier, input.model);
    return {
      task: 'classification',
      model,
      classes,
      texts: [],
      prompt: {},
      images: input,
      batched: input.batched,
      classifier: input.classifier,
    };
  }

  /** Checks everything about a submission that needs no image decoding, in the order errors are reported. */
  plan(input: SubmitJobInput): JobPlan {
    switch (input.task) {
      case 'text-embedding': {
        const texts = this.#validateTexts(input.texts, input.textsField, input.batched);
        const model = this.#resolveModel(input.model);
        const prompt = this.#clip.validatePrompt(input.config ?? {}, 'config');
        this.#checkPromptCount(texts.length, prompt, 'texts', input.textsField);
        return { task: 'text-embedding', model, classes: [], texts, prompt, images: null, batched: input.batched };
      }
      case 'image-embedding': {
        const model = this.#resolveModel(input.model);
        return {
          task: 'image-embedding',
          model,
          classes: [],
          texts: [],
          prompt: {},
          images: input,
          batched: input.batched,
        };
      }
      case undefined:
      case 'classification': {
        const classes = this.#validateClasses(input.classes);
        const model = this.#resolveModel(input.model);
        const prompt = this.#clip.validatePrompt(input.config ?? {}, 'config');
        this.#checkPromptCount(classes.length, prompt, 'classes', 'classes');
        return { task: 'classification', model, classes, texts: [], prompt, images: input, batched: input.batched };
      }
      default:
        throw new UnreachableCaseError(input);
    }
  }

  /**
   * The one place images are taken from a submission, for every image-taking task: list and count checks,
   * base64 decoding, URL fetching, header inspection (format, size) before any pixel is decoded. Fetched bytes
   * pass the same checks as bytes sent inline. `beforeDecoding` runs once the count is known (the early
   * overload check), so no time goes into images that would not be kept.
   */
  async takeImages(
    input: SubmitImages,
    beforeDecoding: (imageCount: number) => Promise<void>,
  ): Promise<{ images: Uint8Array[]; imageBytes: number }> {
    const imageFields = this.#validateImageList(input);
    await beforeDecoding(imageFields.length);
    const fieldOf = (index: number): string => (input.batched ? `${input.imagesField}[${index}]` : input.imagesField);
    const decoded = imageFields.map((image, index): Uint8Array | string => {
      const field = fieldOf(index);
      if (image instanceof Uint8Array) return image;
      if (typeof image !== 'string')
        throw badUserInput(
          `${field}: expected a data URL, base64 string or http(s) URL, got ${typeName(image)}`,
          field,
        );
      return isImageUrl(image) ? image : this.#clip.decodeImage(image, field);
    });
    const images = await this.#fetchUrls(decoded, fieldOf, input.imagesField);
    let imageBytes = 0;
    for (const [index, bytes] of images.entries()) {
      await this.#clip.inspectImage(bytes, fieldOf(index));
      imageBytes += bytes.byteLength;
    }
    return { images, imageBytes };
  }

  /**
   * Replaces every URL by its fetched bytes, fetching them side by side; the first refusal stops the others. A job
   * whose images add up to more than MAX_PENDING_IMAGE_BYTES could never be admitted: its fetches stop as soon as
   * they pass it, so one request cannot make the API hold images × MAX_IMAGE_BYTES.
   */
  async #fetchUrls(
    images: (Uint8Array | string)[],
    fieldOf: (index: number) => string,
    listField: string,
  ): Promise<Uint8Array[]> {
    const fetchImageUrl = this.#fetchImageUrl;
    const urls = images.flatMap((image, index) => (typeof image === 'string' ? [{ url: image, index }] : []));
    if (urls.length === 0) return images as Uint8Array[];
    if (fetchImageUrl === undefined) {
      const field = fieldOf(urls[0]?.index ?? 0);
      throw new AppError(
        ErrorCode.BadUserInput,
        `${field}: this server does not fetch image URLs; send the image itself`,
        { field, refusal: ImageUrlRefusal.Off },
      );
    }
    const stop = new AbortController();
    const fetched = [...images];
    const maxBytes = this.#limits.maxPendingImageBytes;
    let totalBytes = images.reduce((sum, image) => sum + (typeof image === 'string' ? 0 : image.byteLength), 0);
    const fetches = urls.map(async ({ url, index }) => {
      const bytes = await fetchImageUrl(url, fieldOf(index), stop.signal);
      totalBytes += bytes.byteLength;
      if (totalBytes > maxBytes) {
        throw badUserInput(
          `${listField}: the job's images add up to more than ${maxBytes} bytes (MAX_PENDING_IMAGE_BYTES); send fewer or smaller images`,
          listField,
        );
      }
      fetched[index] = bytes;
    });
    try {
      await Promise.all(fetches);
    } catch (error) {
      stop.abort();
      await Promise.allSettled(fetches);
      throw error;
    }
    return fetched as Uint8Array[];
  }

  /** One job may not make the text model encode more than MAX_PROMPTS_PER_JOB prompts (it would hold the model for minutes). */
  #checkPromptCount(inputs: number, prompt: PromptConfig, inputField: 'classes' | 'texts', inputsField: string): void {
    const templates = prompt.promptTemplates?.length ?? 1;
    const prompts = inputs * templates;
    if (prompts > this.#limits.maxPromptsPerJob) {
      const field = prompt.promptTemplates ? 'config.promptTemplates' : inputsField;
      throw badUserInput(
        `${field}: ${inputs} ${inputField} × ${templates} templates = ${prompts} prompts, over the limit of ${this.#limits.maxPromptsPerJob} (MAX_PROMPTS_PER_JOB)`,
        field,
      );
    }
  }

  #validateClasses(classes: unknown): string[] {
    const { maxClassesPerJob, maxClassLength } = this.#limits;
    if (!Array.isArray(classes))
      throw badUserInput(`classes: expected a list of class names, got ${typeName(classes)}`, 'classes');
    if (classes.length === 0) throw badUserInput('classes: expected at least one class, got none', 'classes');
    if (classes.length > maxClassesPerJob) {
      throw badUserInput(
        `classes: expected at most ${maxClassesPerJob} classes (MAX_CLASSES_PER_JOB), got ${classes.length}`,
        'classes',
      );
    }
    const seen = new Map<string, number>();
    return classes.map((label: unknown, index) => {
      const field = `classes[${index}]`;
      if (typeof label !== 'string') throw badUserInput(`${field}: expected a string, got ${typeName(label)}`, field);
      const key = label.trim();
      if (key === '')
        throw badUserInput(`${field}: expected a non-empty class name, got ${JSON.stringify(label)}`, field);
      checkLength(label, maxClassLength, field, 'MAX_CLASS_LENGTH');
      // Duplicates are refused: identical prompts split one probability between two entries, which is never what a caller means.
      const first = seen.get(key);
      if (first !== undefined)
        throw badUserInput(`${field}: duplicates classes[${first}] (${JSON.stringify(key.slice(0, 100))})`, field);
      seen.set(key, index);
      return label;
    });
  }

  #resolveModel(requested: string | undefined): string {
    const name = requested ?? this.#clip.defaultModelName;
    const resolved = typeof name === 'string' ? this.#clip.resolveModelName(name) : undefined;
    if (resolved === undefined) {
      const known = this.#clip.models().map((model) => model.name);
      throw badUserInput(
        `model: unknown model ${JSON.stringify(String(name).slice(0, 200))}; available: ${known.join(', ') || 'none'}`,
        'model',
      );
    }
    return resolved;
  }

  /** Texts to embed: a non-empty list of non-blank strings, bounded in count and length. Duplicates are fine (one vector each). */
  #validateTexts(texts: unknown, listField: string, batched: boolean): string[] {
    const { maxTextsPerJob, maxTextLength } = this.#limits;
    if (!Array.isArray(texts))
      throw badUserInput(`${listField}: expected a list of texts, got ${typeName(texts)}`, listField);
    if (texts.length === 0) throw badUserInput(`${listField}: expected at least one text, got none`, listField);
    if (texts.length > maxTextsPerJob) {
      throw badUserInput(
        `${listField}: expected at most ${maxTextsPerJob} texts (MAX_TEXTS_PER_JOB), got ${texts.length}`,
        listField,
      );
    }
    return texts.map((text: unknown, index) => {
      const field = batched ? `${listField}[${index}]` : listField;
      if (typeof text !== 'string') throw badUserInput(`${field}: expected a string, got ${typeName(text)}`, field);
      if (text.trim() === '')
        throw badUserInput(`${field}: expected a non-empty text, got ${JSON.stringify(text)}`, field);
      checkLength(text, maxTextLength, field, 'MAX_TEXT_LENGTH');
      return text;
    });
  }

  #validateImageList(input: SubmitImages): unknown[] {
    const field = input.imagesField;
    const images: unknown = input.images;
    if (!Array.isArray(images))
      throw badUserInput(`${field}: expected a list of images, got ${typeName(images)}`, field);
    if (images.length === 0) throw badUserInput(`${field}: expected at least one image, got none`, field);
    if (images.length > this.#limits.maxImagesPerJob) {
      throw badUserInput(
        `${field}: expected at most ${this.#limits.maxImagesPerJob} images (MAX_IMAGES_PER_JOB), got ${images.length}`,
        field,
      );
    }
    return images;
  }
}

/** Refuses `text` over `max` code points, naming `field` and the setting. */
function checkLength(text: string, max: number, field: string, setting: string): void {
  // .length counts UTF-16 units, an upper bound of code points: count exactly only when it matters.
  if (text.length <= max) return;
  const codePoints = countCodePoints(text);
  if (codePoints > max)
    throw badUserInput(`${field}: expected at most ${max} characters (${setting}), got ${codePoints}`, field);
}

function countCodePoints(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const nextUnit = text.charCodeAt(i + 1);
      if (nextUnit >= 0xdc00 && nextUnit <= 0xdfff) i += 1;
    }
    count += 1;
  }
  return count;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
