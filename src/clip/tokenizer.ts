/**
 * The text tokenizer a model gets: the tokenizer families of the text room (text/index.ts), picked from the files.
 * Kept as the one import point for the model code, so the room's surface is used, never its modules.
 */
export { loadTextTokenizer, padIds } from './text/index.js';
export type { TextClean, TextTokenizer, TextTokenizerOptions, TokenizerFamily } from './text/index.js';
