/**
 * What jobs need from stored zero-shot classifiers (src/classifiers implements it): the API side turns a classifier
 * id into the job's classes and model; the worker side waits for the classifier's weights on the job's model and
 * scores the images against them. Jobs know no more of classifiers than this.
 */
import type { ClassifyResult } from '../clip/index.js';
import type { Caller } from './caller.js';

export interface ClassifierPlan {
  /** The classifier's classes, in weight-row order: the job's classes. */
  classes: string[];
  /** The resolved model the job runs on. */
  model: string;
}

export interface JobClassifiers {
  /**
   * The plan of a classification on classifier `id` for `caller` (its own classifiers, the presets; an admin's: all),
   * on `model` when given. BAD_USER_INPUT (field `classifier`) for an unknown, unseen or failed classifier, or a
   * model it was not built for.
   */
  plan(caller: Caller, id: string, model: string | undefined): Promise<ClassifierPlan>;
  /**
   * Resolves once the classifier's weights for `model` are ready, building them when missing (the job waits QUEUED
   * meanwhile). NOT_FOUND when the classifier was deleted; its coded build error when the build failed.
   */
  prepare(id: string, model: string, signal: AbortSignal): Promise<void>;
  /** Per image, the probability of each class: the images against the stored weights, no text tower. */
  classify(request: { id: string; model: string; images: Uint8Array[]; signal: AbortSignal }): Promise<ClassifyResult>;
}
