/**
 * A stored zero-shot classifier: classes and prompt templates whose weights (open_clip's recipe, one row per class)
 * are built once per model and then scored against. Plain data, as jobs are: the store keeps it as JSON.
 */
import type { ErrorCode } from '../errors.js';

/** Where a classifier's weights for a model are: not built yet (a preset before its first use), `building`, `ready`, `failed`. */
export type ClassifierStatus = 'pending' | 'building' | 'ready' | 'failed';

export interface ClassifierFailure {
  code: ErrorCode;
  message: string;
}

/** One model's build of a classifier's weights. */
export interface ClassifierBuild {
  status: ClassifierStatus;
  /** Prompts embedded so far (classes done × templates). */
  builtPrompts: number;
  /** classes × templates. */
  totalPrompts: number;
  error: ClassifierFailure | null;
  /** The key of the stored weights (model files and recipe, see weightsKey.ts); null until ready. */
  weightsKey: string | null;
  /** Rows are this long (the model's embedding size); null until ready. */
  dimensions: number | null;
  updatedAt: Date;
}

export interface Classifier {
  id: string;
  name: string;
  /** The keyed hash of the API key that created it (as a job's owner); null for a preset or with authentication off. */
  owner: string | null;
  /** A preset (imagenet-1k…): usable on every model, built for each on first use, never deleted. */
  preset: boolean;
  classes: string[];
  templates: string[];
  /** The resolved model it is built for; null for a preset (any model). */
  model: string | null;
  createdAt: Date;
  /** Per resolved model name, its build. */
  builds: Record<string, ClassifierBuild>;
  /** +1 on every stored change: watchers drop stale or repeated states. */
  version: number;
}

/** A build nothing was done for yet. */
export function pendingBuild(totalPrompts: number, since: Date): ClassifierBuild {
  return {
    status: 'pending',
    builtPrompts: 0,
    totalPrompts,
    error: null,
    weightsKey: null,
    dimensions: null,
    updatedAt: since,
  };
}

/** The state a client sees for one model: the build's, or `pending` when none was asked for yet. */
export function buildOn(classifier: Classifier, model: string): ClassifierBuild {
  return (
    classifier.builds[model] ??
    pendingBuild(classifier.classes.length * classifier.templates.length, classifier.createdAt)
  );
}
