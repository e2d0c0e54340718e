/**
 * The server's configuration: the only module that reads environment variables and command-line flags, and the one
 * home of every default (the SETTINGS table).
 *
 * This file stays over 450 lines on purpose: the table is one piece, because it is the single place a reader (and
 * `npm run docs`, and `--help`) finds every setting with its default, unit and meaning, in the order the defaults
 * are computed (a default may depend on the settings above it), and its type makes a Config field without a row a
 * compile error. Splitting it by topic would put defaults in several homes again. What is not the table lives
 * beside it: the value parsers (configParsers.ts), flags, help and the reference rows (configCommand.ts), and the
 * allowed host names (configHosts.ts).
 *
 * Every setting is an environment variable AND a flag (the env name in kebab case: `MAX_BATCH_SIZE` →
 * `--max-batch-size`); a flag wins over the environment, the environment over the default. Values are
 * parsed and validated ("expected X, got Y"), and the result is one frozen, typed `Config`.
 * `loadConfig` is pure: it reads only the `argv` and `env` it is given.
 */
import os from 'node:os';
import path from 'node:path';
import {
  ConfigError,
  describeSettingRows,
  helpTextOf,
  readSettings,
  type SettingDoc,
  type SettingEntries,
  type SettingSpec,
} from './configCommand.js';
import {
  allowedHostList,
  boolean,
  bytes,
  cidrList,
  expandHome,
  integer,
  list,
  modelList,
  modelSource,
  nonEmpty,
  oneOf,
  optional,
  originList,
  positiveNumber,
  providerList,
  redisUrl,
  url,
  type AllowedHostsSetting,
  type ExtraModel,
} from './configParsers.js';
import type { LogFormatSetting } from './logger.js';

export { ConfigError, HelpRequested } from './configCommand.js';
export type { SettingDoc } from './configCommand.js';
export { allowedHostNames } from './configHosts.js';
export { LOAD_POLICIES, MODEL_OPTION_KEYS, parseModelOptions } from './configParsers.js';
export type { AllowedHostsSetting, ExtraModel, LoadPolicy, ModelOptions } from './configParsers.js';

/** What this process runs: everything (one process), the API only, or the inference worker only. */
export type Role = 'all' | 'api' | 'worker';
export const ROLES: readonly Role[] = ['all', 'api', 'worker'];

/** Whether images may be given as http(s) URLs the server fetches: `public` destinations only, or not at all. */
export type ImageUrlsMode = 'public' | 'off';
export const IMAGE_URLS_MODES: readonly ImageUrlsMode[] = ['public', 'off'];

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** Which ONNX variant of a model to run: `fp32` → `*.onnx`, `fp16` → `*_fp16.onnx`, `int8` → `*_quantized.onnx`. */
export type Precision = 'fp32' | 'fp16' | 'int8';
export const PRECISIONS: readonly Precision[] = ['fp32', 'fp16', 'int8'];

/** The providers onnxruntime-node 1.30 can be built with, in the names its `executionProviders` option takes. */
export const EXECUTION_PROVIDERS = ['cpu', 'webgpu', 'cuda', 'tensorrt', 'coreml', 'dml'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/** The whole, validated configuration. Field docs (defaults, units) live in the setting table below. */
export interface Config {
  readonly role: Role;
  readonly redisUrl: string | undefined;
  readonly redisKeyPrefix: string;
  readonly redisConnectTimeoutMs: number;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
  readonly port: number;
  readonly host: string;
  readonly allowedHosts: AllowedHostsSetting;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
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
  readonly ortTelemetry: boolean;
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
  readonly maxClassifierPrompts: number;
  readonly maxClassifiers: number;
  readonly classifierPresets: readonly string[];
  readonly maxImageBytes: number;
  readonly maxImagePixels: number;
  readonly imageUrls: ImageUrlsMode;
  readonly imageUrlAllowedNetworks: readonly string[];
  readonly imageUrlMaxRedirects: number;
  readonly imageUrlTimeoutMs: number;
  readonly imageUrlConcurrency: number;
  readonly maxBodyBytes: number;
  readonly maxJsonDepth: number;
  readonly maxJsonValues: number;
  readonly maxQueryDepth: number;
  readonly maxQueryComplexity: number;
  readonly maxResponseBytes: number;
  readonly maxDocumentBytes: number;
  readonly maxDocumentTokens: number;
  readonly httpDocumentCacheBytes: number;
  readonly wsDocumentCacheBytes: number;
  readonly maxAliases: number;
  readonly maxQueuedJobs: number;
  readonly maxQueuedJobsPerKey: number;
  readonly maxQueuedImagesPerKey: number;
  readonly maxConcurrentJobs: number;
  readonly maxPendingImageBytes: number;
  readonly jobTtlSeconds: number;
  readonly maxRetainedJobBytes: number;
  readonly drainTimeoutMs: number;
  readonly httpStopGraceMs: number;
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

type SettingSpecs = { [K in keyof Config]: SettingSpec<Config[K]> };

const MiB = 1024 * 1024;

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
    description:
      'Redis for jobs, queue and events (redis://[user:password@]host:port[/db]); none = in memory (ROLE=all only). With ROLE=all, jobs survive a restart.',
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
  redisConnectTimeoutMs: {
    env: 'REDIS_CONNECT_TIMEOUT_MS',
    description:
      'At start, the longest wait, in ms, for Redis before the process serves anyway (an API answers SERVICE_UNAVAILABLE and a worker takes no job until Redis is back).',
    defaultValue: 5_000,
    parse: integer(1),
  },
  lockDurationMs: {
    env: 'LOCK_DURATION_MS',
    description:
      "How long a worker's lock on a job lasts without renewal, in ms (renewed at half of it): a killed worker's jobs go to another worker after about this long.",
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
  port: {
    env: 'PORT',
    description: 'TCP port to listen on (0 = any free port).',
    defaultValue: 4000,
    parse: integer(0, 65535),
  },
  host: {
    env: 'HOST',
    description: 'Interface to listen on; 0.0.0.0 exposes the server to the network.',
    defaultValue: '127.0.0.1',
    parse: nonEmpty,
  },
  allowedHosts: {
    env: 'ALLOWED_HOSTS',
    description:
      'Host names requests may be addressed to (the `Host` header, any port), on every route and websocket; another gets 403 FORBIDDEN_HOST. A web page whose own name resolves to this server (DNS rebinding) sends its name. auto: when HOST is an address of its own (the default 127.0.0.1), only localhost, 127.0.0.1, [::1] and HOST; when HOST is 0.0.0.0 or :: (all interfaces), any. Otherwise a comma list of names (exactly those), or * for any.',
    defaultValue: 'auto',
    parse: allowedHostList,
  },
  headersTimeoutMs: {
    env: 'HEADERS_TIMEOUT_MS',
    description:
      "Longest time, in ms, a client may take to send a request's headers; then it gets 408 and the connection is closed. A client that holds connections open by sending headers slowly holds each for at most this long; real clients send headers in milliseconds.",
    defaultValue: 20_000,
    parse: integer(100),
  },
  requestTimeoutMs: {
    env: 'REQUEST_TIMEOUT_MS',
    description:
      'Longest time, in ms, a client may take to send a whole request, headers and body; then it gets 408 and the connection is closed (answering takes as long as it takes). The default lets a full MAX_BODY_BYTES upload arrive at about 1 MB/s. At least HEADERS_TIMEOUT_MS.',
    defaultValue: 120_000,
    parse: integer(100),
  },
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
  clipPrecision: {
    env: 'CLIP_PRECISION',
    description: 'ONNX variant to run: fp32, fp16 or int8.',
    defaultValue: 'fp32',
    parse: oneOf(PRECISIONS),
  },
  modelCacheDir: {
    env: 'MODEL_CACHE_DIR',
    description: 'Where downloaded model files are cached.',
    defaultValue: () => path.join(os.homedir(), '.cache', 'clip-server'),
    defaultText: '~/.cache/clip-server',
    parse: (raw) => path.resolve(expandHome(nonEmpty(raw))),
  },
  hfEndpoint: {
    env: 'HF_ENDPOINT',
    description: 'Base URL of the Hugging Face hub (or a mirror).',
    defaultValue: 'https://huggingface.co',
    parse: url,
  },
  hfToken: {
    env: 'HF_TOKEN',
    description: 'Hub access token for gated or private models.',
    defaultValue: undefined,
    defaultText: 'none',
    parse: optional(nonEmpty),
  },
  hfHubOffline: {
    env: 'HF_HUB_OFFLINE',
    description: 'Never touch the network: use only cached or local model files.',
    defaultValue: false,
    parse: boolean,
    boolean: true,
  },
  downloadProgress: {
    env: 'DOWNLOAD_PROGRESS',
    description: 'Show a progress bar on stderr (when a TTY) while downloading models.',
    defaultValue: true,
    parse: boolean,
    boolean: true,
  },
  maxBatchSize: {
    env: 'MAX_BATCH_SIZE',
    description: 'Most images in one vision-model run.',
    defaultValue: 16,
    parse: integer(1, 1024),
  },
  maxBatchWaitMs: {
    env: 'MAX_BATCH_WAIT_MS',
    description:
      'Longest wait, in ms, for a batch to fill when the model is idle (0: run at once; under load batches fill while the previous one runs).',
    defaultValue: 0,
    parse: integer(0, 60_000),
  },
  maxTextBatchSize: {
    env: 'MAX_TEXT_BATCH_SIZE',
    description: 'Most prompts in one text-model run.',
    defaultValue: 256,
    parse: integer(1, 65_536),
  },
  maxQueuedImages: {
    env: 'MAX_QUEUED_IMAGES',
    description:
      'Images waiting for inference (all accepted, unfinished jobs); a job that would exceed it is refused with OVERLOADED.',
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
    parse: providerList(EXECUTION_PROVIDERS),
  },
  ortTelemetry: {
    env: 'ORT_TELEMETRY',
    description:
      'Let ONNX Runtime queue its usage telemetry (session events, a device id) for upload to Microsoft. Off: the server sets ORT_DISABLE_TELEMETRY=1 for itself, its worker threads and child processes before ONNX Runtime loads; on: it removes that variable. See docs/privacy.md.',
    defaultValue: false,
    parse: boolean,
    boolean: true,
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
  textCacheSize: {
    env: 'TEXT_CACHE_SIZE',
    description:
      'Prompt embeddings kept (LRU entries, per model). A prompt over 128 characters is kept by its SHA-256, so an entry weighs its embedding (4 bytes per dimension) and at most a few hundred bytes of key.',
    defaultValue: 10_000,
    parse: integer(0),
  },
  imageCacheSize: {
    env: 'IMAGE_CACHE_SIZE',
    description: 'Image embeddings kept, keyed by content hash (LRU entries, per model).',
    defaultValue: 1_000,
    parse: integer(0),
  },
  maxImagesPerJob: {
    env: 'MAX_IMAGES_PER_JOB',
    description: 'Most images in one job (and files in one upload request).',
    defaultValue: 64,
    parse: integer(1, 100_000),
  },
  maxClassesPerJob: {
    env: 'MAX_CLASSES_PER_JOB',
    description: 'Most classes in one job.',
    defaultValue: 1000,
    parse: integer(1, 1_000_000),
  },
  maxPromptsPerJob: {
    env: 'MAX_PROMPTS_PER_JOB',
    description: 'Most prompts (classes × prompt templates) in one job; each new prompt costs a text-model run.',
    defaultValue: 10_000,
    parse: integer(1, 10_000_000),
  },
  maxClassifierPrompts: {
    env: 'MAX_CLASSIFIER_PROMPTS',
    description:
      'Most prompts (classes × prompt templates) in one stored classifier (createClassifier); each is embedded once per model, in the background.',
    defaultValue: 100_000,
    parse: integer(1, 10_000_000),
  },
  maxClassifiers: {
    env: 'MAX_CLASSIFIERS',
    description: 'Most classifiers stored at once (the presets not counted); createClassifier is refused past it.',
    defaultValue: 100,
    parse: integer(1, 100_000),
  },
  classifierPresets: {
    env: 'CLASSIFIER_PRESETS',
    description:
      'Preset classifiers (imagenet-1k, imagenet-1k-simple; comma-separated) built for the default model at start instead of on first use.',
    defaultValue: [],
    defaultText: 'none',
    parse: list,
  },
  maxClassLength: {
    env: 'MAX_CLASS_LENGTH',
    description: 'Longest class name, in characters (code points).',
    defaultValue: 1000,
    parse: integer(1, 1_000_000),
  },
  maxTextsPerJob: {
    env: 'MAX_TEXTS_PER_JOB',
    description: 'Most texts in one text-embedding job.',
    defaultValue: 1000,
    parse: integer(1, 1_000_000),
  },
  maxTextLength: {
    env: 'MAX_TEXT_LENGTH',
    description:
      "Longest text to embed, in characters (code points); the model reads at most its context length (77 tokens for CLIP), the rest is cut as FES's tokenizer does.",
    defaultValue: 10_000,
    parse: integer(1, 10_000_000),
  },
  maxImageBytes: {
    env: 'MAX_IMAGE_BYTES',
    description:
      'Largest encoded image, in bytes (after base64 decoding; an uploaded file is cut off and refused at it).',
    defaultValue: 20 * MiB,
    defaultText: '20MiB',
    parse: bytes(1),
  },
  maxImagePixels: {
    env: 'MAX_IMAGE_PIXELS',
    description: 'Largest image, in pixels (width × height), checked from the header before decoding.',
    defaultValue: 40_000_000,
    parse: integer(1),
  },
  imageUrls: {
    env: 'IMAGE_URLS',
    description:
      'Images given as http(s) URLs (GraphQL image/images, REST image, /v1/embeddings, the page) are fetched by the API process when the job is submitted: public (only destinations whose every address is global unicast, or in IMAGE_URL_ALLOWED_NETWORKS) or off (URLs refused with URL_IMAGES_OFF). See docs/image-urls.md.',
    defaultValue: 'public',
    parse: oneOf(IMAGE_URLS_MODES),
  },
  imageUrlAllowedNetworks: {
    env: 'IMAGE_URL_ALLOWED_NETWORKS',
    description:
      'Networks image URLs may reach although they are not public (an intranet image store), as a comma list of CIDRs (10.20.0.0/16, fd00:1::/64); everything else that is not global unicast (loopback, private, link-local, shared, …) is refused with URL_FORBIDDEN.',
    defaultValue: [],
    defaultText: 'none',
    parse: cidrList,
  },
  imageUrlMaxRedirects: {
    env: 'IMAGE_URL_MAX_REDIRECTS',
    description:
      'Most redirects one image URL may follow, each checked like the URL itself; one more is refused with URL_REDIRECTS.',
    defaultValue: 5,
    parse: integer(0, 20),
  },
  imageUrlTimeoutMs: {
    env: 'IMAGE_URL_TIMEOUT_MS',
    description:
      'Longest time, in ms, for fetching one image URL: waiting for a fetch slot, DNS, every redirect and the whole body (a server that trickles bytes is cut at it); URL_TIMEOUT after it.',
    defaultValue: 10_000,
    parse: integer(1, 600_000),
  },
  imageUrlConcurrency: {
    env: 'IMAGE_URL_CONCURRENCY',
    description:
      'Image URL fetches in flight at once per API process; more wait for a slot (within IMAGE_URL_TIMEOUT_MS).',
    defaultValue: 16,
    parse: integer(1, 10_000),
  },
  maxBodyBytes: {
    env: 'MAX_BODY_BYTES',
    description:
      'Largest HTTP request body, in bytes (413 over it; uploads are counted as they stream). Bounds a whole job: 64 images of ~1.5 MB each fit in the default.',
    defaultValue: 100 * MiB,
    defaultText: '100MiB',
    parse: bytes(1024),
  },
  maxJsonDepth: {
    env: 'MAX_JSON_DEPTH',
    description:
      'Deepest nesting of arrays and objects in a JSON request body (REST and GraphQL over HTTP), checked on the raw bytes before parsing (413 over it). No route needs more than 6 levels; the margin leaves room for clients that wrap their input, while parsers and validators that recurse stay far from the stack limit.',
    defaultValue: 32,
    parse: integer(2, 10_000),
  },
  maxJsonValues: {
    env: 'MAX_JSON_VALUES',
    description:
      'Most values (strings, object keys, numbers, literals, arrays, objects) in a JSON request body, counted on the raw bytes before parsing (413 over it), so a body of millions of tiny values is refused after a few hundred kilobytes instead of holding the event loop for seconds while it is parsed. The largest job a route takes at the defaults has about 11,100 (10,000 prompt templates, 1,000 classes, 64 images); this is 4.5 times that, and a body of as many values parses in 35–60 ms on a busy 2-core machine. Must be at least MAX_PROMPTS_PER_JOB + MAX_CLASSES_PER_JOB + MAX_TEXTS_PER_JOB + MAX_IMAGES_PER_JOB + 1000. Base64 images are one value each, however large.',
    defaultValue: 50_000,
    parse: integer(1),
  },
  maxQueryDepth: {
    env: 'MAX_QUERY_DEPTH',
    description: 'Deepest GraphQL selection (introspection fields excluded).',
    defaultValue: 10,
    parse: integer(1, 1000),
  },
  maxQueryComplexity: {
    env: 'MAX_QUERY_COMPLEXITY',
    description: 'Highest GraphQL operation cost (1 per field; list fields multiply by their `first`/`k`).',
    defaultValue: 5000,
    parse: integer(1),
  },
  maxResponseBytes: {
    env: 'MAX_RESPONSE_BYTES',
    description:
      'Largest GraphQL answer, in bytes, estimated from the job data a response would carry (texts, classes, probabilities, vectors) as it is resolved: an operation that would pass it is refused with RESPONSE_TOO_LARGE (HTTP 400) before its answer is serialised. The default holds the largest single job (MAX_TEXTS_PER_JOB texts of MAX_TEXT_LENGTH characters with their vectors, about 35 MB), so any one job can always be read whole; pages of many large jobs must be read in smaller pages.',
    defaultValue: 64 * MiB,
    defaultText: '64MiB',
    parse: bytes(1024),
  },
  maxDocumentBytes: {
    env: 'MAX_DOCUMENT_BYTES',
    description:
      "Largest GraphQL document (the `query` text, HTTP and websocket), in bytes; a larger one is refused with BAD_REQUEST before it is parsed. The schema's operations are a few KB (introspection: 2 KB); the default leaves room for a small image written into the document, but images and long texts belong in variables, which only MAX_BODY_BYTES bounds.",
    defaultValue: 256 * 1024,
    defaultText: '256KiB',
    parse: bytes(1024),
  },
  maxDocumentTokens: {
    env: 'MAX_DOCUMENT_TOKENS',
    description:
      "Most tokens (names, punctuation, values; not comments) in one GraphQL document; parsing stops there with GRAPHQL_PARSE_FAILED. Parsing costs memory and time per token: introspection is ~200 tokens, a job's longest inline lists (1,000 classes or texts, a 1,152-float vector) ~1,200.",
    defaultValue: 5_000,
    parse: integer(100, 10_000_000),
  },
  httpDocumentCacheBytes: {
    env: 'HTTP_DOCUMENT_CACHE_BYTES',
    description:
      "Parsed and validated documents kept for reuse over HTTP (Apollo's document store), by what they keep in memory: their text (comments included) and syntax tree; 0 turns it off.",
    defaultValue: 16 * MiB,
    defaultText: '16MiB',
    parse: bytes(0),
  },
  wsDocumentCacheBytes: {
    env: 'WS_DOCUMENT_CACHE_BYTES',
    description:
      'Parsed and validated websocket documents kept for reuse, by what they keep in memory: their text (comments included) and syntax tree (a subscription sent again skips parsing and validation, as Apollo does over HTTP); 0 turns it off.',
    defaultValue: 16 * MiB,
    defaultText: '16MiB',
    parse: bytes(0),
  },
  maxAliases: {
    env: 'MAX_ALIASES',
    description: 'Most aliased fields in one GraphQL document.',
    defaultValue: 30,
    parse: integer(0, 100_000),
  },
  maxQueuedJobs: {
    env: 'MAX_QUEUED_JOBS',
    description: 'Most queued plus running jobs; more are refused with OVERLOADED (HTTP 429 on REST).',
    defaultValue: 256,
    parse: integer(1),
  },
  maxQueuedJobsPerKey: {
    env: 'MAX_QUEUED_JOBS_PER_KEY',
    description:
      "One API key's share of MAX_QUEUED_JOBS: its queued plus running jobs, cluster-wide; more are refused with OVERLOADED (HTTP 429) while other keys are still admitted. Applies only when API keys are configured.",
    defaultValue: (settings) => Math.max(1, Math.ceil((settings.maxQueuedJobs ?? 1) / 2)),
    defaultText: 'half of MAX_QUEUED_JOBS',
    parse: integer(1),
  },
  maxQueuedImagesPerKey: {
    env: 'MAX_QUEUED_IMAGES_PER_KEY',
    description:
      "One API key's share of MAX_QUEUED_IMAGES: images of its unfinished jobs, cluster-wide; a job that would exceed it is refused with OVERLOADED. Applies only when API keys are configured.",
    defaultValue: (settings) => Math.max(Math.ceil((settings.maxQueuedImages ?? 1) / 2), settings.maxImagesPerJob ?? 1),
    defaultText: 'half of MAX_QUEUED_IMAGES (at least MAX_IMAGES_PER_JOB)',
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
    description:
      'Encoded image bytes held by accepted, unfinished jobs; a job that would exceed it is refused with OVERLOADED.',
    defaultValue: 512 * MiB,
    defaultText: '512MiB',
    parse: bytes(1024),
  },
  jobTtlSeconds: {
    env: 'JOB_TTL_SECONDS',
    description: 'How long a job (and its result) is kept, in seconds, counted from its last change.',
    defaultValue: 3600,
    parse: integer(1),
  },
  maxRetainedJobBytes: {
    env: 'MAX_RETAINED_JOB_BYTES',
    description:
      'Bytes that finished jobs (complete, failed, cancelled: their inputs and results) may hold while they wait out JOB_TTL_SECONDS: past it, the jobs that finished first are forgotten early (read as unknown, as if expired; the job that just finished is always kept). In memory an upper estimate of the heap they hold (2 bytes per character, 8 per number); with Redis the stored JSON, per deployment (REDIS_KEY_PREFIX). Unfinished jobs are bounded by MAX_QUEUED_JOBS instead. The default keeps about 25 of the largest text jobs (1,000 texts of 10,000 characters) or hundreds of thousands of typical classifications.',
    defaultValue: 256 * MiB,
    defaultText: '256MiB',
    parse: bytes(1024),
  },
  drainTimeoutMs: {
    env: 'DRAIN_TIMEOUT_MS',
    description:
      'On SIGTERM/SIGINT, the longest wait, in ms, for accepted jobs to finish; jobs still unfinished then FAIL with SHUTTING_DOWN.',
    defaultValue: 30_000,
    parse: integer(0),
  },
  httpStopGraceMs: {
    env: 'HTTP_STOP_GRACE_MS',
    description:
      'On stop, after the jobs drained and the websockets closed, the longest wait, in ms, for HTTP requests still in flight before their connections are cut.',
    defaultValue: 10_000,
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
  introspection: {
    env: 'INTROSPECTION',
    description: 'Allow GraphQL introspection (turn off in production).',
    defaultValue: true,
    parse: boolean,
    boolean: true,
  },
  graphiql: {
    env: 'GRAPHIQL',
    description: 'Serve GraphiQL at GET /graphql for browsers (turn off in production).',
    defaultValue: true,
    parse: boolean,
    boolean: true,
  },
  webUi: {
    env: 'WEB_UI',
    description:
      'Serve the classification page at GET / (built by npm run build; it uses the public API, so API_KEYS apply).',
    defaultValue: true,
    parse: boolean,
    boolean: true,
  },
  apiKeys: {
    env: 'API_KEYS',
    description:
      'Comma-separated API keys; when set, /graphql and /api need `Authorization: Bearer <key>` or `x-api-key` (websocket: connection_init { apiKey }).',
    defaultValue: [],
    defaultText: 'none (auth off)',
    parse: list,
  },
  adminApiKeys: {
    env: 'ADMIN_API_KEYS',
    description:
      'Comma-separated admin API keys (also valid wherever API_KEYS are): an admin sees and may cancel every job, and alone may take operator actions (starting and stopping models: POST /api/models/{model}/start|stop, startModel, stopModel). Other keys see only the jobs they created; with API_KEYS set and no admin key, operator actions are refused (403 FORBIDDEN). See docs/privacy.md.',
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
  logLevel: {
    env: 'LOG_LEVEL',
    description: 'pino log level; debug adds stack traces to expected errors (a model that cannot load, …).',
    defaultValue: 'info',
    parse: oneOf(LOG_LEVELS),
  },
  logFormat: {
    env: 'LOG_FORMAT',
    description:
      'Log lines: json (one JSON object a line), pretty (human-readable, pino-pretty) or auto (pretty when stdout is a terminal, else json).',
    defaultValue: 'auto',
    parse: oneOf(LOG_FORMATS),
  },
};

const SETTING_ENTRIES = Object.entries(SETTINGS) as unknown as SettingEntries;

/** The settings table: every env variable, its flag, default and meaning (for docs/configuration.md through `npm run docs`, and `--help`). */
export function describeSettings(): SettingDoc[] {
  return describeSettingRows(SETTING_ENTRIES);
}

/**
 * ORT_TELEMETRY alone, for the scripts that load ONNX Runtime without the server's configuration (benchmarks, the
 * test-model generator). Throws ConfigError for a malformed value.
 */
export function ortTelemetryFrom(env: Readonly<Record<string, string | undefined>>): boolean {
  const raw = env[SETTINGS.ortTelemetry.env];
  if (raw === undefined) return SETTINGS.ortTelemetry.defaultValue as boolean;
  try {
    return SETTINGS.ortTelemetry.parse(raw);
  } catch (error) {
    throw new ConfigError(`${SETTINGS.ortTelemetry.env}: ${(error as Error).message}`);
  }
}

/** `--help` text (main prints it). */
export function helpText(): string {
  return helpTextOf(SETTING_ENTRIES);
}

/**
 * Parses `argv` (user arguments only, without `node` and the script) and `env` into a frozen Config.
 * Throws ConfigError naming the variable and flag for a malformed value, HelpRequested for `--help`.
 */
export function loadConfig(
  argv: readonly string[] = [],
  env: Readonly<Record<string, string | undefined>> = {},
): Config {
  const values = readSettings(SETTING_ENTRIES, argv, env);
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
  if (config.maxQueuedImagesPerKey < config.maxImagesPerJob) {
    throw new ConfigError(
      `MAX_QUEUED_IMAGES_PER_KEY: expected at least MAX_IMAGES_PER_JOB (${config.maxImagesPerJob}) so a full job can be admitted, got ${config.maxQueuedImagesPerKey}`,
    );
  }
  if (config.maxPendingImageBytes < config.maxImageBytes) {
    throw new ConfigError(
      `MAX_PENDING_IMAGE_BYTES: expected at least MAX_IMAGE_BYTES (${config.maxImageBytes}), got ${config.maxPendingImageBytes}`,
    );
  }
  // Every job a route accepts must fit the JSON structure limit, or the limit would refuse honest requests.
  const largestJobValues =
    config.maxPromptsPerJob + config.maxClassesPerJob + config.maxTextsPerJob + config.maxImagesPerJob + 1000;
  if (config.maxJsonValues < largestJobValues) {
    throw new ConfigError(
      `MAX_JSON_VALUES: expected at least ${largestJobValues} (MAX_PROMPTS_PER_JOB + MAX_CLASSES_PER_JOB + MAX_TEXTS_PER_JOB + MAX_IMAGES_PER_JOB + 1000), got ${config.maxJsonValues}`,
    );
  }
  if (config.headersTimeoutMs > config.requestTimeoutMs) {
    throw new ConfigError(
      `HEADERS_TIMEOUT_MS: expected at most REQUEST_TIMEOUT_MS (${config.requestTimeoutMs}), got ${config.headersTimeoutMs}`,
    );
  }
  if (config.role !== 'all' && config.redisUrl === undefined) {
    throw new ConfigError(
      `REDIS_URL: expected a Redis URL for ROLE=${config.role} (API and worker processes meet in Redis), got none`,
    );
  }
  if (config.clipModels.some((model) => model.name === config.clipModel)) {
    throw new ConfigError(
      `CLIP_MODELS: expected names other than the default model, got ${JSON.stringify(config.clipModel)}`,
    );
  }
  return Object.freeze({
    ...config,
    clipModels: Object.freeze(config.clipModels.map((model) => Object.freeze({ ...model }))),
    corsOrigins: Object.freeze([...config.corsOrigins]),
    allowedHosts:
      typeof config.allowedHosts === 'string' ? config.allowedHosts : Object.freeze([...config.allowedHosts]),
    apiKeys: Object.freeze([...config.apiKeys]),
    imageUrlAllowedNetworks: Object.freeze([...config.imageUrlAllowedNetworks]),
    adminApiKeys: Object.freeze([...config.adminApiKeys]),
    ortExecutionProviders: Object.freeze([...config.ortExecutionProviders]),
  });
}
