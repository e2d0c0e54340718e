/** The checks of createClassifier's input: everything a user can get wrong is refused before anything is stored. */
import { badUserInput } from '../errors.js';

const MAX_NAME_LENGTH = 200;

export interface ClassifierLimits {
  /** See MAX_CLASSIFIER_PROMPTS. */
  maxClassifierPrompts: number;
  /** See MAX_CLASS_LENGTH. */
  maxClassLength: number;
}

export function checkName(name: unknown, fallback: string): string {
  if (name === undefined || name === null) return fallback;
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME_LENGTH)
    throw badUserInput(`name: expected a non-blank string of at most ${MAX_NAME_LENGTH} characters`, 'name');
  return name;
}

/** Non-empty, distinct, non-blank class names within MAX_CLASS_LENGTH. */
export function checkClasses(classes: unknown, limits: ClassifierLimits): string[] {
  if (!Array.isArray(classes) || classes.length === 0)
    throw badUserInput('classes: expected a non-empty list of class names', 'classes');
  const seen = new Map<string, number>();
  return classes.map((label: unknown, index) => {
    const field = `classes[${index}]`;
    if (typeof label !== 'string' || label.trim() === '')
      throw badUserInput(`${field}: expected a non-blank class name`, field);
    if ([...label].length > limits.maxClassLength)
      throw badUserInput(`${field}: expected at most ${limits.maxClassLength} characters (MAX_CLASS_LENGTH)`, field);
    const first = seen.get(label.trim());
    if (first !== undefined) throw badUserInput(`${field}: duplicates classes[${first}]`, field);
    seen.set(label.trim(), index);
    return label;
  });
}

/** classes × templates within MAX_CLASSIFIER_PROMPTS. */
export function checkPromptCount(classes: number, templates: number, limits: ClassifierLimits): void {
  const prompts = classes * templates;
  if (prompts > limits.maxClassifierPrompts) {
    throw badUserInput(
      `classes: ${classes} classes × ${templates} templates = ${prompts} prompts, over the limit of ${limits.maxClassifierPrompts} (MAX_CLASSIFIER_PROMPTS)`,
      'classes',
    );
  }
}
