/**
 * Query-time retrieval over two finished embedding jobs: for every vector of one job (the queries), the `k`
 * vectors of another (the candidates) with the highest cosine similarity. Vectors are unit length, so the
 * cosine is their dot product. Pure: JobService reads and checks the jobs, this ranks.
 */
import type { EmbeddingResult } from './types.js';

/** One candidate and its cosine similarity to the query. */
export interface SimilarityMatch {
  /** The candidate's index in its job's inputs. */
  index: number;
  score: number;
}

/** The best candidates for one query vector, best first. */
export interface SimilarityRanking {
  /** The query's index in its job's inputs. */
  index: number;
  matches: SimilarityMatch[];
}

/** Ranks every candidate for every query; ties keep the candidates' input order. */
export function rankBySimilarity(
  queries: EmbeddingResult,
  candidates: EmbeddingResult,
  k: number,
): SimilarityRanking[] {
  return queries.embeddings.map((query, index) => {
    const scored = candidates.embeddings.map((candidate, candidateIndex) => ({
      index: candidateIndex,
      score: dot(query, candidate),
    }));
    scored.sort((a, b) => b.score - a.score || a.index - b.index);
    return { index, matches: scored.slice(0, k) };
  });
}

function dot(a: readonly number[], b: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}
