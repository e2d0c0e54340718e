/**
 * The hub's surface: the only code that talks to the Hugging Face hub (or a mirror), downloading a model's files once
 * into the cache. Which files a model needs is each layout's declaration (layouts/), read through the layout registry.
 */
export type { HubRepoRef } from './cacheLayout.js';
export { fetchModelFiles, type FetchModelFilesOptions } from './fetchModelFiles.js';
export type { HubClientOptions } from './hubContext.js';
export { HubError, type HubErrorReason } from './hubError.js';
