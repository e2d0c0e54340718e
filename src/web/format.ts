/**
 * @file How results read on the page: classes ranked most probable first, probabilities as percentages.
 * Pure functions, shared by the page and its tests (the browser test recomputes what the page must show).
 */

export interface RankedClass {
  label: string;
  probability: number;
}

/** `labels[i]` with `probabilities[i]`, most probable first; ties keep the order the classes were given in. */
export function rankClasses(labels: readonly string[], probabilities: readonly number[]): RankedClass[] {
  return labels
    .map((label, index) => ({ label, probability: probabilities[index] ?? 0, index }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .map(({ label, probability }) => ({ label, probability }));
}

/** A probability as the page shows it: one decimal, e.g. `87.3%`. */
export function formatPercent(probability: number): string {
  return `${(Math.min(1, Math.max(0, probability)) * 100).toFixed(1)}%`;
}

/** A byte count for people: `512 B`, `14.2 KB`, `3.1 MB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} KB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}
