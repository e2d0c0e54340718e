/** The http folder's public surface: the pieces of the HTTP side each role assembles (src/roles/). */
export { createApiApp } from './apiApp.js';
export type { ApiAppOptions } from './apiApp.js';
export { createWorkerApp } from './workerApp.js';
export type { WorkerAppOptions } from './workerApp.js';
export { closeHttpServer, createHttpServer, listen } from './httpServer.js';
export type { ServerAddress } from './httpServer.js';
export { createGraphqlTransport } from './graphqlTransport.js';
export type { GraphqlTransport, GraphqlTransportOptions } from './graphqlTransport.js';
export { createAuth } from './auth.js';
export type { Auth } from './auth.js';
export { createHostCheck } from './allowedHosts.js';
export { createMetrics } from './metrics.js';
export type { Metrics, MetricsSources } from './metrics.js';
export type { Readiness } from './health.js';
