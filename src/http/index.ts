/** The http folder's public surface: the servers each role starts (main.ts). */
export { createServer } from './server.js';
export type { CreateServerOptions, Server, ServerAddress } from './server.js';
export { createWorkerServer } from './workerServer.js';
