/** The classifier store contract on the memory store, in memory only and kept in a directory (reopened as after a restart). */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { MemoryClassifierStore } from '../../../src/classifiers/index.js';
import { describeClassifierStoreContract } from '../../utils/classifierStoreContract.js';

const dirs: string[] = [];
const dirOf = new WeakMap<object, string>();

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describeClassifierStoreContract({ name: 'memory', create: async () => new MemoryClassifierStore() });

describeClassifierStoreContract({
  name: 'memory kept in a directory',
  async create() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'classifier-store-'));
    dirs.push(dir);
    const store = new MemoryClassifierStore({ dir });
    await store.open();
    dirOf.set(store, dir);
    return store;
  },
  async reopen(store) {
    const reopened = new MemoryClassifierStore({ dir: dirOf.get(store)! });
    await reopened.open();
    return reopened;
  },
});
