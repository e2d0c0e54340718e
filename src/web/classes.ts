/**
 * @file Parsing what a person types as classes: comma-separated or one per line (or both), trimmed, blanks
 * dropped, duplicates dropped (the server refuses duplicates; a person typing one twice means it once).
 */

/** The classes in `text`, in the order typed. */
export function parseClasses(text: string): string[] {
  const seen = new Set<string>();
  const classes: string[] = [];
  for (const part of text.split(/[,\n\r]+/)) {
    const label = part.trim();
    if (label === '' || seen.has(label)) continue;
    seen.add(label);
    classes.push(label);
  }
  return classes;
}
