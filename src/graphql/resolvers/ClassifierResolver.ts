/**
 * Stored zero-shot classifiers: createClassifier, classifier / classifiers, deleteClassifier and the
 * classifierUpdated subscription. Resolvers only translate between GraphQL and ClassifierService.
 */
import { Arg, Ctx, ID, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { Classifier, ClassifierService } from '../../classifiers/index.js';
import { AppError, ErrorCode } from '../../errors.js';
import type { GraphqlContext } from '../context.js';
import { ClassifierObject, CreateClassifierInput } from '../types/Classifier.js';
import { promptSettingsOf } from '../types/PromptInput.js';

const MODEL_ARG = {
  nullable: true,
  description:
    "For a preset: the model whose build to show (the default model when omitted); a classifier's own otherwise.",
} as const;

@Resolver(() => ClassifierObject)
export class ClassifierResolver {
  @Mutation(() => ClassifierObject, {
    description:
      'Stores a classifier and returns it at once (BUILDING); its weights are built in the background (follow classifierUpdated), then READY or FAILED. BAD_USER_INPUT for bad input (MAX_CLASSIFIER_PROMPTS), OVERLOADED past MAX_CLASSIFIERS.',
  })
  async createClassifier(
    @Arg('input', () => CreateClassifierInput) input: CreateClassifierInput,
    @Ctx() context: GraphqlContext,
  ): Promise<ClassifierObject> {
    const service = classifiersOf(context);
    const created = await service.create(context.caller, {
      name: input.name ?? undefined,
      classes: input.classes,
      prompt: promptSettingsOf(input.prompt, undefined),
      model: input.model ?? undefined,
    });
    return ClassifierObject.from(created, service.viewModel(created));
  }

  @Query(() => ClassifierObject, {
    nullable: true,
    description: 'A classifier by id (a preset, or one made with this API key); null when unknown.',
  })
  async classifier(
    @Arg('id', () => ID) id: string,
    @Arg('model', () => String, MODEL_ARG) model: string | null | undefined,
    @Ctx() context: GraphqlContext,
  ): Promise<ClassifierObject | null> {
    const service = classifiersOf(context);
    const found = await service.get(context.caller, id);
    return found === undefined ? null : ClassifierObject.from(found, viewModel(service, found, model));
  }

  @Query(() => [ClassifierObject], {
    description: 'The presets and the classifiers of the calling API key (every classifier for an admin key).',
  })
  async classifiers(
    @Arg('model', () => String, MODEL_ARG) model: string | null | undefined,
    @Ctx() context: GraphqlContext,
  ): Promise<ClassifierObject[]> {
    const service = classifiersOf(context);
    return (await service.list(context.caller)).map((found) =>
      ClassifierObject.from(found, viewModel(service, found, model)),
    );
  }

  @Mutation(() => ClassifierObject, {
    nullable: true,
    description:
      'Deletes a classifier and its stored weights (a build under way stops; jobs still queued on it fail NOT_FOUND); null when unknown. BAD_USER_INPUT for a preset.',
  })
  async deleteClassifier(
    @Arg('id', () => ID) id: string,
    @Ctx() context: GraphqlContext,
  ): Promise<ClassifierObject | null> {
    const service = classifiersOf(context);
    const deleted = await service.delete(context.caller, id);
    return deleted === undefined ? null : ClassifierObject.from(deleted, service.viewModel(deleted));
  }

  @Subscription(() => ClassifierObject, {
    description:
      "The classifier's current state at once, then its build's progress; completes after READY or FAILED (or when deleted). NOT_FOUND for an unknown classifier.",
    subscribe: ({ args, context }) => {
      const ctx = context as GraphqlContext;
      return classifiersOf(ctx).watch(ctx.caller, String((args as { id: unknown }).id));
    },
  })
  classifierUpdated(
    @Root() classifier: Classifier,
    @Arg('id', () => ID) _id: string,
    @Ctx() context: GraphqlContext,
  ): ClassifierObject {
    context.response.reset();
    const service = classifiersOf(context);
    return ClassifierObject.from(classifier, service.viewModel(classifier));
  }
}

function classifiersOf(context: GraphqlContext): ClassifierService {
  if (context.classifiers === undefined)
    throw new AppError(ErrorCode.NotFound, 'This server keeps no classifiers (the api and worker roles do not yet)');
  return context.classifiers;
}

function viewModel(service: ClassifierService, classifier: Classifier, requested: string | null | undefined): string {
  return classifier.preset && typeof requested === 'string' ? requested : service.viewModel(classifier);
}
