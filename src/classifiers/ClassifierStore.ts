/**
 * Where classifiers and their weights live: MemoryClassifierStore in one process (its weights, and with a directory
 * its records too, kept on disk across restarts). Weights are stored by key (model files + recipe), apart from the
 * records, so two classifiers with the same recipe on the same model share them.
 */
import type { Classifier } from './types.js';

export interface ClassifierStore {
  get(id: string): Promise<Classifier | undefined>;
  /** Every stored classifier, oldest first. */
  list(): Promise<Classifier[]>;
  /** Creates or replaces. */
  put(classifier: Classifier): Promise<void>;
  /** True when it existed. */
  delete(id: string): Promise<boolean>;
  /** The packed weights (classes × dimensions) under `key`, or undefined. */
  loadWeights(key: string): Promise<Float32Array | undefined>;
  saveWeights(key: string, weights: Float32Array): Promise<void>;
  close(): Promise<void>;
}
