import { GraphQLJSON } from 'graphql-scalars';
import { Field, InputType } from 'type-graphql';
import { ImageInputFields } from './ImageInput.js';

@InputType('ClassifyInput', { description: 'A classification request: exactly one of `image`, `images` or `files`.' })
export class ClassifyInput extends ImageInputFields {
  @Field(() => [String], { description: 'The candidate classes (non-empty, distinct).' })
  classes!: string[];

  @Field(() => String, {
    nullable: true,
    description: 'A model name, catalogue name or hub id of a configured model; the default model when omitted.',
  })
  model?: string | null;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description: 'Prompt settings, e.g. { "promptTemplate": "a photo of a {}." } or { "promptTemplates": [...] }.',
  })
  config?: unknown;
}
