/** The process always ends, ROLE=worker (test/system/reliability/processExit.ts has the cases and the guarantee). */
import { describeProcessExit, roleNamed } from './processExit.js';

describeProcessExit(roleNamed('worker'));
