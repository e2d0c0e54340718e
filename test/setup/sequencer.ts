/**
 * The order a run starts its test files in: tier by tier, the system tier first (its files are the longest and spend
 * most of their time waiting on processes), the unit tier last (many short files that fill the workers at the end),
 * and within a tier vitest's own order (the slowest of the last run first, else the largest file first).
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const TIER_ORDER: readonly string[] = ['system', 'integration', 'browser', 'unit'];

function tierRank(spec: TestSpecification): number {
  const rank = TIER_ORDER.indexOf(spec.project.name);
  return rank === -1 ? TIER_ORDER.length : rank;
}

export class TierSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    // Array.prototype.sort is stable: vitest's order holds within each tier.
    return (await super.sort(files)).sort((a, b) => tierRank(a) - tierRank(b));
  }
}
