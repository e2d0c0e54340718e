import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  allowedHostNames,
  ConfigError,
  describeSettings,
  finalizeConfig,
  HelpRequested,
  loadConfig,
  ortTelemetryFrom,
} from '../../src/config.js';

describe('loadConfig', () => {
  it('should give the documented defaults with no flags and no environment', () => {
    const config = loadConfig([], {});
    expect(config).toMatchObject({
      port: 4000,
      host: '127.0.0.1',
      clipModel: 'clip-vit-base-patch32',
      clipModels: [],
      clipPrecision: 'fp32',
      modelCacheDir: path.join(os.homedir(), '.cache', 'clip-server'),
      hfEndpoint: 'https://huggingface.co',
      hfToken: undefined,
      hfHubOffline: false,
      ortIntraOpThreads: os.availableParallelism(),
      maxImagesPerJob: 64,
      maxClassesPerJob: 1000,
      maxImageBytes: 20 * 1024 * 1024,
      maxBodyBytes: 100 * 1024 * 1024,
      jobTtlSeconds: 3600,
      corsOrigins: [],
      introspection: true,
      graphiql: true,
      apiKeys: [],
      logLevel: 'info',
      logitScale: undefined,
    });
  });

  it('should read the environment and let flags win over it', () => {
    const config = loadConfig(['--port', '5000', '--hf-hub-offline', '--introspection=false'], {
      PORT: '4500',
      HOST: '0.0.0.0',
      CLIP_MODELS: 'big=openai/clip-vit-large-patch14@main, local=~/models/x',
      CLIP_PRECISION: 'INT8',
      API_KEYS: 'a, b,,c',
      CORS_ORIGINS: 'https://app.example.com/path,http://localhost:3000',
      MAX_IMAGE_BYTES: '5MiB',
      MAX_BODY_BYTES: '100 MB',
      LOGIT_SCALE: '50.5',
      INTROSPECTION: 'true',
    });
    expect(config.port).toBe(5000);
    expect(config.host).toBe('0.0.0.0');
    expect(config.hfHubOffline).toBe(true);
    expect(config.introspection).toBe(false);
    expect(config.clipModels).toEqual([
      { name: 'big', source: 'openai/clip-vit-large-patch14@main' },
      { name: 'local', source: path.join(os.homedir(), 'models/x') },
    ]);
    expect(config.clipPrecision).toBe('int8');
    expect(config.apiKeys).toEqual(['a', 'b', 'c']);
    expect(config.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:3000']);
    expect(config.maxImageBytes).toBe(5 * 1024 * 1024);
    expect(config.maxBodyBytes).toBe(100_000_000);
    expect(config.logitScale).toBe(50.5);
  });

  it.each([
    [{ PORT: 'abc' }, /PORT: expected an integer between 0 and 65535, got "abc"/],
    [{ PORT: '70000' }, /PORT: expected an integer between 0 and 65535, got "70000"/],
    [{ CLIP_PRECISION: 'fp64' }, /CLIP_PRECISION: expected one of fp32, fp16, int8, got "fp64"/],
    [{ HF_HUB_OFFLINE: 'maybe' }, /HF_HUB_OFFLINE: expected true or false/],
    [{ CLIP_MODELS: 'nosource' }, /CLIP_MODELS: expected name=source pairs/],
    [{ CLIP_MODELS: 'a=x,a=y' }, /CLIP_MODELS: expected unique model names/],
    [{ MAX_IMAGE_BYTES: '20 parsecs' }, /MAX_IMAGE_BYTES: expected a byte count/],
    [{ HF_ENDPOINT: 'ftp://x' }, /HF_ENDPOINT: expected an http\(s\) URL/],
    [{ LOGIT_SCALE: '-1' }, /LOGIT_SCALE: expected a positive number/],
    [{ CORS_ORIGINS: 'not a url' }, /CORS_ORIGINS: expected origins/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL: expected one of/],
    [{ MAX_BATCH_SIZE: '0' }, /MAX_BATCH_SIZE: expected an integer between 1 and 1024, got "0"/],
  ])('should refuse %j with a message naming the variable', (env, message) => {
    expect(() => loadConfig([], env)).toThrow(ConfigError);
    expect(() => loadConfig([], env)).toThrow(message);
  });

  it('should leave VISION_REPLICAS to the runtime by default or when auto, and take a count', () => {
    expect(loadConfig([], {}).visionReplicas).toBeUndefined();
    expect(loadConfig([], { VISION_REPLICAS: 'auto' }).visionReplicas).toBeUndefined();
    expect(loadConfig(['--vision-replicas', '2'], {}).visionReplicas).toBe(2);
    expect(() => loadConfig([], { VISION_REPLICAS: '0' })).toThrow(ConfigError);
  });

  it('should name the flag when a flag is malformed, and refuse unknown flags', () => {
    expect(() => loadConfig(['--max-batch-size', 'x'], {})).toThrow(
      /--max-batch-size \(MAX_BATCH_SIZE\): expected an integer/,
    );
    expect(() => loadConfig(['--no-such-flag'], {})).toThrow(ConfigError);
  });

  it('should read ORT_EXECUTION_PROVIDERS as a priority list of known providers (cpu by default)', () => {
    expect(loadConfig([], {}).ortExecutionProviders).toEqual(['cpu']);
    expect(loadConfig([], { ORT_EXECUTION_PROVIDERS: 'CUDA, cpu' }).ortExecutionProviders).toEqual(['cuda', 'cpu']);
    expect(
      loadConfig(['--ort-execution-providers', 'webgpu'], { ORT_EXECUTION_PROVIDERS: 'cuda' }).ortExecutionProviders,
    ).toEqual(['webgpu']);
    expect(() => loadConfig([], { ORT_EXECUTION_PROVIDERS: 'gpu' })).toThrow(
      /ORT_EXECUTION_PROVIDERS: expected one of cpu, webgpu, cuda, tensorrt, coreml, dml, got "gpu"/,
    );
    expect(() => loadConfig([], { ORT_EXECUTION_PROVIDERS: 'cuda,cuda' })).toThrow(
      /each provider once, got "cuda" twice/,
    );
    expect(() => loadConfig([], { ORT_EXECUTION_PROVIDERS: ' , ' })).toThrow(ConfigError);
  });

  it("should derive each API key's share of the queue from the global limits unless given", () => {
    expect(loadConfig([], {})).toMatchObject({
      maxQueuedJobsPerKey: 128,
      maxQueuedImagesPerKey: 512,
      adminApiKeys: [],
      ortTelemetry: false,
    });
    expect(loadConfig([], { MAX_QUEUED_JOBS: '9', MAX_QUEUED_IMAGES: '100' })).toMatchObject({
      maxQueuedJobsPerKey: 5,
      maxQueuedImagesPerKey: 64,
    });
    expect(loadConfig(['--max-queued-jobs-per-key', '3'], { ADMIN_API_KEYS: 'x, y' })).toMatchObject({
      maxQueuedJobsPerKey: 3,
      adminApiKeys: ['x', 'y'],
    });
    expect(() => loadConfig([], { MAX_QUEUED_IMAGES_PER_KEY: '10' })).toThrow(
      /MAX_QUEUED_IMAGES_PER_KEY: expected at least MAX_IMAGES_PER_JOB \(64\)/,
    );
    expect(loadConfig([], { ORT_TELEMETRY: 'true' }).ortTelemetry).toBe(true);
    expect(ortTelemetryFrom({ ORT_TELEMETRY: 'on' })).toBe(true);
    expect(ortTelemetryFrom({})).toBe(false);
    expect(() => ortTelemetryFrom({ ORT_TELEMETRY: 'maybe' })).toThrow(ConfigError);
  });

  it('should check the rules between settings', () => {
    expect(() => loadConfig([], { MAX_IMAGE_BYTES: '20MiB', MAX_BODY_BYTES: '10MiB' })).toThrow(
      /MAX_BODY_BYTES: expected at least/,
    );
    expect(() => loadConfig([], { MAX_QUEUED_IMAGES: '10' })).toThrow(
      /MAX_QUEUED_IMAGES: expected at least MAX_IMAGES_PER_JOB \(64\)/,
    );
    expect(() =>
      finalizeConfig({ ...loadConfig([], {}), clipModels: [{ name: 'clip-vit-base-patch32', source: 'x' }] }),
    ).toThrow(/CLIP_MODELS/);
    // The JSON structure limit must let the largest job any route accepts through.
    expect(() => loadConfig([], { MAX_JSON_VALUES: '12000' })).toThrow(
      /MAX_JSON_VALUES: expected at least 13064 \(MAX_PROMPTS_PER_JOB/,
    );
    expect(loadConfig([], { MAX_JSON_VALUES: '13064' }).maxJsonValues).toBe(13064);
  });

  it('should read the hostile-request limits, with units for byte sizes', () => {
    expect(loadConfig([], {})).toMatchObject({
      maxJsonDepth: 32,
      maxJsonValues: 50_000,
      maxResponseBytes: 64 * 1024 * 1024,
      maxRetainedJobBytes: 256 * 1024 * 1024,
    });
    const config = loadConfig(['--max-retained-job-bytes', '1GiB'], { MAX_RESPONSE_BYTES: '8MB', MAX_JSON_DEPTH: '8' });
    expect(config).toMatchObject({ maxRetainedJobBytes: 1024 ** 3, maxResponseBytes: 8e6, maxJsonDepth: 8 });
    expect(() => loadConfig([], { MAX_JSON_DEPTH: '1' })).toThrow(
      /MAX_JSON_DEPTH: expected an integer between 2 and 10000/,
    );
    expect(() => loadConfig([], { MAX_RETAINED_JOB_BYTES: '10' })).toThrow(
      /MAX_RETAINED_JOB_BYTES: expected a byte count >= 1024/,
    );
  });

  it('should read the limits against hostile requests, and keep header deadlines within request deadlines', () => {
    expect(loadConfig([], {})).toMatchObject({
      allowedHosts: 'auto',
      headersTimeoutMs: 20_000,
      requestTimeoutMs: 120_000,
      maxDocumentBytes: 256 * 1024,
      maxDocumentTokens: 5_000,
      httpDocumentCacheBytes: 16 * 1024 * 1024,
    });
    const set = loadConfig([], {
      ALLOWED_HOSTS: 'API.example.com, localhost., [::1]',
      MAX_DOCUMENT_BYTES: '64KiB',
      MAX_DOCUMENT_TOKENS: '2000',
    });
    expect(set).toMatchObject({
      allowedHosts: ['api.example.com', 'localhost', '[::1]'],
      maxDocumentBytes: 65_536,
      maxDocumentTokens: 2000,
    });
    expect(loadConfig([], { ALLOWED_HOSTS: '*' }).allowedHosts).toBe('any');
    for (const wrong of ['http://a.example', 'a.example:80', 'a.example/x', 'a.example,*']) {
      expect(() => loadConfig([], { ALLOWED_HOSTS: wrong }), wrong).toThrow(
        /ALLOWED_HOSTS: expected auto, \* or host names/,
      );
    }
    expect(() => loadConfig([], { HEADERS_TIMEOUT_MS: '5000', REQUEST_TIMEOUT_MS: '1000' })).toThrow(
      /HEADERS_TIMEOUT_MS: expected at most REQUEST_TIMEOUT_MS \(1000\)/,
    );
  });

  it('should resolve ALLOWED_HOSTS=auto by HOST: loopback names and HOST for one address, any for all interfaces', () => {
    const auto = { allowedHosts: 'auto' as const };
    expect(allowedHostNames({ ...auto, host: '127.0.0.1' })).toEqual(['localhost', '127.0.0.1', '[::1]']);
    expect(allowedHostNames({ ...auto, host: '::1' })).toEqual(['localhost', '127.0.0.1', '[::1]']);
    expect(allowedHostNames({ ...auto, host: '192.168.1.20' })).toEqual([
      'localhost',
      '127.0.0.1',
      '[::1]',
      '192.168.1.20',
    ]);
    expect(allowedHostNames({ ...auto, host: '0.0.0.0' })).toBe('any');
    expect(allowedHostNames({ ...auto, host: '::' })).toBe('any');
    expect(allowedHostNames({ allowedHosts: ['api.example'], host: '0.0.0.0' })).toEqual(['api.example']);
    expect(allowedHostNames({ allowedHosts: 'any', host: '127.0.0.1' })).toBe('any');
  });

  it('should return a frozen configuration', () => {
    const config = loadConfig([], { API_KEYS: 'k' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.apiKeys)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('should signal --help with the help text', () => {
    let error: unknown;
    try {
      loadConfig(['--help'], {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HelpRequested);
    expect((error as Error).message).toContain('--max-batch-size');
    expect((error as Error).message).toContain('MAX_BATCH_SIZE');
  });
});

describe('describeSettings', () => {
  it('should document every setting with its env name, flag and default', () => {
    const docs = describeSettings();
    const envs = docs.map((doc) => doc.env);
    for (const env of [
      'PORT',
      'HOST',
      'CLIP_MODEL',
      'CLIP_MODELS',
      'CLIP_PRECISION',
      'MODEL_CACHE_DIR',
      'HF_ENDPOINT',
      'HF_TOKEN',
      'HF_HUB_OFFLINE',
      'MAX_BATCH_SIZE',
      'MAX_BATCH_WAIT_MS',
      'MAX_TEXT_BATCH_SIZE',
      'MAX_QUEUED_IMAGES',
      'ORT_INTRA_OP_THREADS',
      'ORT_GRAPH_OPTIMIZATION',
      'LOGIT_SCALE',
      'PREPROCESS_CONCURRENCY',
      'TEXT_CACHE_SIZE',
      'IMAGE_CACHE_SIZE',
      'MAX_IMAGES_PER_JOB',
      'MAX_CLASSES_PER_JOB',
      'MAX_CLASS_LENGTH',
      'MAX_IMAGE_BYTES',
      'MAX_IMAGE_PIXELS',
      'MAX_BODY_BYTES',
      'MAX_QUERY_DEPTH',
      'MAX_QUERY_COMPLEXITY',
      'MAX_ALIASES',
      'MAX_QUEUED_JOBS',
      'JOB_TTL_SECONDS',
      'DRAIN_TIMEOUT_MS',
      'CORS_ORIGINS',
      'INTROSPECTION',
      'GRAPHIQL',
      'API_KEYS',
      'LOG_LEVEL',
    ]) {
      expect(envs).toContain(env);
    }
    expect(new Set(envs).size).toBe(envs.length);
    expect(docs.find((doc) => doc.env === 'PORT')).toMatchObject({ flag: '--port', default: '4000' });
    expect(docs.find((doc) => doc.env === 'MAX_BATCH_WAIT_MS')).toMatchObject({ flag: '--max-batch-wait-ms' });
    for (const doc of docs) expect(doc.description.length).toBeGreaterThan(10);
  });
});
