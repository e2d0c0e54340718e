/** The tests' real redis-server (shared with `npm run bench -- --redis`). */
export * from '../../scripts/redisServer.js';
