/**
 * The job's GraphQL shapes and the one mapping from the domain Job (src/jobs/types.ts) to them.
 */
import { GraphQLDateTime } from 'graphql-scalars';
import { Arg, Ctx, Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { badUserInput, UnreachableCaseError } from '../../errors.js';
import type { Job, JobResult, JobStatus, JobTask } from '../../jobs/index.js';
import type { GraphqlContext } from '../context.js';
import { numberListBytes, stringBytes, stringListBytes } from '../responseBudget.js';
import { VectorScalar } from '../scalars/Vector.js';
import { JobStatusEnum, JobTaskEnum } from './enums.js';

/**
 * Cost estimates for the complexity limit (MAX_QUERY_COMPLEXITY): they make `jobs(first: 100)` with
 * full results too expensive (a response of 100 jobs × 64 images × 1000 floats) while a page of 20
 * with results, or any single job, stays well within the default 5000.
 */
const IMAGES_PER_RESULT_ESTIMATE = 8;
const PROBABILITIES_COST = 5;
/** A vector is a leaf, but up to a few thousand floats long: cost it like a probabilities list. */
const VECTOR_COST = PROBABILITIES_COST;
/**
 * A job's classes or texts: up to MAX_CLASSES_PER_JOB / MAX_TEXTS_PER_JOB strings, each up to thousands of
 * characters, where a scalar field costs 1. Costed as 50 strings: 100 jobs' texts pass the default limit, 20 fit.
 * Their real size is charged to MAX_RESPONSE_BYTES as they resolve (responseBudget.ts).
 */
const STRING_LIST_COST = 50;

@ObjectType('ClassScore', { description: 'One class and its probability.' })
export class ClassScoreObject {
  @Field(() => String)
  label: string;

  @Field(() => Float)
  probability: number;

  constructor(label: string, probability: number) {
    this.label = label;
    this.probability = probability;
  }
}

@ObjectType('ImageClassification', { description: 'The classification of one input image.' })
export class ImageClassificationObject {
  @Field(() => [Float], {
    description: "`probabilities[i]` belongs to the job's `classes[i]`; they sum to 1.",
    // A list as long as the job's classes (up to MAX_CLASSES_PER_JOB): costlier than a scalar.
    complexity: PROBABILITIES_COST,
  })
  probabilities(@Ctx() context: GraphqlContext): number[] {
    context.response.charge(numberListBytes(this.#probabilities.length), 'probabilities');
    return this.#probabilities;
  }

  readonly #probabilities: number[];
  readonly #labels: readonly string[];

  constructor(probabilities: number[], labels: readonly string[]) {
    this.#probabilities = probabilities;
    this.#labels = labels;
  }

  @Field(() => [ClassScoreObject], {
    description: 'The `k` most probable classes, most probable first (all of them when `k` exceeds their number).',
    complexity: ({ args, childComplexity }) => 1 + Math.max(1, Number(args.k) || 0) * Math.max(1, childComplexity),
  })
  top(
    @Arg('k', () => Int, { nullable: true, defaultValue: 5 }) k: number | null,
    @Ctx() context: GraphqlContext,
  ): ClassScoreObject[] {
    k ??= 5;
    if (k < 0) throw badUserInput(`k: expected a non-negative integer, got ${k}`, 'k');
    const top = this.#probabilities
      .map((probability, index) => new ClassScoreObject(this.#labels[index] ?? '', probability))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, k);
    let bytes = numberListBytes(top.length);
    for (const score of top) bytes += stringBytes(score.label);
    context.response.charge(bytes, 'top');
    return top;
  }

  @Field(() => [ClassScoreObject], {
    description:
      'The classes scoring at least `threshold`, most probable first: the multi-label answer (tags), most useful with sigmoid-scored (SigLIP) models, whose classes are scored each on its own.',
    complexity: ({ childComplexity }) => 1 + PROBABILITIES_COST * Math.max(1, childComplexity),
  })
  above(@Arg('threshold', () => Float) threshold: number, @Ctx() context: GraphqlContext): ClassScoreObject[] {
    if (!Number.isFinite(threshold)) throw badUserInput(`threshold: expected a number, got ${threshold}`, 'threshold');
    const above = this.#probabilities
      .map((probability, index) => new ClassScoreObject(this.#labels[index] ?? '', probability))
      .filter((score) => score.probability >= threshold)
      .sort((a, b) => b.probability - a.probability);
    let bytes = numberListBytes(above.length);
    for (const score of above) bytes += stringBytes(score.label);
    context.response.charge(bytes, 'above');
    return above;
  }
}

@ObjectType('ClassificationResult', { description: "A complete job's result." })
export class ClassificationResultObject {
  @Field(() => [ImageClassificationObject], {
    description: 'One per input image, in input order.',
    // The count is only known at run time (up to MAX_IMAGES_PER_JOB); cost a typical job's worth.
    complexity: ({ childComplexity }) => 1 + IMAGES_PER_RESULT_ESTIMATE * Math.max(1, childComplexity),
  })
  images: ImageClassificationObject[];

  constructor(images: ImageClassificationObject[]) {
    this.images = images;
  }
}

@ObjectType('EmbeddingResult', { description: "A complete embedding job's result." })
export class EmbeddingResultObject {
  @Field(() => Int, { description: "The length of every vector: the model's embedding size." })
  dimensions: number;

  @Field(() => [VectorScalar], {
    description:
      'One L2-normalised vector per input (image or text), in input order. Image and text vectors of one model share a space: their dot product is the cosine similarity CLIP ranks by.',
    complexity: () => 1 + IMAGES_PER_RESULT_ESTIMATE * VECTOR_COST,
  })
  vectors(@Ctx() context: GraphqlContext): number[][] {
    context.response.charge(this.#vectors.length * numberListBytes(this.dimensions), 'vectors');
    return this.#vectors;
  }

  readonly #vectors: number[][];

  constructor(vectors: number[][]) {
    this.#vectors = vectors;
    this.dimensions = vectors[0]?.length ?? 0;
  }
}

@ObjectType('JobError', { description: 'Why a job FAILED.' })
export class JobErrorObject {
  @Field(() => String, {
    description: 'An error code: INFERENCE_FAILED, MODEL_UNAVAILABLE, SHUTTING_DOWN, INTERNAL_SERVER_ERROR, …',
  })
  code: string;

  @Field(() => String)
  message: string;

  constructor(code: string, message: string) {
    this.code = code;
    this.message = message;
  }
}

@ObjectType('Job', {
  description:
    'A job: a classification, an image embedding or a text embedding (`task`). Kept (with its result) until `expiresAt`.',
})
export class JobObject {
  @Field(() => ID)
  id!: string;

  @Field(() => JobStatusEnum)
  status!: JobStatus;

  @Field(() => JobTaskEnum, {
    description: 'What the job computes; says whether `result` or `embeddings` is set once COMPLETE.',
  })
  task!: JobTask;

  @Field(() => String, { description: 'The resolved name of the model the job runs on.' })
  model!: string;

  @Field(() => ID, {
    nullable: true,
    description:
      'The stored classifier a CLASSIFICATION scores against (its classes are `classes`); null for inline classes.',
  })
  classifier!: string | null;

  @Field(() => [String], {
    description: 'The classes, in the order of every `probabilities` list (empty unless CLASSIFICATION).',
    complexity: STRING_LIST_COST,
  })
  classes(@Ctx() context: GraphqlContext): string[] {
    context.response.charge(stringListBytes(this.#classes), 'classes');
    return this.#classes;
  }

  @Field(() => [String], {
    description: 'The texts of a TEXT_EMBEDDING job, in the order of `embeddings.vectors` (empty otherwise).',
    complexity: STRING_LIST_COST,
  })
  texts(@Ctx() context: GraphqlContext): string[] {
    context.response.charge(stringListBytes(this.#texts), 'texts');
    return this.#texts;
  }

  #classes: string[] = [];
  #texts: string[] = [];

  @Field(() => Int, { description: 'How many images the job takes (0 for TEXT_EMBEDDING).' })
  imageCount!: number;

  @Field(() => GraphQLDateTime)
  createdAt!: Date;

  @Field(() => GraphQLDateTime, { nullable: true })
  startedAt!: Date | null;

  @Field(() => GraphQLDateTime, { nullable: true })
  finishedAt!: Date | null;

  @Field(() => GraphQLDateTime, { description: 'When the server forgets the job.' })
  expiresAt!: Date;

  @Field(() => JobErrorObject, { nullable: true, description: 'Set when FAILED.' })
  error!: JobErrorObject | null;

  @Field(() => ClassificationResultObject, {
    nullable: true,
    description: 'Set when a CLASSIFICATION job is COMPLETE (see `embeddings` for the other tasks).',
  })
  result!: ClassificationResultObject | null;

  @Field(() => EmbeddingResultObject, {
    nullable: true,
    description: 'Set when an IMAGE_EMBEDDING or TEXT_EMBEDDING job is COMPLETE.',
  })
  embeddings!: EmbeddingResultObject | null;

  /** The only mapping from the domain job to its GraphQL shape. */
  static from(job: Job): JobObject {
    const object = new JobObject();
    object.id = job.id;
    object.status = job.status;
    object.task = job.task;
    object.model = job.model;
    object.classifier = job.classifier ?? null;
    object.#classes = job.classes;
    object.#texts = job.texts;
    object.imageCount = job.imageCount;
    object.createdAt = job.createdAt;
    object.expiresAt = job.expiresAt;
    object.startedAt = null;
    object.finishedAt = null;
    object.error = null;
    object.result = null;
    object.embeddings = null;
    switch (job.status) {
      case 'queued':
        break;
      case 'running':
        object.startedAt = job.startedAt;
        break;
      case 'complete':
        object.startedAt = job.startedAt;
        object.finishedAt = job.finishedAt;
        object.setResult(job.result, job.classes);
        break;
      case 'failed':
        object.startedAt = job.startedAt;
        object.finishedAt = job.finishedAt;
        object.error = new JobErrorObject(job.error.code, job.error.message);
        break;
      case 'cancelled':
        object.startedAt = job.startedAt;
        object.finishedAt = job.finishedAt;
        break;
      default:
        throw new UnreachableCaseError(job);
    }
    return object;
  }

  /** Each task's result goes to its own field, so a selection only ever sees the shape it asked for. */
  private setResult(result: JobResult, classes: string[]): void {
    switch (result.task) {
      case 'classification':
        this.result = new ClassificationResultObject(
          result.images.map((image) => new ImageClassificationObject(image.probabilities, classes)),
        );
        break;
      case 'image-embedding':
      case 'text-embedding':
        this.embeddings = new EmbeddingResultObject(result.embeddings);
        break;
      default:
        throw new UnreachableCaseError(result);
    }
  }
}
