import { Ctx, Query, Resolver } from 'type-graphql';
import type { GraphqlContext } from '../context.js';
import { ModelObject } from '../types/Model.js';

@Resolver(() => ModelObject)
export class ModelResolver {
  @Query(() => [ModelObject], { description: 'Every configured model, loaded or not.' })
  models(@Ctx() context: GraphqlContext): ModelObject[] {
    return context.clip.models().map((info) => ModelObject.from(info, context.clip.defaultModelName));
  }
}
