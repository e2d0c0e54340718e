/**
 * The job API: classify mutation, job/jobs queries, cancelJob, and the jobUpdated subscription.
 * Resolvers only translate between GraphQL and JobService; JobService decides.
 */
import { Arg, Ctx, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { Job, JobStatus } from '../../jobs/types.js';
import type { GraphqlContext } from '../context.js';
import { jobImagesFrom } from '../imageSources.js';
import { ClassifyInput } from '../types/ClassifyInput.js';
import { JobStatusEnum } from '../types/enums.js';
import { JobObject } from '../types/Job.js';
import { JobConnectionObject } from '../types/JobConnection.js';

const DEFAULT_PAGE_SIZE = 20;
/** JobService's default `maxPageSize`. */
const MAX_PAGE_SIZE = 100;

@Resolver(() => JobObject)
export class JobResolver {
  @Query(() => JobObject, { nullable: true, description: 'A job by id; null when unknown or expired.' })
  async job(@Arg('id', () => ID) id: string, @Ctx() context: GraphqlContext): Promise<JobObject | null> {
    const job = await context.jobs.get(id);
    return job === undefined ? null : JobObject.from(job);
  }

  @Query(() => JobConnectionObject, {
    description: 'Jobs in creation order, optionally only those in `status`; `first` is 1..100.',
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
    const page = await context.jobs.list({ status: status ?? undefined, first: first ?? DEFAULT_PAGE_SIZE, after: after ?? undefined });
    return new JobConnectionObject(page);
  }

  @Mutation(() => JobObject, {
    description: 'Creates a classification job (QUEUED). Refuses bad input with BAD_USER_INPUT and a full queue with OVERLOADED.',
  })
  async classify(@Arg('input', () => ClassifyInput) input: ClassifyInput, @Ctx() context: GraphqlContext): Promise<JobObject> {
    const job = await context.jobs.submit({
      ...(await jobImagesFrom(input)),
      classes: input.classes,
      model: input.model ?? undefined,
      config: input.config ?? undefined,
    });
    return JobObject.from(job);
  }

  @Mutation(() => JobObject, {
    nullable: true,
    description: 'Cancels a QUEUED or RUNNING job; a finished job is returned unchanged; null when unknown.',
  })
  async cancelJob(@Arg('id', () => ID) id: string, @Ctx() context: GraphqlContext): Promise<JobObject | null> {
    const job = await context.jobs.cancel(id);
    return job === undefined ? null : JobObject.from(job);
  }

  @Subscription(() => JobObject, {
    description: "The job's current state at once, then every change; completes after COMPLETE, FAILED or CANCELLED. NOT_FOUND for an unknown job.",
    subscribe: ({ args, context }) => (context as GraphqlContext).jobs.watch(String((args as { id: unknown }).id)),
  })
  jobUpdated(@Root() job: Job, @Arg('id', () => ID) _id: string): JobObject {
    return JobObject.from(job);
  }
}
