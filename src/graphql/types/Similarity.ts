import { Ctx, Field, Float, Int, ObjectType } from 'type-graphql';
import type { Job, SimilarityRanking } from '../../jobs/index.js';
import type { GraphqlContext } from '../context.js';
import { stringBytes } from '../responseBudget.js';

/** A text of a job, charged to the answer's budget (MAX_RESPONSE_BYTES) when it is sent. */
function chargedText(text: string | null, context: GraphqlContext, field: string): string | null {
  if (text !== null) context.response.charge(stringBytes(text), field);
  return text;
}

@ObjectType('SimilarityMatch', { description: 'One candidate input and its cosine similarity to the query.' })
export class SimilarityMatchObject {
  @Field(() => Int, { description: "The candidate's index in its job's inputs (images or texts)." })
  index: number;

  @Field(() => Float, { description: 'Cosine similarity, -1..1 (the dot product of the unit vectors).' })
  score: number;

  @Field(() => String, {
    nullable: true,
    description: 'The candidate text, when the candidates job is a TEXT_EMBEDDING.',
  })
  text(@Ctx() context: GraphqlContext): string | null {
    return chargedText(this.#text, context, 'matches.text');
  }

  readonly #text: string | null;

  constructor(index: number, score: number, text: string | null) {
    this.index = index;
    this.score = score;
    this.#text = text;
  }
}

@ObjectType('SimilarityRanking', { description: 'The best candidates for one query input, most similar first.' })
export class SimilarityRankingObject {
  @Field(() => Int, { description: "The query's index in its job's inputs." })
  index: number;

  @Field(() => String, { nullable: true, description: 'The query text, when the queries job is a TEXT_EMBEDDING.' })
  text(@Ctx() context: GraphqlContext): string | null {
    return chargedText(this.#text, context, 'similarities.text');
  }

  @Field(() => [SimilarityMatchObject])
  matches: SimilarityMatchObject[];

  readonly #text: string | null;

  constructor(ranking: SimilarityRanking, queries: Job, candidates: Job) {
    this.index = ranking.index;
    this.#text = queries.texts[ranking.index] ?? null;
    this.matches = ranking.matches.map(
      (match) => new SimilarityMatchObject(match.index, match.score, candidates.texts[match.index] ?? null),
    );
  }
}
