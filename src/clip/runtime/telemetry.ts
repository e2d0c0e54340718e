/**
 * ONNX Runtime's usage telemetry. Its Linux build queues events (session creation: the OS, the runtime, a hash of
 * the model) in `~/.cache/Microsoft/DeveloperTools/.onnxruntime/` for upload to Microsoft, unless the environment
 * variable below is set when its native code starts. Its native code reads the process environment (getenv), so
 * the variable must be set by the main thread (a worker thread's `process.env` is a private copy) before any
 * session is created, and it must be in the environment of every child process that creates one.
 */

/** ONNX Runtime's own switch, read by its native code. */
export const ORT_DISABLE_TELEMETRY = 'ORT_DISABLE_TELEMETRY';

/**
 * Makes `env` say what ORT_TELEMETRY decided: telemetry off (the variable set to 1) unless `enabled`, in which case
 * the variable is removed, so an inherited one cannot silently override the opt-in either.
 */
export function applyOrtTelemetry(enabled: boolean, env: NodeJS.ProcessEnv = process.env): void {
  if (enabled) delete env.ORT_DISABLE_TELEMETRY;
  else env[ORT_DISABLE_TELEMETRY] = '1';
}
