/** The classifiers folder's public surface: stored zero-shot classifiers, their stores and the presets. */
export { ClassifierService } from './ClassifierService.js';
export type { ClassifierModels, ClassifierServiceOptions, CreateClassifierInput } from './ClassifierService.js';
export type { ClassifierStore } from './ClassifierStore.js';
export type { ClassifierRunner } from './weightBuilder.js';
export { MemoryClassifierBus } from './bus.js';
export type { ClassifierBus, ClassifierMessage } from './bus.js';
export { CLAIM_MS, RedisClassifierBus } from './redis/RedisClassifierBus.js';
export type { RedisClassifierBusOptions } from './redis/RedisClassifierBus.js';
export { MemoryClassifierStore } from './memory/MemoryClassifierStore.js';
export type { MemoryClassifierStoreOptions } from './memory/MemoryClassifierStore.js';
export { RedisClassifierStore } from './redis/RedisClassifierStore.js';
export type { RedisClassifierStoreOptions } from './redis/RedisClassifierStore.js';
export { PRESETS, PRESET_IDS } from './presets.js';
export type { Preset } from './presets.js';
export { buildOn } from './types.js';
export type { Classifier, ClassifierBuild, ClassifierFailure, ClassifierStatus } from './types.js';
