/**
 * ONNX Runtime execution providers: the names ORT_EXECUTION_PROVIDERS accepts, the error a session
 * raises when one of them cannot be used, and how a user gets each one. The check itself runs where the sessions
 * live, in the worker threads (onnxWorker.js), against the onnxruntime-node binary actually installed.
 */

// The names ORT_EXECUTION_PROVIDERS accepts are the setting's vocabulary, so config.ts declares them.
export { EXECUTION_PROVIDERS, type ExecutionProvider } from '../../config.js';

/**
 * Why a provider cannot be used:
 * - `not-in-binary`: the installed onnxruntime-node was not built with it (e.g. coreml outside macOS);
 * - `not-installed`: it is built in but its libraries were never downloaded (cuda/tensorrt, whose binaries the
 *   package's install script fetches, and this repo's .npmrc skips);
 * - `failed`: its libraries are there but creating a session with it failed (no GPU, driver, CUDA or cuDNN).
 */
export type ProviderFailureReason = 'not-in-binary' | 'not-installed' | 'failed';

/** What the worker thread reports when a requested provider cannot be used. */
export interface ProviderFailure {
  provider: string;
  reason: ProviderFailureReason;
  /** ONNX Runtime's own words, or what the worker found. */
  detail: string;
}

/** A session could not use a provider ORT_EXECUTION_PROVIDERS asks for; startupFailure.ts explains it to the operator. */
export class ExecutionProviderUnavailableError extends Error {
  override name = 'ExecutionProviderUnavailableError';
  readonly provider: string;
  readonly reason: ProviderFailureReason;
  readonly detail: string;

  constructor(graphPath: string, failure: ProviderFailure) {
    super(
      `${graphPath}: the ${failure.provider} execution provider cannot be used (${failure.reason}): ${failure.detail.replace(/\s+/g, ' ').trim()}`,
    );
    this.provider = failure.provider;
    this.reason = failure.reason;
    this.detail = failure.detail.replace(/\s+/g, ' ').trim();
  }
}

/** The npm command that fetches onnxruntime-node's CUDA 12 (and TensorRT) provider libraries, despite .npmrc's skip. */
export const INSTALL_CUDA_COMMAND = 'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node';

/** How to get `provider` working, for the start-failure paragraph and the README. */
export function howToInstall(provider: string, reason: ProviderFailureReason): string {
  switch (provider) {
    case 'cuda':
    case 'tensorrt': {
      const libraries =
        reason === 'failed'
          ? 'its libraries are installed, so check the machine: an NVIDIA GPU with its driver, CUDA 12 and cuDNN 9 on the library path' +
            (provider === 'tensorrt' ? ', and TensorRT 10' : '')
          : `install its libraries (onnxruntime-node downloads them from NuGet in its install script, which this repo's .npmrc skips) with \`${INSTALL_CUDA_COMMAND}\` (or \`npm install onnxruntime-node --onnxruntime-node-install=cuda12\`) on a Linux x64 machine with network, CUDA 12 and cuDNN 9`;
      return libraries;
    }
    case 'webgpu':
      return 'WebGPU needs a GPU adapter ONNX Runtime can open (Dawn): on Linux x64 a Vulkan driver for the GPU (libvulkan1 and the vendor driver), on Windows Direct3D 12, on macOS Metal';
    case 'coreml':
      return 'CoreML exists only in the macOS build of onnxruntime-node: run the server on macOS';
    case 'dml':
      return 'DirectML exists only in the Windows build of onnxruntime-node: run the server on Windows';
    default:
      return `onnxruntime-node has no provider named ${provider}`;
  }
}
