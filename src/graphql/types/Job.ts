/**
 * The job's GraphQL shapes and the one mapping from the domain Job (src/jobs/types.ts) to them.
 */
import { GraphQLDateTime } from 'graphql-scalars';
import { Arg, Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { badUserInput, UnreachableCaseError } from '../../errors.js';
import type { Job, JobStatus } from '../../jobs/types.js';
import { JobStatusEnum } from './enums.js';

/**
 * Cost estimates for the complexity limit (MAX_QUERY_COMPLEXITY): they make `jobs(first: 100)` with
 * full results too expensive (a response of 100 jobs × 64 images × 1000 floats) while a page of 20
 * with results, or any single job, stays well within the default 5000.
 */
const IMAGES_PER_RESULT_ESTIMATE = 8;
const PROBABILITIES_COST = 5;

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
  probabilities: number[];

  readonly #labels: readonly string[];

  constructor(probabilities: number[], labels: readonly string[]) {
    this.probabilities = probabilities;
    this.#labels = labels;
  }

  @Field(() => [ClassScoreObject], {
    description: 'The `k` most probable classes, most probable first (all of them when `k` exceeds their number).',
    complexity: ({ args, childComplexity }) => 1 + Math.max(1, Number(args.k) || 0) * Math.max(1, childComplexity),
  })
  top(@Arg('k', () => Int, { nullable: true, defaultValue: 5 }) k: number | null): ClassScoreObject[] {
    k ??= 5;
    if (k < 0) throw badUserInput(`k: expected a non-negative integer, got ${k}`, 'k');
    return this.probabilities
      .map((probability, index) => new ClassScoreObject(this.#labels[index] ?? '', probability))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, k);
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

@ObjectType('JobError', { description: 'Why a job FAILED.' })
export class JobErrorObject {
  @Field(() => String, { description: 'An error code: INFERENCE_FAILED, MODEL_UNAVAILABLE, SHUTTING_DOWN, INTERNAL_SERVER_ERROR, …' })
  code: string;

  @Field(() => String)
  message: string;

  constructor(code: string, message: string) {
    this.code = code;
    this.message = message;
  }
}

@ObjectType('Job', { description: 'A classification job. Kept (with its result) until `expiresAt`.' })
export class JobObject {
  @Field(() => ID)
  id!: string;

  @Field(() => JobStatusEnum)
  status!: JobStatus;

  @Field(() => String, { description: 'The resolved name of the model the job runs on.' })
  model!: string;

  @Field(() => [String], { description: 'The classes, in the order of every `probabilities` list.' })
  classes!: string[];

  @Field(() => Int, { description: 'How many images the job classifies.' })
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

  @Field(() => ClassificationResultObject, { nullable: true, description: 'Set when COMPLETE.' })
  result!: ClassificationResultObject | null;

  /** The only mapping from the domain job to its GraphQL shape. */
  static from(job: Job): JobObject {
    const object = new JobObject();
    object.id = job.id;
    object.status = job.status;
    object.model = job.model;
    object.classes = job.classes;
    object.imageCount = job.imageCount;
    object.createdAt = job.createdAt;
    object.expiresAt = job.expiresAt;
    object.startedAt = null;
    object.finishedAt = null;
    object.error = null;
    object.result = null;
    switch (job.status) {
      case 'queued':
        break;
      case 'running':
        object.startedAt = job.startedAt;
        break;
      case 'complete':
        object.startedAt = job.startedAt;
        object.finishedAt = job.finishedAt;
        object.result = new ClassificationResultObject(
          job.result.images.map((image) => new ImageClassificationObject(image.probabilities, job.classes)),
        );
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
}
