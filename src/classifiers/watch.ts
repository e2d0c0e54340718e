/**
 * An async iterator over one classifier's states as the service publishes them: the caller offers states (the
 * current one first, then every change); only newer versions pass, and the iterator ends after `isLast` says so.
 */
import type { Classifier } from './types.js';

export interface ClassifierWatcher {
  iterator: AsyncIterableIterator<Classifier>;
  offer(classifier: Classifier): void;
  /** Ends the iterator (the classifier was deleted, or the service stops). */
  end(): void;
}

export function createWatcher(isLast: (classifier: Classifier) => boolean, onEnd: () => void): ClassifierWatcher {
  const buffer: Classifier[] = [];
  let lastVersion = -1;
  let finished = false;
  let ended = false;
  let pending: ((result: IteratorResult<Classifier>) => void) | null = null;

  const end = (): void => {
    if (ended) return;
    ended = true;
    onEnd();
    if (pending !== null && buffer.length === 0) {
      const resolve = pending;
      pending = null;
      finished = true;
      resolve({ value: undefined, done: true });
    }
  };
  const offer = (classifier: Classifier): void => {
    if (ended || classifier.version <= lastVersion) return;
    lastVersion = classifier.version;
    if (pending !== null) {
      const resolve = pending;
      pending = null;
      resolve({ value: classifier, done: false });
    } else buffer.push(classifier);
    // After the last state is handed over or buffered: the next `next()` reports the end.
    if (isLast(classifier)) end();
  };
  const iterator: AsyncIterableIterator<Classifier> = {
    next: () => {
      const next = buffer.shift();
      if (next !== undefined) return Promise.resolve({ value: next, done: false });
      if (ended || finished) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => {
        pending = resolve;
      });
    },
    return: () => {
      finished = true;
      end();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return { iterator, offer, end };
}
