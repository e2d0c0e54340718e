/**
 * Builds the GraphQL schema from the type-graphql classes: the one place type-graphql is configured.
 * The schema is static (services arrive through the context), so it is built once per process.
 */
import 'reflect-metadata';
import { printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { JobResolver } from './resolvers/JobResolver.js';
import { ModelResolver } from './resolvers/ModelResolver.js';
// After the others: type-graphql orders the schema by declaration, so the classifiers' additions come last.
import { ClassifierResolver } from './resolvers/ClassifierResolver.js';

let built: Promise<GraphQLSchema> | null = null;

/** The schema (memoised: type-graphql's metadata is global, one build serves every server in the process). */
export function buildGraphqlSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({
    resolvers: [JobResolver, ModelResolver, ClassifierResolver],
    // Input checks live in JobService (one place for GraphQL and REST), not in class-validator.
    validate: false,
    // type-graphql insists on a PubSub once there is a subscription, but ours use `subscribe`
    // (JobService.watch) rather than topics; this one only reports misuse.
    pubSub: {
      publish() {
        throw new Error('topic subscriptions are not used: subscribe through JobService.watch');
      },
      subscribe() {
        throw new Error('topic subscriptions are not used: subscribe through JobService.watch');
      },
    },
  }).catch((error: unknown) => {
    built = null;
    throw error;
  });
  return built;
}

/**
 * The SDL committed at schema/schema.graphql, in declaration order (type-graphql's, which is stable:
 * it follows the decorators), so it reads like the code and only changes when the schema does.
 */
export async function printGraphqlSchema(): Promise<string> {
  return `${printSchema(await buildGraphqlSchema())}\n`;
}
