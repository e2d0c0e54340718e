/** The process always ends on Redis, with Redis stopped before the signal (test/system/reliability/processExit.ts). */
import { ALL_ON_REDIS, describeRedisStopped, ROLES } from './processExit.js';

describeRedisStopped([...ROLES.filter((role) => role.partner !== undefined), ALL_ON_REDIS]);
