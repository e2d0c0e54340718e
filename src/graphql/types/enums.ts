/**
 * GraphQL enums over the domain's string unions: the GraphQL names are SCREAMING_CASE, the internal
 * values are the domain's own strings, so resolvers pass `job.status` through unchanged.
 */
import { registerEnumType } from 'type-graphql';
import type { LayoutName, LoadPolicy, ModelInfo, Precision, ScoringKind } from '../../clip/index.js';
import type { JobStatus, JobTask } from '../../jobs/index.js';

export const JobStatusEnum = {
  QUEUED: 'queued',
  RUNNING: 'running',
  COMPLETE: 'complete',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
} as const satisfies Record<string, JobStatus>;

export const JobTaskEnum = {
  CLASSIFICATION: 'classification',
  IMAGE_EMBEDDING: 'image-embedding',
  TEXT_EMBEDDING: 'text-embedding',
} as const satisfies Record<string, JobTask>;

export const ModelStatusEnum = {
  UNINITIALIZED: 'uninitialized',
  STARTING: 'starting',
  LOADING: 'loading',
  READY: 'ready',
  STOPPING: 'stopping',
  STOPPED: 'stopped',
  FAILED: 'failed',
} as const satisfies Record<string, ModelInfo['status']>;

export const ModelLoadEnum = {
  EAGER: 'eager',
  LAZY: 'lazy',
} as const satisfies Record<string, LoadPolicy>;

export const PrecisionEnum = {
  FP32: 'fp32',
  FP16: 'fp16',
  INT8: 'int8',
} as const satisfies Record<string, Precision>;

export const ScoringEnum = {
  SOFTMAX: 'softmax',
  SIGMOID: 'sigmoid',
} as const satisfies Record<string, ScoringKind>;

export const ModelLayoutEnum = {
  HF_CLIP: 'hf-clip',
  HF_SIGLIP: 'hf-siglip',
  IMMICH: 'immich',
} as const satisfies Record<string, LayoutName>;

registerEnumType(JobStatusEnum, {
  name: 'JobStatus',
  description: 'Where a job is in its lifecycle: QUEUED → RUNNING → COMPLETE | FAILED | CANCELLED.',
});
registerEnumType(JobTaskEnum, {
  name: 'JobTask',
  description:
    'What a job computes: class probabilities per image (CLASSIFICATION, `result`), or one vector per image or text (IMAGE_EMBEDDING, TEXT_EMBEDDING, `embeddings`).',
});
registerEnumType(ModelStatusEnum, {
  name: 'ModelStatus',
  description:
    'Where a model is in its lifecycle: UNINITIALIZED (lazy, never started) → STARTING (fetching files) → LOADING (sessions) → READY → STOPPING (finishing its running jobs) → STOPPED; FAILED when a start failed. A job on an UNINITIALIZED or STOPPED model starts it and waits QUEUED.',
});
registerEnumType(ModelLoadEnum, {
  name: 'ModelLoad',
  description: 'When a model is loaded: EAGER at server start, LAZY on its first job or startModel.',
});
registerEnumType(PrecisionEnum, { name: 'Precision', description: 'Which ONNX variant of a model runs.' });
registerEnumType(ScoringEnum, {
  name: 'Scoring',
  description:
    'How cosine similarities become probabilities. SOFTMAX (CLIP): softmax over the classes of logitScale · cos; each row sums to 1. SIGMOID (SigLIP): sigmoid(logitScale · cos + logitBias) for each class on its own; rows do not sum to 1.',
});
registerEnumType(ModelLayoutEnum, {
  name: 'ModelLayout',
  description:
    "The model's file layout: HF_CLIP (Hugging Face CLIP ONNX export: onnx/*.onnx), HF_SIGLIP (Hugging Face SigLIP ONNX export, same files, model_type siglip) or IMMICH (immich's OpenCLIP/M-CLIP export: visual/ + textual/).",
});
