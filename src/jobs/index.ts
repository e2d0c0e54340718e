/** The jobs folder's public surface: what the API layers and the server may use. */
export { JobService } from './JobService.js';
export type { JobClassifier, JobServiceOptions, JobStats, ListJobsInput } from './JobService.js';
export { MemoryJobStore } from './MemoryJobStore.js';
export { rankBySimilarity } from './similarity.js';
export type { SimilarityMatch, SimilarityRanking } from './similarity.js';
export type { MemoryJobStoreOptions } from './MemoryJobStore.js';
export { InvalidCursorError } from './JobStore.js';
export type { JobPage, JobStore, ListJobsOptions } from './JobStore.js';
export { MemoryJobEvents } from './JobEvents.js';
export type { JobEventListener, JobEventMap, JobEventName, JobEvents } from './JobEvents.js';
export { isTerminal, JOB_STATUSES, JOB_TASKS, TERMINAL_STATUSES } from './types.js';
export type {
  ClassificationResult,
  EmbeddingResult,
  EmbeddingTask,
  ImageClassification,
  Job,
  JobFailure,
  JobResult,
  JobStatus,
  JobTask,
  SubmitClassificationInput,
  SubmitImageEmbeddingInput,
  SubmitImages,
  SubmitJobInput,
  SubmitTextEmbeddingInput,
} from './types.js';
