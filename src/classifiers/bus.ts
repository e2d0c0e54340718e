/**
 * How the processes that share classifiers hear of each other's changes and agree on who builds: every stored change
 * and deletion is published (the API's watchers follow builds running on a worker), a classifier created where no
 * model runs asks the processes that run models to build it, and a claim per classifier and model lets one process
 * build while the others wait for its result. One process: MemoryClassifierBus; a cluster: RedisClassifierBus.
 */
import type { Classifier } from './types.js';

export type ClassifierMessage =
  | { kind: 'updated'; classifier: Classifier }
  | { kind: 'deleted'; id: string }
  /** A process without models created the classifier: one that runs `model` should build it. */
  | { kind: 'build'; id: string; model: string };

export interface ClassifierBus {
  /** Delivers `message` to every subscriber of every process sharing the classifiers (this one included). */
  publish(message: ClassifierMessage): Promise<void>;
  /** Calls `listener` with every message published; returns the unsubscribe. */
  subscribe(listener: (message: ClassifierMessage) => void): () => void;
  /** True when this process may build the classifier on `model` now (no other process holds the claim). */
  claim(id: string, model: string): Promise<boolean>;
  /** Keeps a claim held while its build makes progress. */
  renew(id: string, model: string): Promise<void>;
  release(id: string, model: string): Promise<void>;
  close(): Promise<void>;
}

/** One process: messages go straight to its subscribers, and it holds every claim. */
export class MemoryClassifierBus implements ClassifierBus {
  readonly #listeners = new Set<(message: ClassifierMessage) => void>();

  async publish(message: ClassifierMessage): Promise<void> {
    for (const listener of this.#listeners) listener(message);
  }

  subscribe(listener: (message: ClassifierMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async claim(): Promise<boolean> {
    // The service's own map of builds under way already keeps one build per classifier and model in a process.
    return true;
  }

  async renew(): Promise<void> {}

  async release(): Promise<void> {}

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
