/** The job backend contract (test/utils/backendContract.ts) on the memory backend, the one a single process uses. */
import { describe } from 'vitest';
import { describeBackendContract, memoryBackend } from '../../utils/backendContract.js';

describe('memory backend', () => {
  describeBackendContract(memoryBackend);
});
