/**
 * The job API: classify, embedImages and embedTexts mutations, job/jobs queries, cancelJob, and the
 * jobUpdated subscription.
 * Resolvers only translate between GraphQL and JobService; JobService decides.
 */
import { Arg, Ctx, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { Job, JobStatus } from '../../jobs/index.js';
import type { GraphqlContext } from '../context.js';
import { jobImagesFrom } from '../imageSources.js';
import { ClassifyInput, classificationOf } from '../types/ClassifyInput.js';
import { promptSettingsOf } from '../types/PromptInput.js';
import { EmbedImagesInput, EmbedTextsInput, submittedTexts } from '../types/EmbedInput.js';
import { JobStatusEnum } from '../types/enums.js';
import { JobObject } from '../types/Job.js';
import { JobConnectionObject } from '../types/JobConnection.js';
import { SimilarityRankingObject } from '../types/Similarity.js';

const DEFAULT_PAGE_SIZE = 20;
/** JobService's default `maxPageSize`. */
const MAX_PAGE_SIZE = 100;
/** Queries in a typical ranking (the real count is only known at run time), for the complexity estimate. */
const RANKED_QUERIES_ESTIMATE = 8;

@Resolver(() => JobObject)
export class JobResolver {
  @Query(() => JobObject, {
    nullable: true,
    description: 'A job by id; null when unknown, expired, or created with another API key.',
  })
  async job(@Arg('id', () => ID) id: string, @Ctx() context: GraphqlContext): Promise<JobObject | null> {
    const job = await context.jobs.get(context.caller, id);
    return job === undefined ? null : JobObject.from(job);
  }

  @Query(() => JobConnectionObject, {
    description:
      'The jobs of the calling API key (every job for an admin key), in creation order, optionally only those in `status`; `first` is 1..100.',
    // Capped at the largest page: a bigger `first` is refused by JobService with a clearer BAD_USER_INPUT.
    complexity: ({ args, childComplexity }) =>
      1 + Math.min(MAX_PAGE_SIZE, Math.max(1, Number(args.first) || DEFAULT_PAGE_SIZE)) * Math.max(1, childComplexity),
  })
  async jobs(
    @Arg('status', () => JobStatusEnum, { nullable: true }) status: JobStatus | null | undefined,
    @Arg('first', () => Int, { nullable: true, defaultValue: DEFAULT_PAGE_SIZE }) first: number | null | undefined,
    @Arg('after', () => String, { nullable: true }) after: string | null | undefined,
    @Ctx() context: GraphqlContext,
  ): Promise<JobConnectionObject> {
    const page = await context.jobs.list(context.caller, {
      status: status ?? undefined,
      first: first ?? DEFAULT_PAGE_SIZE,
      after: after ?? undefined,
    });
    return new JobConnectionObject(page);
  }

  @Query(() => [SimilarityRankingObject], {
    description:
      'Retrieval over two COMPLETE embedding jobs of one model: for every input of `queries`, the `k` inputs of `candidates` most similar to it (cosine, best first), e.g. texts against images. NOT_FOUND for an unknown job or one created with another API key; BAD_USER_INPUT for a job that is not a complete embedding or of another model.',
    complexity: ({ args, childComplexity }) =>
      1 + RANKED_QUERIES_ESTIMATE * Math.max(1, Number(args.k) || 5) * Math.max(1, childComplexity),
  })
  async similarities(
    @Arg('queries', () => ID, { description: 'The job whose vectors are the queries.' }) queries: string,
    @Arg('candidates', () => ID, { description: 'The job whose vectors are ranked for each query.' })
    candidates: string,
    @Arg('k', () => Int, {
      nullable: true,
      defaultValue: 5,
      description: 'Matches per query (fewer when there are fewer candidates).',
    })
    k: number | null,
    @Ctx() context: GraphqlContext,
  ): Promise<SimilarityRankingObject[]> {
    const ranked = await context.jobs.rank(context.caller, queries, candidates, k ?? 5);
    return ranked.rankings.map((ranking) => new SimilarityRankingObject(ranking, ranked.queries, ranked.candidates));
  }

  @Mutation(() => JobObject, {
    description:
      'Creates a classification job (QUEUED). Refuses bad input with BAD_USER_INPUT and a full queue with OVERLOADED.',
  })
  async classify(
    @Arg('input', () => ClassifyInput) input: ClassifyInput,
    @Ctx() context: GraphqlContext,
  ): Promise<JobObject> {
    const { classes, classifier, config } = classificationOf(input);
    const job = await context.jobs.submit(context.caller, {
      ...(await jobImagesFrom(input)),
      classes,
      ...(classifier === undefined ? {} : { classifier }),
      model: input.model ?? undefined,
      config: config ?? undefined,
    });
    return JobObject.from(job);
  }

  @Mutation(() => JobObject, {
    description:
      'Creates an image-embedding job (QUEUED): one L2-normalised vector per image, in `embeddings`. Refuses bad input with BAD_USER_INPUT and a full queue with OVERLOADED.',
  })
  async embedImages(
    @Arg('input', () => EmbedImagesInput) input: EmbedImagesInput,
    @Ctx() context: GraphqlContext,
  ): Promise<JobObject> {
    const job = await context.jobs.submit(context.caller, {
      task: 'image-embedding',
      ...(await jobImagesFrom(input)),
      model: input.model ?? undefined,
    });
    return JobObject.from(job);
  }

  @Mutation(() => JobObject, {
    description:
      'Creates a text-embedding job (QUEUED): one L2-normalised vector per text (verbatim unless `config` names a template), in `embeddings`. Refuses bad input with BAD_USER_INPUT and a full queue with OVERLOADED.',
  })
  async embedTexts(
    @Arg('input', () => EmbedTextsInput) input: EmbedTextsInput,
    @Ctx() context: GraphqlContext,
  ): Promise<JobObject> {
    const job = await context.jobs.submit(context.caller, {
      task: 'text-embedding',
      ...submittedTexts(input),
      model: input.model ?? undefined,
      config: promptSettingsOf(input.prompt, input.config) ?? undefined,
    });
    return JobObject.from(job);
  }

  @Mutation(() => JobObject, {
    nullable: true,
    description:
      'Cancels a QUEUED or RUNNING job; a finished job is returned unchanged; null when unknown or created with another API key (an admin key may cancel any job).',
  })
  async cancelJob(@Arg('id', () => ID) id: string, @Ctx() context: GraphqlContext): Promise<JobObject | null> {
    const job = await context.jobs.cancel(context.caller, id);
    return job === undefined ? null : JobObject.from(job);
  }

  @Subscription(() => JobObject, {
    description:
      "The job's current state at once, then every change; completes after COMPLETE, FAILED or CANCELLED. NOT_FOUND for an unknown job or one created with another API key.",
    subscribe: ({ args, context }) => {
      const { jobs, caller } = context as GraphqlContext;
      return jobs.watch(caller, String((args as { id: unknown }).id));
    },
  })
  jobUpdated(@Root() job: Job, @Arg('id', () => ID) _id: string, @Ctx() context: GraphqlContext): JobObject {
    // Each event is an answer of its own: MAX_RESPONSE_BYTES bounds one, not the subscription's sum.
    context.response.reset();
    return JobObject.from(job);
  }
}
