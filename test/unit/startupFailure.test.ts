import { describe, expect, it } from 'vitest';
import { ExecutionProviderUnavailableError, HubError, INSTALL_CUDA_COMMAND } from '../../src/clip/index.js';
import { loadConfig } from '../../src/config.js';
import { AppError, ErrorCode } from '../../src/errors.js';
import { explainStartFailure, MAKE_TEST_MODEL_COMMAND } from '../../src/startupFailure.js';

const config = loadConfig([], { HF_ENDPOINT: 'https://mirror.example.com' });
/** As ClipService rejects: the load failure is the cause. */
const wrapped = (cause: unknown): Error =>
  new Error('The default model clip-vit-base-patch32 could not be loaded: …', { cause });

describe('explainStartFailure', () => {
  it('should tell what was downloaded, from where, why, and the ways out for a network failure', () => {
    const url = 'https://mirror.example.com/Xenova/clip-vit-base-patch32/resolve/main/config.json';
    const text = explainStartFailure(
      wrapped(
        new HubError(
          'network',
          'config.json',
          url,
          `cannot download config.json from ${url}: fetch failed: ENOTFOUND`,
          true,
        ),
      ),
      config,
    );
    expect(text).toContain('"clip-vit-base-patch32" is not available');
    expect(text).toContain(url);
    expect(text).toContain('ENOTFOUND');
    expect(text).toContain('HF_ENDPOINT');
    expect(text).toContain('https://mirror.example.com');
    expect(text).toContain('CLIP_MODEL');
    expect(text).toContain(MAKE_TEST_MODEL_COMMAND);
    expect(text).not.toMatch(/\n/);
  });

  it('should name the file and the URL when the hub message does not', () => {
    const text = explainStartFailure(
      wrapped(
        new HubError(
          'http',
          'onnx/vision_model.onnx',
          'https://h/x/resolve/main/onnx/vision_model.onnx',
          'HTTP 503 Service Unavailable',
        ),
      ),
      config,
    );
    expect(text).toContain(
      'It tried to download onnx/vision_model.onnx from https://h/x/resolve/main/onnx/vision_model.onnx.',
    );
  });

  it('should point at HF_TOKEN for a gated repo and at the id for a missing one', () => {
    expect(
      explainStartFailure(
        wrapped(new HubError('unauthorized', 'config.json', 'https://h/c', 'x/y is gated or private (HTTP 401 …)')),
        config,
      ),
    ).toContain('HF_TOKEN');
    expect(
      explainStartFailure(
        wrapped(
          new HubError('not-found', 'config.json', 'https://h/c', 'config.json of x/y@main not found at https://h/c'),
        ),
        config,
      ),
    ).toContain('check the model id in CLIP_MODEL');
  });

  it('should tell an offline start with an empty cache how to get the files', () => {
    const text = explainStartFailure(
      wrapped(
        new HubError(
          'offline-miss',
          'config.json',
          undefined,
          'HF_HUB_OFFLINE=1 and x/y@main/config.json is not in the cache at /c/x--y/main/config.json',
        ),
      ),
      config,
    );
    expect(text).toContain('unset HF_HUB_OFFLINE');
    expect(text).toContain('MODEL_CACHE_DIR');
    expect(text).toContain(MAKE_TEST_MODEL_COMMAND);
  });

  it('should name the broken file of a model directory', () => {
    const text = explainStartFailure(
      wrapped(
        new AppError(
          ErrorCode.ModelUnavailable,
          '/models/m/config.json is not valid JSON (truncated or corrupt?): Unexpected end',
        ),
      ),
      config,
    );
    expect(text).toContain('is a model directory that cannot be used: /models/m/config.json is not valid JSON');
    expect(text).toContain(MAKE_TEST_MODEL_COMMAND);
  });

  it('should explain a CLIP_MODEL that names nothing loadable', () => {
    const text = explainStartFailure(
      wrapped(new AppError(ErrorCode.BadUserInput, 'model: no such directory: /nope (from "/nope")')),
      config,
    );
    expect(text).toContain('names no model it can load: Model: no such directory: /nope');
  });

  it('should fall back to the failure message for anything else', () => {
    expect(explainStartFailure(new Error('Cannot listen on 127.0.0.1:4000: listen EADDRINUSE'), config)).toBe(
      'clip-server could not start: Cannot listen on 127.0.0.1:4000: listen EADDRINUSE. (LOG_LEVEL=debug logs the stack trace.)',
    );
  });

  it('should name a provider whose libraries are missing, how to install them, and how to start without it', () => {
    const gpuConfig = loadConfig([], { ORT_EXECUTION_PROVIDERS: 'cuda,cpu' });
    const error = new ExecutionProviderUnavailableError('/m/onnx/vision_model.onnx', {
      provider: 'cuda',
      reason: 'not-installed',
      detail:
        'its libraries are not in /x/bin (OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library)\n',
    });
    const text = explainStartFailure(wrapped(error), gpuConfig);
    expect(text).toContain(
      'ORT_EXECUTION_PROVIDERS=cuda,cpu asks for the cuda execution provider, but its libraries are not installed',
    );
    expect(text).toContain('Failed to load shared library');
    expect(text).toContain(INSTALL_CUDA_COMMAND);
    expect(text).toContain('leave cuda out (ORT_EXECUTION_PROVIDERS=cpu)');
    expect(text).not.toMatch(/\n/);
  });

  it('should say which build has a provider this binary lacks', () => {
    const error = new ExecutionProviderUnavailableError('/m/v.onnx', {
      provider: 'coreml',
      reason: 'not-in-binary',
      detail: 'this onnxruntime-node binary (linux/x64) has only cpu, webgpu, cuda, tensorrt',
    });
    const text = explainStartFailure(wrapped(error), loadConfig([], { ORT_EXECUTION_PROVIDERS: 'coreml,webgpu' }));
    expect(text).toContain('was not built with it');
    expect(text).toContain('only in the macOS build');
    expect(text).toContain('(ORT_EXECUTION_PROVIDERS=webgpu)');
  });
});
