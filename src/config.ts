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
import ipaddr from 'ipaddr.js';
import type { LogFormatSetting } from './logger.js';

/** What this process runs: everything (one process), the API only, or the inference worker only (issue 9). */
export type Role = 'all' | 'api' | 'worker';
export const ROLES: readonly Role[] = ['all', 'api', 'worker'];

/** Whether images may be given as http(s) URLs the server fetches: `public` destinations only, or not at all. */
export type ImageUrlsMode = 'public' | 'off';
export const IMAGE_URLS_MODES: readonly ImageUrlsMode[] = ['public', 'off'];

/**
 * Which `Host` headers requests may carry (DNS rebinding): `auto` (decided by HOST, see {@link allowedHostNames}),
 * `any`, or exactly these host names.
 */
export type AllowedHostsSetting = 'auto' | 'any' | readonly string[];

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** Which ONNX variant of a model to run: `fp32` → `*.onnx`, `fp16` → `*_fp16.onnx`, `int8` → `*_quantized.onnx`. */
export type Precision = 'fp32' | 'fp16' | 'int8';
export const PRECISIONS: readonly Precision[] = ['fp32', 'fp16', 'int8'];

/** The providers onnxruntime-node 1.30 can be built with, in the names its `executionProviders` option takes. */
export const EXECUTION_PROVIDERS = ['cpu', 'webgpu', 'cuda', 'tensorrt', 'coreml', 'dml'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/**
 * Per-model options written after a model's source: `source;logitScale=112.3;logitBias=-16.5` in `CLIP_MODEL` and in
 * each `CLIP_MODELS` entry (`name=source;logitScale=…`). They set what the files of many exports do not carry: the
 * trained softmax temperature, and a SigLIP model's trained scale and bias; and when the model is loaded (`load=lazy`:
 * on its first job instead of at start). Keys are case-insensitive, camel or snake case.
 * These are the options one model may be given.
 */
/** When a model is loaded: `eager` at start, `lazy` on its first job (or an explicit start). */
export type LoadPolicy = 'eager' | 'lazy';
export const LOAD_POLICIES: readonly LoadPolicy[] = ['eager', 'lazy'];

export interface ModelOptions {
  /** The trained logit scale (the exp of the checkpoint's `logit_scale`, e.g. 100 for OpenAI CLIP), > 0. */
  logitScale?: number | undefined;
  /** A SigLIP model's trained `logit_bias` (typically around −10 to −17). */
  logitBias?: number | undefined;
  /** When the model is loaded; absent means `eager`. */
  load?: LoadPolicy | undefined;
}

export const MODEL_OPTION_KEYS = ['logitScale', 'logitBias', 'load'] as const;

/**
 * Splits `source;key=value;…` into the source and its options. Throws an Error worded "expected …, got …" for an
 * unknown key, a missing `=`, or a value that is not a number in range.
 */
export function parseModelOptions(text: string): { source: string; options: ModelOptions } {
  const [source = '', ...parts] = text.split(';');
  const options: ModelOptions = {};
  for (const raw of parts) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new Error(
        `expected a model option key=value (${MODEL_OPTION_KEYS.join(', ')}), got ${JSON.stringify(part)}`,
      );
    const key = part.slice(0, eq).trim().toLowerCase().replace(/[_-]/g, '');
    const value = part.slice(eq + 1).trim();
    const number = value === '' ? Number.NaN : Number(value);
    switch (key) {
      case 'logitscale':
        if (!Number.isFinite(number) || number <= 0)
          throw new Error(
            `expected logitScale to be a positive number (the exp of the trained logit_scale), got ${JSON.stringify(value)}`,
          );
        options.logitScale = number;
        break;
      case 'logitbias':
        if (!Number.isFinite(number))
          throw new Error(`expected logitBias to be a number, got ${JSON.stringify(value)}`);
        options.logitBias = number;
        break;
      case 'load': {
        const policy = LOAD_POLICIES.find((p) => p === value.toLowerCase());
        if (policy === undefined)
          throw new Error(`expected load to be ${LOAD_POLICIES.join(' or ')}, got ${JSON.stringify(value)}`);
        options.load = policy;
        break;
      }
      default:
        throw new Error(
          `expected a model option among ${MODEL_OPTION_KEYS.join(', ')}, got ${JSON.stringify(part.slice(0, eq).trim())}`,
        );
    }
  }
  return { source: source.trim(), options };
}

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
  /** The default, computed from the machine or from the settings above it (in table order) when it depends on them. */
  defaultValue: T | ((settings: Readonly<Partial<Config>>) => T);
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
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: MiB,
  mb: 1e6,
  mib: MiB,
  g: 1024 * MiB,
  gb: 1e9,
  gib: 1024 * MiB,
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
  if (providers.length === 0)
    throw new Error(`expected a comma-separated list of ${EXECUTION_PROVIDERS.join(', ')}, got ${JSON.stringify(raw)}`);
  const twice = providers.find((provider, i) => providers.indexOf(provider) !== i);
  if (twice !== undefined) throw new Error(`expected each provider once, got ${JSON.stringify(twice)} twice`);
  return providers;
}

function nonEmpty(raw: string): string {
  if (raw.trim() === '') throw new Error('expected a non-empty string, got ""');
  return raw.trim();
}

/** A comma list of CIDR networks (`10.20.0.0/16`, `fd00::/8`); a bare address is its own /32 or /128. */
function cidrList(raw: string): string[] {
  return list(raw).map((item) => {
    const cidr = item.includes('/') ? item : `${item}/${ipaddr.IPv4.isValidFourPartDecimal(item) ? 32 : 128}`;
    try {
      const [address, bits] = ipaddr.parseCIDR(cidr);
      return `${address.toString()}/${bits}`;
    } catch {
      throw new Error(
        `expected CIDR networks like 10.20.0.0/16 or fd00::/8, separated by commas, got ${JSON.stringify(item)}`,
      );
    }
  });
}

function list(raw: string): string[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
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

/** A host name as a `Host` header carries it, without the port: `api.example.com`, `10.0.0.5`, `[::1]`. */
const HOST_NAME = /^(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)$/i;

function allowedHostList(raw: string): AllowedHostsSetting {
  const value = raw.trim().toLowerCase();
  if (value === '' || value === 'auto') return 'auto';
  if (value === '*') return 'any';
  const names = list(value).map((name) => name.replace(/\.$/, ''));
  const wrong = names.find((name) => name === '*' || !HOST_NAME.test(name));
  if (wrong !== undefined || names.length === 0) {
    throw new Error(
      `expected auto, * or host names without scheme or port (e.g. api.example.com,localhost,[::1]), got ${JSON.stringify(wrong ?? raw)}`,
    );
  }
  return names;
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
    parse: providerList,
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

function flagOf(env: string): string {
  return `--${env.toLowerCase().replace(/_/g, '-')}`;
}

function attributeOf(env: string): string {
  return env.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function defaultTextOf(spec: SettingSpec<unknown>): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value =
    typeof spec.defaultValue === 'function'
      ? (spec.defaultValue as (settings: Partial<Config>) => unknown)({})
      : spec.defaultValue;
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
export function loadConfig(
  argv: readonly string[] = [],
  env: Readonly<Record<string, string | undefined>> = {},
): Config {
  const command = buildCommand();
  try {
    command.parse([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.help')
        throw new HelpRequested(helpText());
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
      values[key] =
        typeof spec.defaultValue === 'function'
          ? (spec.defaultValue as (settings: Partial<Config>) => unknown)(values)
          : spec.defaultValue;
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

/** Listen addresses that mean "every interface": a request may name the machine in any way. */
const ALL_INTERFACES: ReadonlySet<string> = new Set(['0.0.0.0', '::', '[::]', '']);

/** How an address reads in a `Host` header: IPv6 in brackets. */
function hostHeaderName(address: string): string {
  const name = address.trim().toLowerCase();
  return name.includes(':') && !name.startsWith('[') ? `[${name}]` : name;
}

/**
 * The host names requests may carry, or `any`: ALLOWED_HOSTS resolved against HOST. `auto` lets in the loopback
 * names and HOST itself when the server listens on one address (a browser on this machine reaches it by those
 * names; a page of another name that resolves here is a DNS-rebinding attempt), and any name when it listens on
 * every interface (it is then reached by names this process cannot know: list them to restrict).
 */
export function allowedHostNames(config: Pick<Config, 'allowedHosts' | 'host'>): 'any' | readonly string[] {
  if (config.allowedHosts !== 'auto') return config.allowedHosts;
  if (ALL_INTERFACES.has(config.host.trim())) return 'any';
  return [...new Set(['localhost', '127.0.0.1', '[::1]', hostHeaderName(config.host)])];
}
