/**
 * The typed prompt settings (`prompt: PromptInput`) of classify, embedTexts and createClassifier, and the one place
 * they and the deprecated free-form `config: JSON` become the clip layer's prompt config.
 */
import { Field, InputType } from 'type-graphql';
import { badUserInput } from '../../errors.js';

@InputType('PromptInput', {
  description:
    'How a class name (or text) becomes the prompt the text model reads: one `template`, or several `templates` averaged.',
})
export class PromptInput {
  @Field(() => String, {
    nullable: true,
    description: 'A template with `{}` where the class name goes, e.g. "a photo of a {}.".',
  })
  template?: string | null;

  @Field(() => [String], {
    nullable: true,
    description:
      "Several templates (each with `{}`): each class's prompt embeddings are normalised, averaged and normalised again (OpenAI's prompt ensemble).",
  })
  templates?: string[] | null;
}

/** The deprecation notice of the free-form `config` fields. */
export const CONFIG_DEPRECATION = 'Use `prompt: PromptInput` ({ template } or { templates }), which is typed.';

/**
 * The prompt settings of an input as the free-form config JobService validates (`promptTemplate`,
 * `promptTemplates`): from `prompt`, or from the deprecated `config`; both at once is BAD_USER_INPUT.
 */
export function promptSettingsOf(prompt: PromptInput | null | undefined, config: unknown): unknown {
  if (prompt === undefined || prompt === null) return config ?? undefined;
  if (config !== undefined && config !== null)
    throw badUserInput('input: give prompt or config (deprecated), not both', 'prompt,config');
  return {
    ...(prompt.template === undefined || prompt.template === null ? {} : { promptTemplate: prompt.template }),
    ...(prompt.templates === undefined || prompt.templates === null ? {} : { promptTemplates: prompt.templates }),
  };
}
