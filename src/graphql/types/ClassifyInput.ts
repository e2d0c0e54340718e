import { GraphQLJSON } from 'graphql-scalars';
import { Field, ID, InputType } from 'type-graphql';
import { badUserInput } from '../../errors.js';
import { ImageInputFields } from './ImageInput.js';
import { CONFIG_DEPRECATION, PromptInput, promptSettingsOf } from './PromptInput.js';

@InputType('ClassifyInput', {
  description:
    'A classification request: exactly one of `image`, `images` or `files`, and exactly one of `classes` or `classifier`.',
})
export class ClassifyInput extends ImageInputFields {
  @Field(() => [String], { nullable: true, description: 'The candidate classes (non-empty, distinct).' })
  classes?: string[] | null;

  @Field(() => ID, {
    nullable: true,
    description:
      'A stored classifier (createClassifier) or a preset (imagenet-1k, imagenet-1k-simple) instead of `classes`: its classes and prompt templates, embedded once; the job waits QUEUED while it builds.',
  })
  classifier?: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'A model name, catalogue name or hub id of a configured model; the default model when omitted.',
  })
  model?: string | null;

  @Field(() => PromptInput, {
    nullable: true,
    description: 'How class names become prompts; "a photo of a {}." by default.',
  })
  prompt?: PromptInput | null;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description: 'Prompt settings, e.g. { "promptTemplate": "a photo of a {}." } or { "promptTemplates": [...] }.',
    deprecationReason: CONFIG_DEPRECATION,
  })
  config?: unknown;
}

/** The classes or the classifier of an input (exactly one, else BAD_USER_INPUT) and its prompt settings. */
export function classificationOf(input: ClassifyInput): { classes: string[]; classifier?: string; config: unknown } {
  const hasClasses = input.classes !== undefined && input.classes !== null;
  const hasClassifier = input.classifier !== undefined && input.classifier !== null;
  if (hasClasses === hasClassifier) {
    throw badUserInput(
      `input: expected exactly one of classes or classifier, got ${hasClasses ? 'both' : 'neither'}`,
      hasClasses ? 'classes,classifier' : 'classes',
    );
  }
  const config = promptSettingsOf(input.prompt, input.config);
  return hasClassifier
    ? { classes: [], classifier: input.classifier as string, config }
    : { classes: input.classes as string[], config };
}
