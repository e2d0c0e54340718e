/**
 * The Apollo Server for GraphQL over HTTP: CSRF prevention on (Apollo's default), introspection per
 * configuration, no landing page (GraphiQL is served separately), stack traces never sent, one error
 * exit (formatError.ts), the token limit while parsing (the size is checked before: documentLimits.ts), a document store bounded by
 * the memory its documents keep, operation limits, and the drain plugin so `stop()` lets in-flight requests finish.
 */
import type { Server as HttpServer } from 'node:http';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { GraphQLError, OperationTypeNode, type GraphQLSchema } from 'graphql';
import { httpStatusOf } from '../errors.js';
import type { Logger } from '../logger.js';
import type { GraphqlContext } from './context.js';
import { createDocumentStore } from './documentCache.js';
import type { DocumentLimits } from './documentLimits.js';
import { formatGraphqlError, graphqlErrorBody } from './formatError.js';
import { complexityError, limitRules, type OperationLimits } from './limits.js';

export interface ApolloOptions {
  schema: GraphQLSchema;
  httpServer: HttpServer;
  logger: Logger;
  limits: OperationLimits;
  /** Token bound of a document (MAX_DOCUMENT_TOKENS); its size is checked before Apollo (documentSizeMiddleware). */
  documentLimits: DocumentLimits;
  /** Parsed and validated documents kept for reuse, by the memory they keep (see documentCache.ts); 0: none. */
  documentCacheBytes: number;
  introspection: boolean;
  /** How long `stop()` waits for in-flight HTTP requests before closing their connections, in ms (see HTTP_STOP_GRACE_MS). */
  stopGracePeriodMs: number;
}

/**
 * Refuses subscriptions (websocket only) and operations over the cost limit once variables are known
 * (validation rules cannot see them).
 */
function complexityPlugin(schema: GraphQLSchema, maxComplexity: number): ApolloServerPlugin<GraphqlContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document, operation }) {
          // Apollo would execute a subscription sent over HTTP as a query, with no event to resolve (an internal error).
          if (operation?.operation === OperationTypeNode.SUBSCRIPTION) {
            throw new GraphQLError(
              'Subscriptions are served over the websocket (graphql-transport-ws protocol) at /graphql, not over HTTP',
              {
                extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
              },
            );
          }
          const error = complexityError(schema, document, request.variables, request.operationName, maxComplexity);
          if (error !== null) throw error;
        },
      };
    },
  };
}

/**
 * Once a field passed MAX_RESPONSE_BYTES (responseBudget.ts), the answer is the refusal alone, with its status:
 * the partial data is dropped before Apollo serialises it.
 */
function responseBudgetPlugin(): ApolloServerPlugin<GraphqlContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, contextValue }) {
          const refusal = contextValue.response.refusal;
          if (refusal === null) return;
          response.body = { kind: 'single', singleResult: graphqlErrorBody(refusal.message, refusal.code) };
          response.http.status = httpStatusOf(refusal.code);
        },
      };
    },
  };
}

export function createApolloServer(options: ApolloOptions): ApolloServer<GraphqlContext> {
  const logger = options.logger.child({ component: 'apollo' });
  return new ApolloServer<GraphqlContext>({
    schema: options.schema,
    introspection: options.introspection,
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    // main.ts owns SIGTERM/SIGINT and the stop order (jobs drain first). Apollo's own handlers would stop
    // GraphQL at once and then re-send the signal to the process, which main.ts would take for a second signal.
    stopOnTerminationSignals: false,
    // Apollo adds its own no-introspection rule when introspection is off.
    validationRules: limitRules(options.limits, true),
    parseOptions: { maxTokens: options.documentLimits.maxTokens },
    documentStore: createDocumentStore(options.documentCacheBytes),
    formatError: (formatted, error) => formatGraphqlError(formatted, error, logger),
    logger,
    plugins: [
      ApolloServerPluginDrainHttpServer({
        httpServer: options.httpServer,
        stopGracePeriodMillis: options.stopGracePeriodMs,
      }),
      ApolloServerPluginLandingPageDisabled(),
      complexityPlugin(options.schema, options.limits.maxComplexity),
      responseBudgetPlugin(),
    ],
  });
}
