/** The jobs folder's public surface: what the API layers, the server and the roles may use. */
export { JobService } from './JobService.js';
export { assertOperator, canAccess, OPEN_CALLER, ownerLabel, visibleTo } from './caller.js';
export type { Caller } from './caller.js';
export type { ModelControl } from './modelControl.js';
export type { JobServiceLimits, JobServiceOptions, JobStats, ListJobsInput } from './JobService.js';
export type { FetchImageUrl, JobClassifier, SubmissionLimits } from './validation.js';
export type { AdmissionSettings } from './admission.js';
export type { ClassifierPlan, JobClassifiers } from './classifierPort.js';
export { JobWorker } from './JobWorker.js';
export { createJobs } from './createJobs.js';
export type { CreateJobsOptions, Jobs, JobsLimits } from './createJobs.js';
export type { JobRunner, JobWorkerOptions } from './JobWorker.js';
export { MemoryJobStore } from './memory/MemoryJobStore.js';
export type { MemoryJobStoreOptions } from './memory/MemoryJobStore.js';
export { MemoryJobEvents } from './memory/MemoryJobEvents.js';
export { MemoryJobQueue } from './memory/MemoryJobQueue.js';
export { rankBySimilarity } from './similarity.js';
export type { SimilarityMatch, SimilarityRanking } from './similarity.js';
export { InvalidCursorError } from './JobStore.js';
export type { JobPage, JobStore, ListJobsOptions } from './JobStore.js';
export type { RetentionStats } from './retention.js';
export type { JobEventListener, JobEventMap, JobEventName, JobEvents } from './JobEvents.js';
export type {
  Admission,
  AdmissionLimit,
  AdmissionLimits,
  OwnerCounts,
  GiveUpReason,
  JobHandler,
  JobQueue,
  JobWork,
  QueueCounts,
  Reservation,
  TakenWork,
} from './JobQueue.js';
export { jobFromJSON, jobToJSON } from './serialise.js';
export { mergeModelViews } from './redis/index.js';
// The Redis boundary, for other folders' Redis stores (classifiers): one connection kind and one error mapping.
export {
  closeConnection,
  createCommandConnection,
  createWaitingConnection,
  viaRedis,
  whenReady,
} from './redis/connection.js';
export type { Redis } from './redis/connection.js';
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
