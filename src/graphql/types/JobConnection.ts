import { Field, ObjectType } from 'type-graphql';
import type { JobPage } from '../../jobs/index.js';
import { JobObject } from './Job.js';

@ObjectType('PageInfo')
export class PageInfoObject {
  @Field(() => Boolean)
  hasNextPage: boolean;

  @Field(() => String, {
    nullable: true,
    description: 'Pass as `after` for the next page; null when the page is empty.',
  })
  endCursor: string | null;

  constructor(hasNextPage: boolean, endCursor: string | null) {
    this.hasNextPage = hasNextPage;
    this.endCursor = endCursor;
  }
}

@ObjectType('JobConnection', { description: 'A page of jobs, in creation order.' })
export class JobConnectionObject {
  @Field(() => [JobObject])
  nodes: JobObject[];

  @Field(() => PageInfoObject)
  pageInfo: PageInfoObject;

  constructor(page: JobPage) {
    this.nodes = page.jobs.map((job) => JobObject.from(job));
    this.pageInfo = new PageInfoObject(page.hasNextPage, page.endCursor);
  }
}
