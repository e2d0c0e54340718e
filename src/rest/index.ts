/** The rest folder's public surface: the FES router and the REST error exit the HTTP server mounts. */
export { createRestRouter } from './router.js';
export type { ClipModels, JobSubmitter, RestDeps } from './router.js';
export { sendRestError, toRestError } from './errors.js';
