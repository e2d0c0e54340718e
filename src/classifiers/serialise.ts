/** A classifier to JSON text and back: dates travel as ISO strings and are revived by name. */
import type { Classifier } from './types.js';

export function classifierToJSON(classifier: Classifier): string {
  return JSON.stringify(classifier);
}

/** Throws on text that is not a stored classifier. */
export function classifierFromJSON(text: string): Classifier {
  const raw = JSON.parse(text) as Record<string, unknown>;
  if (
    typeof raw.id !== 'string' ||
    !Array.isArray(raw.classes) ||
    typeof raw.builds !== 'object' ||
    raw.builds === null
  )
    throw new Error('not a stored classifier');
  raw.createdAt = new Date(raw.createdAt as string);
  for (const build of Object.values(raw.builds as Record<string, Record<string, unknown>>))
    build.updatedAt = new Date(build.updatedAt as string);
  return raw as unknown as Classifier;
}
