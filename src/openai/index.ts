/** The OpenAI-compatible API's public surface: its router, its dependencies and its error writer (for the key check). */
export { createOpenAiRouter } from './router.js';
export type { OpenAiDeps, OpenAiJobs, OpenAiModels } from './deps.js';
export { openAiError, sendOpenAiError, toOpenAiError } from './errors.js';
export type { OpenAiErrorBody } from './errors.js';
export { fromBase64Float32, toBase64Float32 } from './response.js';
