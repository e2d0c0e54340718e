/**
 * The server's configuration: the only module that reads environment variables and command-line flags.
 *
 * Every setting is an environment variable AND a flag (the env name in kebab case: `MAX_BATCH_SIZE` →
 * `--max-batch-size`); a flag wins over the environment, the environment over the default. Values are
 * parsed and validated here ("expected X, got Y"), and the result is one frozen, typed `Config`.
 * `loadConfig` is pure: it reads only the `argv` and `env` it is given.
 */
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { parseModelOptions } from './clip/modelOptions.js';
import { PRECISIONS, type Precision } from './clip/types.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from './clip/runtime/executionProviders.js';
import type { LogFormatSetting } from './logger.js';

/** What this process runs: everything (one process), the API only, or the inference worker only (issue 9). */
export type Role = 'all' | 'api' | 'worker';
export const ROLES: readonly Role[] = ['all', 'api', 'worker'];

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** A model to load besides the default one (`CLIP_MODELS=name=source,…`). */
export interface ExtraModel {
  readonly name: string;
  readonly source: string;
}

/** The whole, validated configuration. Field docs (defaults, units) live in the setting table below. */
export interface Config {
  readonly role: Role;
  readonly redisUrl: string | undefined;
  readonly redisKeyPrefix: string;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
  readonly port: number;
  readonly host: string;
  readonly clipModel: string;
  readonly clipModels: readonly ExtraModel[];
  readonly clipPrecision: Precision;
  readonly modelCacheDir: string;
  readonly hfEndpoint: string;
  readonly hfToken: string | undefined;
  readonly hfHubOffline: boolean;
  readonly downloadProgress: boolean;
  readonly maxBatchSize: number;
  readonly maxBatchWaitMs: number;
  readonly maxTextBatchSize: number;
  readonly maxQueuedImages: number;
  readonly ortIntraOpThreads: number;
  /** Undefined: the runtime decides by the image graph (runtime/replicas.ts). */
  readonly visionReplicas: number | undefined;
  readonly ortGraphOptimization: GraphOptimizationLevel;
  readonly ortAllowSpinning: boolean;
  readonly ortExecutionProviders: readonly ExecutionProvider[];
  readonly logitScale: number | undefined;
  readonly preprocessConcurrency: number;
  readonly preprocessWorkers: number;
  readonly exactResizeMaxPixels: number;
  readonly textCacheSize: number;
  readonly imageCacheSize: number;
  readonly maxImagesPerJob: number;
  readonly maxClassesPerJob: number;
  readonly maxClassLength: number;
  readonly maxTextsPerJob: number;
  readonly maxTextLength: number;
  readonly maxPromptsPerJob: number;
  readonly maxImageBytes: number;
  readonly maxImagePixels: number;
  readonly maxBodyBytes: number;
  readonly maxQueryDepth: number;
  readonly maxQueryComplexity: number;
  readonly wsDocumentCacheBytes: number;
  readonly maxAliases: number;
  readonly maxQueuedJobs: number;
  readonly maxConcurrentJobs: number;
  readonly maxPendingImageBytes: number;
  readonly jobTtlSeconds: number;
  readonly drainTimeoutMs: number;
  readonly shutdownGraceMs: number;
  readonly corsOrigins: readonly string[];
  readonly introspection: boolean;
  readonly graphiql: boolean;
  readonly webUi: boolean;
  readonly apiKeys: readonly string[];
  readonly adminApiKeys: readonly string[];
  readonly modelIdleStopSeconds: number;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormatSetting;
}

/** One row of the settings table (docs/configuration.md, `--help`). */
export interface SettingDoc {
  env: string;
  flag: string;
  /** The default as a human reads it (`4000`, `none`, `os.availableParallelism()`). */
  default: string;
  description: string;
}

/** A setting's value was malformed or out of range; the message names the variable and the flag. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

interface SettingSpec<T> {
  env: string;
  description: string;
  /** The default, computed from the machine when it depends on it. */
  defaultValue: T | (() => T);
  /** How the default reads in docs, when `String(defaultValue)` would not do. */
  defaultText?: string;
  parse: (raw: string) => T;
  /** Booleans may be given as a bare flag (`--hf-hub-offline`). */
  boolean?: boolean;
}

type SettingSpecs = { [K in keyof Config]: SettingSpec<Config[K]> };

const MiB = 1024 * 1024;

// ---- value parsers: each throws "expected …, got …" (the caller adds the setting's name) ----

function integer(min: number, max = Number.MAX_SAFE_INTEGER): (raw: string) => number {
  return (raw) => {
    const value = Number(raw.trim());
    if (raw.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
      throw new Error(`expected an integer ${range}, got ${JSON.stringify(raw)}`);
    }
    return value;
  };
}

function positiveNumber(raw: string): number {
  const value = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`expected a positive number, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function optional<T>(parse: (raw: string) => T): (raw: string) => T | undefined {
  return (raw) => (raw.trim() === '' ? undefined : parse(raw));
}

const BYTE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: MiB, mb: 1e6, mib: MiB, g: 1024 * MiB, gb: 1e9, gib: 1024 * MiB,
};

/** A byte count: a plain integer or a number with a unit (`20MiB`, `100 MB`, `512k`). */
function bytes(min: number): (raw: string) => number {
  return (raw) => {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
    const unit = BYTE_UNITS[match?.[2]?.toLowerCase() ?? 'x'];
    const value = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : NaN;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new Error(`expected a byte count >= ${min} (e.g. 1048576, 20MiB, 100MB), got ${JSON.stringify(raw)}`);
    }
    return value;
  };
}

function boolean(raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new Error(`expected true or false (or 1/0, yes/no, on/off), got ${JSON.stringify(raw)}`);
}

function oneOf<T extends string>(values: readonly T[]): (raw: string) => T {
  return (raw) => {
    const value = raw.trim().toLowerCase();
    if ((values as readonly string[]).includes(value)) return value as T;
    throw new Error(`expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
  };
}

/** A comma list in priority order, each a known provider, none twice. */
function providerList(raw: string): ExecutionProvider[] {
  const parse = oneOf(EXECUTION_PROVIDERS);
  const providers = list(raw).map(parse);
  if (providers.length === 0) throw new Error(`expected a comma-separated list of ${EXECUTION_PROVIDERS.join(', ')}, got ${JSON.stringify(raw)}`);
  const twice = providers.find((provider, i) => providers.indexOf(provider) !== i);
  if (twice !== undefined) throw new Error(`expected each provider once, got ${JSON.stringify(twice)} twice`);
  return providers;
}

function nonEmpty(raw: string): string {
  if (raw.trim() === '') throw new Error('expected a non-empty string, got ""');
  return raw.trim();
}

function list(raw: string): string[] {
  return raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

function redisUrl(raw: string): string {
  try {
    const parsed = new URL(raw.trim());
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new Error('not redis');
  } catch {
    throw new Error(`expected a redis:// or rediss:// URL, got ${JSON.stringify(raw.replace(/\/\/[^@]*@/, '//***@'))}`);
  }
  return raw.trim();
}

function url(raw: string): string {
  try {
    const parsed = new URL(raw.trim());
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new Error(`expected an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  return raw.trim().replace(/\/+$/, '');
}

/** A model source with its per-model options (`source;logitScale=…;logitBias=…`), checked here and kept as written. */
function modelSource(raw: string): string {
  const { source } = parseModelOptions(raw);
  if (source === '') throw new Error(`expected a model source before its options, got ${JSON.stringify(raw)}`);
  return expandHome(raw.trim());
}

/** `name=source,…`; the source may itself contain `=`-free hub ids, paths or catalogue names. */
function modelList(raw: string): ExtraModel[] {
  const models = list(raw).map((item) => {
    const eq = item.indexOf('=');
    const name = item.slice(0, eq).trim();
    const source = item.slice(eq + 1).trim();
    if (eq <= 0 || name === '' || source === '') {
      throw new Error(`expected name=source pairs separated by commas, got ${JSON.stringify(item)}`);
    }
    return { name, source: modelSource(source) };
  });
  const names = new Set<string>();
  for (const { name } of models) {
    if (names.has(name)) throw new Error(`expected unique model names, got ${JSON.stringify(name)} twice`);
    names.add(name);
  }
  return models;
}

function originList(raw: string): string[] {
  return list(raw).map((origin) => {
    if (origin === '*') return origin;
    try {
      return new URL(origin).origin;
    } catch {
      throw new Error(`expected origins like https://app.example.com (or *), got ${JSON.stringify(origin)}`);
    }
  });
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const LOG_FORMATS: readonly LogFormatSetting[] = ['auto', 'json', 'pretty'];
const GRAPH_OPTIMIZATION_LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

/** Every setting, keyed by its Config field: a Config field without a setting is a compile error. */
const SETTINGS: SettingSpecs = {
  role: {
    env: 'ROLE',
    description:
      'What this process runs: all (API and inference in one process), api (GraphQL, REST, websockets; no model loaded; needs REDIS_URL) or worker (runs jobs from Redis; serves only /health, /ready, /metrics; needs REDIS_URL).',
    defaultValue: 'all',
    parse: oneOf(ROLES),
  },
  redisUrl: {
    env: 'REDIS_URL',
    description: 'Redis for jobs, queue and events (redis://[user:password@]host:port[/db]); none = in memory (ROLE=all only). With ROLE=all, jobs survive a restart.',
    defaultValue: undefined,
    defaultText: 'none (in memory)',
    parse: optional(redisUrl),
  },
  redisKeyPrefix: {
    env: 'REDIS_KEY_PREFIX',
    description: 'Prefix of every Redis key and channel, so several deployments can share one Redis.',
    defaultValue: 'clip',
    parse: nonEmpty,
  },
  lockDurationMs: {
    env: 'LOCK_DURATION_MS',
    description: "How long a worker's lock on a job lasts without renewal, in ms (renewed at half of it): a killed worker's jobs go to another worker after about this long.",
    defaultValue: 30_000,
    parse: integer(100),
  },
  stalledIntervalMs: {
    env: 'STALLED_INTERVAL_MS',
    description: 'How often each worker looks for jobs whose worker was lost, in ms.',
    defaultValue: 30_000,
    parse: integer(100),
  },
  maxStalledCount: {
    env: 'MAX_STALLED_COUNT',
    description: 'How many times a job may lose its worker and be run again; once more and it FAILS with WORKER_LOST.',
    defaultValue: 1,
    parse: integer(0, 1000),
  },
  port: { env: 'PORT', description: 'TCP port to listen on (0 = any free port).', defaultValue: 4000, parse: integer(0, 65535) },
  host: { env: 'HOST', description: 'Interface to listen on; 0.0.0.0 exposes the server to the network.', defaultValue: '127.0.0.1', parse: nonEmpty },
  clipModel: {
    env: 'CLIP_MODEL',
    description:
      'The default model: a catalogue name, a hub id (owner/name[@revision]) or a local directory, in either layout (Hugging Face CLIP or immich), optionally followed by per-model options: ;logitScale=N;logitBias=N.',
    defaultValue: 'clip-vit-base-patch32',
    parse: (raw) => modelSource(nonEmpty(raw)),
  },
  clipModels: {
    env: 'CLIP_MODELS',
    description:
      'More models, loaded in the background: name=source,… (a failure never takes the default down). A source may end in per-model options, e.g. name=immich-app/ViT-B-16-SigLIP__webli;logitScale=112.3;logitBias=-16.5 (a SigLIP model needs both unless the catalogue or its files give them).',
    defaultValue: [],
    defaultText: 'none',
    parse: modelList,
  },
  clipPrecision: { env: 'CLIP_PRECISION', description: 'ONNX variant to run: fp32, fp16 or int8.', defaultValue: 'fp32', parse: oneOf(PRECISIONS) },
  modelCacheDir: {
    env: 'MODEL_CACHE_DIR',
    description: 'Where downloaded model files are cached.',
    defaultValue: () => path.join(os.homedir(), '.cache', 'clip-server'),
    defaultText: '~/.cache/clip-server',
    parse: (raw) => path.resolve(expandHome(nonEmpty(raw))),
  },
  hfEndpoint: { env: 'HF_ENDPOINT', description: 'Base URL of the Hugging Face hub (or a mirror).', defaultValue: 'https://huggingface.co', parse: url },
  hfToken: { env: 'HF_TOKEN', description: 'Hub access token for gated or private models.', defaultValue: undefined, defaultText: 'none', parse: optional(nonEmpty) },
  hfHubOffline: { env: 'HF_HUB_OFFLINE', description: 'Never touch the network: use only cached or local model files.', defaultValue: false, parse: boolean, boolean: true },
  downloadProgress: { env: 'DOWNLOAD_PROGRESS', description: 'Show a progress bar on stderr (when a TTY) while downloading models.', defaultValue: true, parse: boolean, boolean: true },
  maxBatchSize: { env: 'MAX_BATCH_SIZE', description: 'Most images in one vision-model run.', defaultValue: 16, parse: integer(1, 1024) },
  maxBatchWaitMs: {
    env: 'MAX_BATCH_WAIT_MS',
    description: 'Longest wait, in ms, for a batch to fill when the model is idle (0: run at once; under load batches fill while the previous one runs).',
    defaultValue: 0,
    parse: integer(0, 60_000),
  },
  maxTextBatchSize: { env: 'MAX_TEXT_BATCH_SIZE', description: 'Most prompts in one text-model run.', defaultValue: 256, parse: integer(1, 65_536) },
  maxQueuedImages: {
    env: 'MAX_QUEUED_IMAGES',
    description: 'Images waiting for inference (all accepted, unfinished jobs); a job that would exceed it is refused with OVERLOADED.',
    defaultValue: 1024,
    parse: integer(1),
  },
  visionReplicas: {
    env: 'VISION_REPLICAS',
    description:
      'Copies of the image tower per model, each in its own worker running batches side by side and sharing ORT_INTRA_OP_THREADS (more throughput under load; a lone request runs on fewer threads). auto: 2 for an image graph whose batch is fixed at 1 (immich exports: two runs in flight, half the threads each; 1 when ORT_INTRA_OP_THREADS is 1), else 1.',
    defaultValue: undefined,
    defaultText: 'auto',
    parse: (raw) => (raw.trim().toLowerCase() === 'auto' ? undefined : integer(1, 64)(raw)),
  },
  ortIntraOpThreads: {
    env: 'ORT_INTRA_OP_THREADS',
    description: 'ONNX Runtime threads per model: the text tower uses them all, image-tower replicas share them.',
    defaultValue: () => os.availableParallelism(),
    defaultText: 'os.availableParallelism()',
    parse: integer(1, 1024),
  },
  ortGraphOptimization: {
    env: 'ORT_GRAPH_OPTIMIZATION',
    description: 'ONNX Runtime graph optimisation level: disabled, basic, extended or all.',
    defaultValue: 'all',
    parse: oneOf(GRAPH_OPTIMIZATION_LEVELS),
  },
  ortAllowSpinning: {
    env: 'ORT_ALLOW_SPINNING',
    description: 'Let idle ONNX Runtime threads spin for work; off leaves the cores to image decoding between runs.',
    defaultValue: false,
    parse: boolean,
    boolean: true,
  },
  ortExecutionProviders: {
    env: 'ORT_EXECUTION_PROVIDERS',
    description:
      'ONNX Runtime execution providers for every session, in priority order (comma list of cpu, webgpu, cuda, tensorrt, coreml, dml; nodes a provider cannot run fall back to the CPU). A provider the installed onnxruntime-node cannot use stops the start with how to install it; see [GPUs](models.md#gpus-execution-providers).',
    defaultValue: ['cpu'],
    defaultText: 'cpu',
    parse: providerList,
  },
  logitScale: {
    env: 'LOGIT_SCALE',
    description:
      "Override of the trained logit scale (softmax temperature) of every softmax (CLIP) model; a model's own logitScale option wins over it, and sigmoid (SigLIP) models ignore it. The model's own when unset.",
    defaultValue: undefined,
    defaultText: "the model's",
    parse: optional(positiveNumber),
  },
  preprocessConcurrency: {
    env: 'PREPROCESS_CONCURRENCY',
    description: 'Images decoded and resized at once (sharp).',
    defaultValue: () => Math.max(1, Math.min(4, os.availableParallelism())),
    defaultText: 'min(4, os.availableParallelism())',
    parse: integer(1, 256),
  },
  preprocessWorkers: {
    env: 'PREPROCESS_WORKERS',
    description:
      'Worker threads that decode, resize and normalise images (shared by all models), so preprocessing never holds the event loop. 0: on the event loop (decoding stays on libvips threads).',
    defaultValue: 1,
    parse: integer(0, 64),
  },
  exactResizeMaxPixels: {
    env: 'EXACT_RESIZE_MAX_PIXELS',
    description:
      "Downscales reading up to this many source pixels use the exact port of PIL's resampler in JavaScript (bit-identical to CLIP's reference); larger ones use libvips off-thread (within ~0.004 on photos). 0: libvips for every downscale.",
    defaultValue: 400_000,
    parse: integer(0),
  },
  textCacheSize: { env: 'TEXT_CACHE_SIZE', description: 'Prompt embeddings kept (LRU entries, per model).', defaultValue: 10_000, parse: integer(0) },
  imageCacheSize: { env: 'IMAGE_CACHE_SIZE', description: 'Image embeddings kept, keyed by content hash (LRU entries, per model).', defaultValue: 1_000, parse: integer(0) },
  maxImagesPerJob: { env: 'MAX_IMAGES_PER_JOB', description: 'Most images in one job (and files in one upload request).', defaultValue: 64, parse: integer(1, 100_000) },
  maxClassesPerJob: { env: 'MAX_CLASSES_PER_JOB', description: 'Most classes in one job.', defaultValue: 1000, parse: integer(1, 1_000_000) },
  maxPromptsPerJob: {
    env: 'MAX_PROMPTS_PER_JOB',
    description: 'Most prompts (classes × prompt templates) in one job; each new prompt costs a text-model run.',
    defaultValue: 10_000,
    parse: integer(1, 10_000_000),
  },
  maxClassLength: { env: 'MAX_CLASS_LENGTH', description: 'Longest class name, in characters (code points).', defaultValue: 1000, parse: integer(1, 1_000_000) },
  maxTextsPerJob: { env: 'MAX_TEXTS_PER_JOB', description: 'Most texts in one text-embedding job.', defaultValue: 1000, parse: integer(1, 1_000_000) },
  maxTextLength: {
    env: 'MAX_TEXT_LENGTH',
    description: "Longest text to embed, in characters (code points); the model reads at most its context length (77 tokens for CLIP), the rest is cut as FES's tokenizer does.",
    defaultValue: 10_000,
    parse: integer(1, 10_000_000),
  },
  maxImageBytes: { env: 'MAX_IMAGE_BYTES', description: 'Largest encoded image, in bytes (after base64 decoding; an uploaded file is cut off and refused at it).', defaultValue: 20 * MiB, defaultText: '20MiB', parse: bytes(1) },
  maxImagePixels: {
    env: 'MAX_IMAGE_PIXELS',
    description: 'Largest image, in pixels (width × height), checked from the header before decoding.',
    defaultValue: 40_000_000,
    parse: integer(1),
  },
  maxBodyBytes: {
    env: 'MAX_BODY_BYTES',
    description: 'Largest HTTP request body, in bytes (413 over it; uploads are counted as they stream). Bounds a whole job: 64 images of ~1.5 MB each fit in the default.',
    defaultValue: 100 * MiB,
    defaultText: '100MiB',
    parse: bytes(1024),
  },
  maxQueryDepth: { env: 'MAX_QUERY_DEPTH', description: 'Deepest GraphQL selection (introspection fields excluded).', defaultValue: 10, parse: integer(1, 1000) },
  maxQueryComplexity: {
    env: 'MAX_QUERY_COMPLEXITY',
    description: 'Highest GraphQL operation cost (1 per field; list fields multiply by their `first`/`k`).',
    defaultValue: 5000,
    parse: integer(1),
  },
  wsDocumentCacheBytes: {
    env: 'WS_DOCUMENT_CACHE_BYTES',
    description: 'Parsed and validated websocket documents kept for reuse, by size (a subscription sent again skips parsing and validation, as Apollo does over HTTP); 0 turns it off.',
    defaultValue: 16 * MiB,
    defaultText: '16MiB',
    parse: bytes(0),
  },
  maxAliases: { env: 'MAX_ALIASES', description: 'Most aliased fields in one GraphQL document.', defaultValue: 30, parse: integer(0, 100_000) },
  maxQueuedJobs: {
    env: 'MAX_QUEUED_JOBS',
    description: 'Most queued plus running jobs; more are refused with OVERLOADED (HTTP 429 on REST).',
    defaultValue: 256,
    parse: integer(1),
  },
  maxConcurrentJobs: {
    env: 'MAX_CONCURRENT_JOBS',
    description: 'Jobs handed to the model at once (the rest wait QUEUED); enough to fill batches across jobs.',
    defaultValue: 32,
    parse: integer(1, 100_000),
  },
  maxPendingImageBytes: {
    env: 'MAX_PENDING_IMAGE_BYTES',
    description: 'Encoded image bytes held by accepted, unfinished jobs; a job that would exceed it is refused with OVERLOADED.',
    defaultValue: 512 * MiB,
    defaultText: '512MiB',
    parse: bytes(1024),
  },
  jobTtlSeconds: { env: 'JOB_TTL_SECONDS', description: 'How long a job (and its result) is kept, in seconds, counted from its last change.', defaultValue: 3600, parse: integer(1) },
  drainTimeoutMs: {
    env: 'DRAIN_TIMEOUT_MS',
    description: 'On SIGTERM/SIGINT, the longest wait, in ms, for accepted jobs to finish; jobs still unfinished then FAIL with SHUTTING_DOWN.',
    defaultValue: 30_000,
    parse: integer(0),
  },
  shutdownGraceMs: {
    env: 'SHUTDOWN_GRACE_MS',
    description:
      'Hard deadline, in ms: DRAIN_TIMEOUT_MS + this after a first SIGTERM/SIGINT, or this after a second, whatever is still pending is logged and the process exits 1 (once the ONNX runs then in flight return, at most this again).',
    defaultValue: 5_000,
    parse: integer(0),
  },
  corsOrigins: {
    env: 'CORS_ORIGINS',
    description: 'Browser origins allowed to call the API (comma-separated, or *); none by default.',
    defaultValue: [],
    defaultText: 'none',
    parse: originList,
  },
  introspection: { env: 'INTROSPECTION', description: 'Allow GraphQL introspection (turn off in production).', defaultValue: true, parse: boolean, boolean: true },
  graphiql: { env: 'GRAPHIQL', description: 'Serve GraphiQL at GET /graphql for browsers (turn off in production).', defaultValue: true, parse: boolean, boolean: true },
  webUi: {
    env: 'WEB_UI',
    description: 'Serve the classification page at GET / (built by npm run build; it uses the public API, so API_KEYS apply).',
    defaultValue: true,
    parse: boolean,
    boolean: true,
  },
  apiKeys: {
    env: 'API_KEYS',
    description: 'Comma-separated API keys; when set, /graphql and /api need `Authorization: Bearer <key>` or `x-api-key` (websocket: connection_init { apiKey }).',
    defaultValue: [],
    defaultText: 'none (auth off)',
    parse: list,
  },
  adminApiKeys: {
    env: 'ADMIN_API_KEYS',
    description:
      'Comma-separated API keys that may also start and stop models (POST /api/models/{model}/start|stop, startModel, stopModel); each is a valid API key too. With API_KEYS set and no admin key, model control is refused (403 FORBIDDEN); with no keys at all it is open.',
    defaultValue: [],
    defaultText: 'none',
    parse: list,
  },
  modelIdleStopSeconds: {
    env: 'MODEL_IDLE_STOP_SECONDS',
    description:
      'Stop a model that has run no job for this many seconds, releasing its memory; its next job starts it again (and waits QUEUED while it loads). 0 never stops an idle model.',
    defaultValue: 0,
    parse: integer(0),
  },
  logLevel: { env: 'LOG_LEVEL', description: 'pino log level; debug adds stack traces to expected errors (a model that cannot load, …).', defaultValue: 'info', parse: oneOf(LOG_LEVELS) },
  logFormat: {
    env: 'LOG_FORMAT',
    description: 'Log lines: json (one JSON object a line), pretty (human-readable, pino-pretty) or auto (pretty when stdout is a terminal, else json).',
    defaultValue: 'auto',
    parse: oneOf(LOG_FORMATS),
  },
};

function flagOf(env: string): string {
  return `--${env.toLowerCase().replace(/_/g, '-')}`;
}

function attributeOf(env: string): string {
  return env.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function defaultTextOf(spec: SettingSpec<unknown>): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value = typeof spec.defaultValue === 'function' ? (spec.defaultValue as () => unknown)() : spec.defaultValue;
  return String(value);
}

const SETTING_ENTRIES = Object.entries(SETTINGS) as [keyof Config, SettingSpec<unknown>][];

/** The settings table: every env variable, its flag, default and meaning (for docs/configuration.md through `npm run docs`, and `--help`). */
export function describeSettings(): SettingDoc[] {
  return SETTING_ENTRIES.map(([, spec]) => ({
    env: spec.env,
    flag: flagOf(spec.env),
    default: defaultTextOf(spec),
    description: spec.description,
  }));
}

function buildCommand(): Command {
  const command = new Command('clip-server')
    .description('Zero-shot image classification server (GraphQL + REST) over CLIP.')
    .exitOverride()
    .allowExcessArguments(false)
    // Help and errors go through the caller (main prints them); loadConfig itself writes nothing.
    .configureOutput({ writeOut: () => {}, writeErr: () => {} });
  for (const [, spec] of SETTING_ENTRIES) {
    const flags = spec.boolean === true ? `${flagOf(spec.env)} [value]` : `${flagOf(spec.env)} <value>`;
    const option = new Option(flags, `${spec.description} (env ${spec.env}; default ${defaultTextOf(spec)})`);
    command.addOption(option);
  }
  return command;
}

/** `--help` text (main prints it). */
export function helpText(): string {
  return buildCommand().helpInformation();
}

/** Thrown for `--help`: not an error, main prints the help and exits 0. */
export class HelpRequested extends Error {
  override name = 'HelpRequested';
}

/**
 * Parses `argv` (user arguments only, without `node` and the script) and `env` into a frozen Config.
 * Throws ConfigError naming the variable and flag for a malformed value, HelpRequested for `--help`.
 */
export function loadConfig(argv: readonly string[] = [], env: Readonly<Record<string, string | undefined>> = {}): Config {
  const command = buildCommand();
  try {
    command.parse([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.help') throw new HelpRequested(helpText());
      throw new ConfigError(error.message.replace(/^error: /, ''));
    }
    throw error;
  }
  const flags = command.opts<Record<string, string | true | undefined>>();

  const values: Record<string, unknown> = {};
  for (const [key, spec] of SETTING_ENTRIES) {
    const flag = flags[attributeOf(spec.env)];
    const raw = flag === true ? 'true' : (flag ?? env[spec.env]);
    if (raw === undefined) {
      values[key] = typeof spec.defaultValue === 'function' ? (spec.defaultValue as () => unknown)() : spec.defaultValue;
      continue;
    }
    try {
      values[key] = spec.parse(raw);
    } catch (error) {
      const source = flag === undefined ? spec.env : `${flagOf(spec.env)} (${spec.env})`;
      throw new ConfigError(`${source}: ${(error as Error).message}`);
    }
  }
  return finalizeConfig(values as unknown as Config);
}

/**
 * Checks the rules between settings and freezes the result. Exported so tests and embedders can build a
 * Config from `loadConfig()` defaults plus overrides and still get it validated.
 */
export function finalizeConfig(config: Config): Config {
  // A single image at the byte limit, base64-encoded (4/3) in a JSON body, must fit the body limit,
  // otherwise MAX_IMAGE_BYTES would be a promise the server cannot keep.
  const oneImageBody = Math.ceil(config.maxImageBytes / 3) * 4 + 64 * 1024;
  if (config.maxBodyBytes < oneImageBody) {
    throw new ConfigError(
      `MAX_BODY_BYTES: expected at least ${oneImageBody} (one base64 image of MAX_IMAGE_BYTES=${config.maxImageBytes} plus 64 KiB), got ${config.maxBodyBytes}`,
    );
  }
  if (config.maxQueuedImages < config.maxImagesPerJob) {
    throw new ConfigError(
      `MAX_QUEUED_IMAGES: expected at least MAX_IMAGES_PER_JOB (${config.maxImagesPerJob}) so a full job can be admitted, got ${config.maxQueuedImages}`,
    );
  }
  if (config.maxPendingImageBytes < config.maxImageBytes) {
    throw new ConfigError(
      `MAX_PENDING_IMAGE_BYTES: expected at least MAX_IMAGE_BYTES (${config.maxImageBytes}), got ${config.maxPendingImageBytes}`,
    );
  }
  if (config.role !== 'all' && config.redisUrl === undefined) {
    throw new ConfigError(`REDIS_URL: expected a Redis URL for ROLE=${config.role} (API and worker processes meet in Redis), got none`);
  }
  if (config.clipModels.some((model) => model.name === config.clipModel)) {
    throw new ConfigError(`CLIP_MODELS: expected names other than the default model, got ${JSON.stringify(config.clipModel)}`);
  }
  return Object.freeze({
    ...config,
    clipModels: Object.freeze(config.clipModels.map((model) => Object.freeze({ ...model }))),
    corsOrigins: Object.freeze([...config.corsOrigins]),
    apiKeys: Object.freeze([...config.apiKeys]),
    adminApiKeys: Object.freeze([...config.adminApiKeys]),
    ortExecutionProviders: Object.freeze([...config.ortExecutionProviders]),
  });
}
