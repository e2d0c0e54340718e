import { GraphQLJSON } from 'graphql-scalars';
import { Field, InputType } from 'type-graphql';
import { badUserInput } from '../../errors.js';
import { ImageInputFields } from './ImageInput.js';
import { CONFIG_DEPRECATION, PromptInput } from './PromptInput.js';

const MODEL_DESCRIPTION =
  'A model name, catalogue name or hub id of a configured model; the default model when omitted.';

@InputType('EmbedImagesInput', {
  description: 'An image-embedding request: exactly one of `image`, `images` or `files`.',
})
export class EmbedImagesInput extends ImageInputFields {
  @Field(() => String, { nullable: true, description: MODEL_DESCRIPTION })
  model?: string | null;
}

@InputType('EmbedTextsInput', { description: 'A text-embedding request: exactly one of `text` or `texts`.' })
export class EmbedTextsInput {
  @Field(() => String, { nullable: true, description: 'One text.' })
  text?: string | null;

  @Field(() => [String], { nullable: true, description: 'Several texts, embedded in order (duplicates allowed).' })
  texts?: string[] | null;

  @Field(() => String, { nullable: true, description: MODEL_DESCRIPTION })
  model?: string | null;

  @Field(() => PromptInput, {
    nullable: true,
    description:
      'Templates applied to each text (several are averaged); none by default: each text is embedded verbatim.',
  })
  prompt?: PromptInput | null;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description:
      'Prompt settings as for classification, e.g. { "promptTemplate": "a photo of a {}." }; none by default: each text is embedded verbatim.',
    deprecationReason: CONFIG_DEPRECATION,
  })
  config?: unknown;
}

/** The texts of an input: exactly one of `text` or `texts`, else BAD_USER_INPUT. */
export function submittedTexts(input: EmbedTextsInput): { texts: string[]; textsField: string; batched: boolean } {
  const hasText = input.text !== undefined && input.text !== null;
  const hasTexts = input.texts !== undefined && input.texts !== null;
  if (hasText === hasTexts) {
    throw badUserInput(
      `input: expected exactly one of text or texts, got ${hasText ? 'both' : 'neither'}`,
      hasText ? 'text,texts' : 'text',
    );
  }
  return {
    texts: hasText ? [input.text as string] : (input.texts as string[]),
    textsField: hasText ? 'text' : 'texts',
    batched: hasTexts,
  };
}
