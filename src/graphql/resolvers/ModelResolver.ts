import { Arg, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import { AppError, ErrorCode } from '../../errors.js';
import type { GraphqlContext } from '../context.js';
import type { ModelControl } from '../../jobs/index.js';
import { ModelObject } from '../types/Model.js';

@Resolver(() => ModelObject)
export class ModelResolver {
  @Query(() => [ModelObject], { description: 'Every configured model, loaded or not.' })
  models(@Ctx() context: GraphqlContext): ModelObject[] {
    return context.clip.models().map((info) => ModelObject.from(info, context.clip.defaultModelName));
  }

  @Mutation(() => ModelObject, {
    description:
      'Starts a model (idempotent) and returns it once that is under way (STARTING, LOADING or already READY); poll `models` for READY or FAILED. With API keys, needs a key from ADMIN_API_KEYS (else FORBIDDEN). NOT_FOUND for an unknown model.',
  })
  async startModel(@Arg('name', () => String) name: string, @Ctx() context: GraphqlContext): Promise<ModelObject> {
    const info = await authorised(context).start(name);
    return ModelObject.from(info, context.clip.defaultModelName);
  }

  @Mutation(() => ModelObject, {
    description:
      'Stops a model (idempotent) and returns it once that is under way (STOPPING while its running jobs finish, then STOPPED): its sessions, worker threads and caches are released, and its next job starts it again. With API keys, needs a key from ADMIN_API_KEYS (else FORBIDDEN). NOT_FOUND for an unknown model.',
  })
  async stopModel(@Arg('name', () => String) name: string, @Ctx() context: GraphqlContext): Promise<ModelObject> {
    const info = await authorised(context).stop(name);
    return ModelObject.from(info, context.clip.defaultModelName);
  }
}

function authorised(context: GraphqlContext): ModelControl {
  const control = context.modelControl;
  if (control === undefined) throw new AppError(ErrorCode.NotFound, 'Model control is not available on this server');
  control.authorize(context.caller);
  return control;
}
