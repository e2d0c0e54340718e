import { GraphQLJSON } from 'graphql-scalars';
import { Field, InputType } from 'type-graphql';
import { FilesField } from '../imageSources.js';
import type { UploadedFile } from '../uploads.js';

@InputType('ClassifyInput', { description: 'A classification request: exactly one of `image`, `images` or `files`.' })
export class ClassifyInput {
  @Field(() => String, { nullable: true, description: 'One image: a data URL or bare base64.' })
  image?: string | null;

  @Field(() => [String], { nullable: true, description: 'Several images (data URLs or bare base64), classified in order.' })
  images?: string[] | null;

  @FilesField()
  files?: UploadedFile[] | null;

  @Field(() => [String], { description: 'The candidate classes (non-empty, distinct).' })
  classes!: string[];

  @Field(() => String, { nullable: true, description: 'A model name, catalogue name or hub id of a configured model; the default model when omitted.' })
  model?: string | null;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description: 'Prompt settings, e.g. { "promptTemplate": "a photo of a {}." } or { "promptTemplates": [...] }.',
  })
  config?: unknown;
}
