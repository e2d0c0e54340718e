/**
 * `Vector`: an embedding as one JSON array of floats. A leaf, not `[Float!]!`, because graphql-js completes a
 * list item by item (a resolver-less completion and a Float serialisation per number): for 64 × 768 floats that
 * more than doubles the time to answer (`npm run bench -- --embeddings`, README Performance).
 * The serialiser still checks every element is a finite number, so a wrong value fails loudly.
 */
import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';

function assertVector(value: unknown): number[] {
  if (!Array.isArray(value))
    throw new GraphQLError(`Vector expects a list of numbers, but got ${value === null ? 'null' : typeof value}`);
  for (const element of value) {
    if (typeof element !== 'number' || !Number.isFinite(element))
      throw new GraphQLError('Vector expects finite numbers only');
  }
  return value as number[];
}

function literalToVector(ast: ValueNode): number[] {
  if (ast.kind !== Kind.LIST) throw new GraphQLError('Vector expects a list of numbers');
  return assertVector(
    ast.values.map((item) => (item.kind === Kind.FLOAT || item.kind === Kind.INT ? Number(item.value) : NaN)),
  );
}

export const VectorScalar = new GraphQLScalarType<number[], number[]>({
  name: 'Vector',
  description:
    "An embedding: a JSON list of floats (L2-normalised, the model's embedding size long), serialised as one value.",
  serialize: assertVector,
  parseValue: assertVector,
  parseLiteral: literalToVector,
});
