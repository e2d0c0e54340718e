/**
 * Operation limits that protect the server from expensive GraphQL documents: maximum selection
 * depth, maximum number of aliases, and maximum cost (graphql-query-complexity). Depth and aliases are
 * validation rules; cost needs the variables, so it runs once the operation is resolved (Apollo
 * plugin over HTTP, `onSubscribe` over graphql-ws). Every refusal has code GRAPHQL_VALIDATION_FAILED
 * (HTTP 400) and a message naming the limit and its setting.
 */
import {
  GraphQLError,
  Kind,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type ASTNode,
  specifiedRules,
  NoSchemaIntrospectionCustomRule,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { createRequire } from 'node:module';
import type * as QueryComplexity from 'graphql-query-complexity';

// graphql-query-complexity's ESM build imports 'graphql/index.mjs', while Node resolves every other
// `import 'graphql'` (type-graphql's, Apollo's, ours) to the CommonJS build: two graphql realms, and
// "Cannot use GraphQLObjectType from another module or realm". Its CommonJS build shares ours.
const { fieldExtensionsEstimator, getComplexity, simpleEstimator } = createRequire(import.meta.url)(
  'graphql-query-complexity',
) as typeof QueryComplexity;

export const LIMIT_ERROR_CODE = 'GRAPHQL_VALIDATION_FAILED';

export interface OperationLimits {
  /** Deepest selection allowed; introspection fields (`__schema`, `__type`) are not counted. */
  maxDepth: number;
  /** Most aliased fields in one document. */
  maxAliases: number;
  /** Highest cost: 1 per field, list fields multiplied by their `first`/`k` argument. */
  maxComplexity: number;
}

function limitError(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: LIMIT_ERROR_CODE, http: { status: 400 } } });
}

/** Refuses operations whose selections nest deeper than `maxDepth`. */
export function depthLimitRule(maxDepth: number): ValidationRule {
  return (context: ValidationContext) => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of context.getDocument().definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    }
    // A fragment's depth does not depend on where it is spread: computed once. Without this, fragments that
    // each spread the next one twice cost 2^n walks (a 1 KB document held the event loop for seconds).
    const fragmentDepths = new Map<string, number>();
    // Depth of a selection set; `visiting` breaks fragment cycles (reported by NoFragmentCyclesRule).
    const depthOf = (selectionSet: SelectionSetNode, visiting: Set<string>): number => {
      let deepest = 0;
      for (const selection of selectionSet.selections) {
        switch (selection.kind) {
          case Kind.FIELD:
            if (selection.name.value.startsWith('__')) continue;
            deepest = Math.max(deepest, 1 + (selection.selectionSet ? depthOf(selection.selectionSet, visiting) : 0));
            break;
          case Kind.INLINE_FRAGMENT:
            deepest = Math.max(deepest, depthOf(selection.selectionSet, visiting));
            break;
          case Kind.FRAGMENT_SPREAD: {
            const name = selection.name.value;
            const fragment = fragments.get(name);
            if (fragment === undefined || visiting.has(name)) continue;
            let fragmentDepth = fragmentDepths.get(name);
            if (fragmentDepth === undefined) {
              visiting.add(name);
              fragmentDepth = depthOf(fragment.selectionSet, visiting);
              visiting.delete(name);
              fragmentDepths.set(name, fragmentDepth);
            }
            deepest = Math.max(deepest, fragmentDepth);
            break;
          }
        }
        // Stop early: a bound is all we need, and it keeps hostile documents cheap.
        if (deepest > maxDepth) return deepest;
      }
      return deepest;
    };
    return {
      OperationDefinition(operation) {
        const depth = depthOf(operation.selectionSet, new Set());
        if (depth > maxDepth) {
          const name = operation.name ? `"${operation.name.value}" ` : '';
          context.reportError(
            limitError(`Operation ${name}exceeds the maximum query depth of ${maxDepth} (MAX_QUERY_DEPTH)`),
          );
        }
      },
    };
  };
}

/** Refuses documents with more than `maxAliases` aliased fields. */
export function aliasLimitRule(maxAliases: number): ValidationRule {
  return (context: ValidationContext) => {
    let aliases = 0;
    return {
      Field(field) {
        if (field.alias !== undefined) aliases += 1;
      },
      Document: {
        leave() {
          if (aliases > maxAliases) {
            context.reportError(
              limitError(`Document has ${aliases} aliases, more than the maximum of ${maxAliases} (MAX_ALIASES)`),
            );
          }
        },
      },
    };
  };
}

/** The validation rules to add to graphql-js's own (depth, aliases, and no introspection when it is off). */
export function limitRules(limits: OperationLimits, introspection: boolean): ValidationRule[] {
  const rules = [depthLimitRule(limits.maxDepth), aliasLimitRule(limits.maxAliases)];
  if (!introspection) rules.push(NoSchemaIntrospectionCustomRule);
  return rules;
}

/** graphql-js's rules plus ours: for transports that validate themselves (graphql-ws). */
export function allValidationRules(limits: OperationLimits, introspection: boolean): ValidationRule[] {
  return [...specifiedRules, ...limitRules(limits, introspection)];
}

/** Per document: the variables its cost can depend on, and the outcomes already worked out for their values. */
interface DocumentCosts {
  costVariables: readonly string[];
  outcomes: Map<string, GraphQLError | null>;
}

/** Outcomes kept per document: one per distinct value of its cost variables (`first`, `k`), a handful in practice. */
const OUTCOMES_PER_DOCUMENT = 32;
/**
 * Longest key an outcome is kept under, in characters. The key holds the operation name and the cost variables'
 * values as the client sent them (over the websocket, before execution could refuse a name no operation has):
 * without a bound, 32 keys of megabytes each would live as long as the cached document.
 */
const MAX_OUTCOME_KEY_LENGTH = 1024;
const costsBySchema = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, DocumentCosts>>();

/**
 * The cost check. Returns the refusal, or null when the operation is within `maxComplexity`.
 * Call on a validated document.
 *
 * Costing walks the whole document with type information, which profiling found to be ~0.5 ms per request at
 * 16 clients, paid twice per job (the mutation, then the subscription). The cost of a document can
 * depend only on the variables passed to fields that price their arguments (`complexity` extensions: `first`,
 * `k`) and to `@include`/`@skip`; so the outcome is kept per document (Apollo's and the websocket's document
 * caches hand out the same document object for the same text) and per value of just those variables. A job id
 * or an image in the variables changes nothing, and is not looked at.
 */
export function complexityError(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  operationName: string | undefined,
  maxComplexity: number,
): GraphQLError | null {
  let documents = costsBySchema.get(schema);
  if (documents === undefined) costsBySchema.set(schema, (documents = new WeakMap()));
  let costs = documents.get(document);
  if (costs === undefined)
    documents.set(document, (costs = { costVariables: costVariablesOf(schema, document), outcomes: new Map() }));
  const key = JSON.stringify([
    operationName ?? null,
    maxComplexity,
    costs.costVariables.map((name) => variables?.[name] ?? null),
  ]);
  const known = costs.outcomes.get(key);
  if (known !== undefined) return known;
  const outcome = computeComplexityError(schema, document, variables, operationName, maxComplexity);
  // Variables that cannot be coerced leave the cost unknown (execution refuses them): nothing to keep then.
  if (outcome === BAD_VARIABLES) return null;
  if (costs.outcomes.size < OUTCOMES_PER_DOCUMENT && key.length <= MAX_OUTCOME_KEY_LENGTH)
    costs.outcomes.set(key, outcome);
  return outcome;
}

const BAD_VARIABLES = Symbol('bad variables');

/** Names of the variables used in the arguments of cost-pricing fields and of directives (`@include(if: $x)`). */
function costVariablesOf(schema: GraphQLSchema, document: DocumentNode): string[] {
  const names = new Set<string>();
  const collect = (node: ASTNode): void => {
    visit(node, {
      Variable(variable) {
        names.add(variable.name.value);
      },
    });
  };
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(field) {
        const definition = typeInfo.getFieldDef();
        // Without a definition the field is unknown to this schema (validation refuses it); price it by everything.
        if (definition === null || definition === undefined || definition.extensions['complexity'] !== undefined) {
          for (const argument of field.arguments ?? []) collect(argument.value);
        }
      },
      Directive(directive) {
        for (const argument of directive.arguments ?? []) collect(argument.value);
      },
    }),
  );
  return [...names].sort();
}

function computeComplexityError(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  operationName: string | undefined,
  maxComplexity: number,
): GraphQLError | null | typeof BAD_VARIABLES {
  let complexity: number;
  try {
    complexity = getComplexity({
      schema,
      query: document,
      variables: variables ?? {},
      ...(operationName === undefined ? {} : { operationName }),
      estimators: [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })],
    });
  } catch (error) {
    // Bad variables are left to execution, which reports them as BAD_USER_INPUT like any other request.
    if (error instanceof GraphQLError && error.message.startsWith('Variable "')) return BAD_VARIABLES;
    // Otherwise getComplexity could not cost the document (e.g. over its node limit): refuse it.
    return limitError(`Operation cannot be accepted: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (complexity > maxComplexity) {
    return limitError(
      `Operation complexity ${complexity} exceeds the maximum of ${maxComplexity} (MAX_QUERY_COMPLEXITY)`,
    );
  }
  return null;
}
