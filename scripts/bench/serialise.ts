/**
 * How long one large embedding result takes to leave the server as JSON (issue 10: 64 images × 768 floats),
 * on the real code paths: the FES batched answer (`toFesJobResponse` + JSON.stringify, what express sends) and
 * the GraphQL answer (execution of `job { embeddings { vectors } }` on the real schema + JSON.stringify), with
 * the same vectors as `[[Float!]!]` lists beside it for comparison (what a list type would cost).
 */
import { execute, GraphQLFloat, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, parse } from 'graphql';
import { buildGraphqlSchema, createContext, type GraphqlContext } from '../../src/graphql/index.js';
import { OPEN_CALLER, type Job, type JobService } from '../../src/jobs/index.js';
import { silentLogger } from '../../src/logger.js';
import { toFesJobResponse } from '../../src/rest/shapes.js';
import { median } from './stats.js';

export interface SerialiseResult {
  vectors: number;
  dimensions: number;
  /** Median ms to build and stringify the FES batched body. */
  restMs: number;
  restBytes: number;
  /** Median ms to execute the GraphQL query and stringify its answer (Vector leaves). */
  graphqlMs: number;
  graphqlBytes: number;
  /** The same with the vectors typed as `[[Float!]!]` (a list per vector). */
  graphqlFloatListsMs: number;
}

/** Unit vectors of float32 values, as the embedder stores them. */
function unitVectors(count: number, dimensions: number): number[][] {
  let seed = 12345;
  return Array.from({ length: count }, () => {
    const vector = new Float32Array(dimensions);
    for (let i = 0; i < dimensions; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      vector[i] = seed / 2 ** 32 - 0.5;
    }
    const norm = Math.hypot(...vector);
    return Array.from(vector, (value) => Math.fround(value / norm));
  });
}

function timed(runs: number, run: () => Promise<number> | number): Promise<{ ms: number; bytes: number }> {
  return (async () => {
    let bytes = await run();
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      bytes = await run();
      times.push(performance.now() - started);
    }
    return { ms: median(times), bytes };
  })();
}

export async function measureSerialisation(count = 64, dimensions = 768, runs = 20): Promise<SerialiseResult> {
  const embeddings = unitVectors(count, dimensions);
  const now = new Date();
  const job: Job = {
    id: 'bench-job',
    owner: null,
    task: 'image-embedding',
    model: 'bench',
    classes: [],
    texts: [],
    imageCount: count,
    batched: true,
    createdAt: now,
    expiresAt: new Date(now.getTime() + 3_600_000),
    version: 0,
    status: 'complete',
    startedAt: now,
    finishedAt: now,
    result: { task: 'image-embedding', embeddings },
  };

  const rest = await timed(runs, () => JSON.stringify(toFesJobResponse(job, true)).length);

  const schema = await buildGraphqlSchema();
  const document = parse('query($id: ID!) { job(id: $id) { status embeddings { dimensions vectors } } }');
  // Only `jobs.get` is reached by this query: the rest of JobService is not needed to measure serialisation.
  const jobs = { get: async () => job } as unknown as JobService;
  const contextValue: GraphqlContext = createContext(
    { jobs, clip: { defaultModelName: 'bench', models: () => [] }, logger: silentLogger(), maxResponseBytes: 2 ** 40 },
    'bench',
    OPEN_CALLER,
  );
  const graphql = await timed(runs, async () => {
    const answer = await execute({ schema, document, variableValues: { id: job.id }, contextValue });
    if (answer.errors) throw new Error(answer.errors.map((e) => e.message).join('; '));
    return JSON.stringify(answer).length;
  });

  const floatLists = new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: {
        vectors: {
          type: new GraphQLList(new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(GraphQLFloat)))),
          resolve: () => embeddings,
        },
      },
    }),
  });
  const listsDocument = parse('{ vectors }');
  const lists = await timed(
    runs,
    async () => JSON.stringify(await execute({ schema: floatLists, document: listsDocument })).length,
  );

  return {
    vectors: count,
    dimensions,
    restMs: rest.ms,
    restBytes: rest.bytes,
    graphqlMs: graphql.ms,
    graphqlBytes: graphql.bytes,
    graphqlFloatListsMs: lists.ms,
  };
}
