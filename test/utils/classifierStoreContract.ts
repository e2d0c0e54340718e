/**
 * The ClassifierStore contract, one suite for every backend (memory, with and without its directory; Redis): records
 * round-trip with their dates, list in creation order, replace, delete, and weights round-trip bit for bit.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Classifier, ClassifierStore } from '../../src/classifiers/index.js';

export interface ClassifierStoreFactory {
  name: string;
  /** A new, empty store (its own namespace). */
  create(): Promise<ClassifierStore>;
  /** Another store on the same data (another process, or the same one after a restart); absent when it has none. */
  reopen?(store: ClassifierStore): Promise<ClassifierStore>;
}

export function classifierRecord(overrides: Partial<Classifier> = {}): Classifier {
  const createdAt = overrides.createdAt ?? new Date();
  return {
    id: randomUUID(),
    name: 'two',
    owner: 'owner-hash',
    preset: false,
    classes: ['cat', 'dog'],
    templates: ['a photo of a {}.'],
    model: 'tiny',
    createdAt,
    builds: {
      tiny: {
        status: 'ready',
        builtPrompts: 2,
        totalPrompts: 2,
        error: null,
        weightsKey: 'abc',
        dimensions: 3,
        updatedAt: createdAt,
      },
    },
    version: 3,
    ...overrides,
  };
}

export function describeClassifierStoreContract(factory: ClassifierStoreFactory): void {
  describe(`${factory.name} classifier store`, () => {
    it('should give back what was put, dates included, and undefined for an unknown id', async () => {
      const store = await factory.create();
      const record = classifierRecord();
      await store.put(record);
      expect(await store.get(record.id)).toEqual(record);
      expect(await store.get(randomUUID())).toBeUndefined();
    });

    it('should list in creation order, replace on put, and delete once', async () => {
      const store = await factory.create();
      const older = classifierRecord({ createdAt: new Date(1_000) });
      const newer = classifierRecord({ createdAt: new Date(2_000) });
      await store.put(newer);
      await store.put(older);
      expect((await store.list()).map((c) => c.id)).toEqual([older.id, newer.id]);
      await store.put({ ...older, name: 'renamed', version: 4 });
      expect(await store.get(older.id)).toMatchObject({ name: 'renamed', version: 4 });
      expect(await store.list()).toHaveLength(2);
      expect(await store.delete(older.id)).toBe(true);
      expect(await store.delete(older.id)).toBe(false);
      expect((await store.list()).map((c) => c.id)).toEqual([newer.id]);
    });

    it('should keep weights bit for bit, and undefined for an unknown key', async () => {
      const store = await factory.create();
      const weights = new Float32Array([0.1, -0.2, 1 / 3, Number.MIN_VALUE, -0, 1e30]);
      await store.saveWeights('key-1', weights);
      expect([...((await store.loadWeights('key-1')) ?? [])]).toEqual([...weights]);
      expect(await store.loadWeights('key-2')).toBeUndefined();
    });

    it.skipIf(factory.reopen === undefined)(
      'should show the records and weights to another store on the same data',
      async () => {
        const store = await factory.create();
        const record = classifierRecord();
        await store.put(record);
        await store.saveWeights('shared', new Float32Array([1, 2, 3]));
        const other = await factory.reopen!(store);
        expect(await other.get(record.id)).toEqual(record);
        expect([...((await other.loadWeights('shared')) ?? [])]).toEqual([1, 2, 3]);
      },
    );
  });
}
