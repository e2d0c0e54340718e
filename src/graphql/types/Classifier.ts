/**
 * A stored zero-shot classifier's GraphQL shape, its input and status enum, and the one mapping from the domain's
 * Classifier (src/classifiers/types.ts) to them: a classifier is shown as built for one model (its own; a preset's
 * for the model asked for, else the default model).
 */
import { GraphQLDateTime } from 'graphql-scalars';
import { Ctx, Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { buildOn, type Classifier, type ClassifierStatus } from '../../classifiers/index.js';
import type { GraphqlContext } from '../context.js';
import { stringListBytes } from '../responseBudget.js';
import { JobErrorObject } from './Job.js';
import { PromptInput } from './PromptInput.js';

export const ClassifierStatusEnum = {
  PENDING: 'pending',
  BUILDING: 'building',
  READY: 'ready',
  FAILED: 'failed',
} as const satisfies Record<string, ClassifierStatus>;

registerEnumType(ClassifierStatusEnum, {
  name: 'ClassifierStatus',
  description:
    "Where a classifier's weights for its model are: PENDING (a preset not yet used on that model: built on first use), BUILDING, READY or FAILED.",
});

/** A classifier's classes: up to MAX_CLASSIFIER_PROMPTS strings; costed like a job's. */
const STRING_LIST_COST = 50;

@InputType('CreateClassifierInput', { description: 'A zero-shot classifier to build once and classify with by id.' })
export class CreateClassifierInput {
  @Field(() => String, { nullable: true, description: 'A name to show; "<n> classes" when omitted.' })
  name?: string | null;

  @Field(() => [String], {
    description: 'The classes (non-empty, distinct); classes × templates up to MAX_CLASSIFIER_PROMPTS.',
  })
  classes!: string[];

  @Field(() => PromptInput, {
    nullable: true,
    description: 'How class names become prompts; "a photo of a {}." by default.',
  })
  prompt?: PromptInput | null;

  @Field(() => String, {
    nullable: true,
    description: 'The model it is built for and used on (a configured model); the default model when omitted.',
  })
  model?: string | null;
}

@ObjectType('Classifier', {
  description:
    "A stored zero-shot classifier: for each class, the text embeddings of every prompt template are normalised, averaged and normalised again (open_clip's build_zero_shot_classifier), once per model; `classify(input: { classifier })` then scores images against those weights without running the text model.",
})
export class ClassifierObject {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => Boolean, { description: 'A preset: usable on every model, built for each on first use; never deleted.' })
  preset!: boolean;

  @Field(() => String, {
    description: "The model this state is for: the classifier's own, or for a preset the default model.",
  })
  model!: string;

  @Field(() => ClassifierStatusEnum)
  status!: ClassifierStatus;

  @Field(() => Int, { description: 'Prompts embedded so far.' })
  builtPrompts!: number;

  @Field(() => Int, { description: 'classes × templates.' })
  totalPrompts!: number;

  @Field(() => Int, { description: 'How many classes it has.' })
  classCount!: number;

  @Field(() => JobErrorObject, { nullable: true, description: 'Why the build FAILED.' })
  error!: JobErrorObject | null;

  @Field(() => GraphQLDateTime)
  createdAt!: Date;

  #classes: string[] = [];
  #templates: string[] = [];

  @Field(() => [String], {
    description: "The classes, in the order of a job's `probabilities`.",
    complexity: STRING_LIST_COST,
  })
  classes(@Ctx() context: GraphqlContext): string[] {
    context.response.charge(stringListBytes(this.#classes), 'classes');
    return this.#classes;
  }

  @Field(() => [String], { description: 'The prompt templates, each with `{}` where the class name goes.' })
  templates(@Ctx() context: GraphqlContext): string[] {
    context.response.charge(stringListBytes(this.#templates), 'templates');
    return this.#templates;
  }

  static from(classifier: Classifier, model: string): ClassifierObject {
    const object = new ClassifierObject();
    const build = buildOn(classifier, model);
    object.id = classifier.id;
    object.name = classifier.name;
    object.preset = classifier.preset;
    object.model = model;
    object.status = build.status;
    object.builtPrompts = build.builtPrompts;
    object.totalPrompts = build.totalPrompts;
    object.classCount = classifier.classes.length;
    object.error = build.error === null ? null : new JobErrorObject(build.error.code, build.error.message);
    object.createdAt = classifier.createdAt;
    object.#classes = classifier.classes;
    object.#templates = classifier.templates;
    return object;
  }
}
