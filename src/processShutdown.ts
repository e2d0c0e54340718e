/**
 * How a server process ends, for every role (all, api, worker):
 *
 * - First SIGTERM/SIGINT: the role's ordered `stop()`, then exit 0 (1 if the stop failed).
 * - Second signal: queued work is abandoned (`abort()`), the ONNX runs already inside onnxruntime finish
 *   (exiting under one aborts the whole process in native code: SIGABRT, "terminate called after throwing an
 *   instance of 'Napi::Error'"), then exit 1.
 * - Hard deadline, the last line of defence: `drainTimeoutMs + graceMs` after the first signal,
 *   `graceMs` after the second, whatever is still pending is logged (`process.getActiveResourcesInfo()`) and
 *   the process exits 1, as soon as the ONNX runs then in flight have returned (at most `graceMs` more).
 *   Its timers are unref'd: they never keep the process alive by themselves.
 *
 * Every exit goes through `exitProcess`, which flushes the logger (bounded) first, so the last lines are
 * written when someone reads them and never waited for when nobody does.
 */
import { flushLogger, type Logger } from './logger.js';

/** Longest wait for log lines to be written before exiting, in ms: enough for a terminal, nothing for a dead pipe. */
const LOG_FLUSH_MS = 1_000;

export interface ProcessShutdownOptions {
  logger: Logger;
  /** The role's ordered, idempotent stop (drain, close, release). */
  stop: () => Promise<void>;
  /** The emergency stop: abandon queued work; resolves once the runs in flight have returned. */
  abort: () => Promise<void>;
  /** DRAIN_TIMEOUT_MS. */
  drainTimeoutMs: number;
  /** SHUTDOWN_GRACE_MS. */
  graceMs: number;
  /** What the role was busy with, for the deadline's log line (e.g. job counts). Must not throw. */
  describePending?: () => Record<string, unknown>;
}

export interface ProcessShutdown {
  /** True once a signal arrived or `stopAndExit` was called. */
  readonly stopping: boolean;
  /** Handles one signal (what SIGTERM/SIGINT call; exported for roles that receive stop requests otherwise). */
  onSignal(signal: string): void;
  /** The ordered stop outside of a signal (a start that failed), bounded by the same deadline; exits with `code`. */
  stopAndExit(code: number): Promise<void>;
}

let exiting: Promise<never> | null = null;

/** Resolves after `ms`; its timer does not keep the process alive. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Flushes the logs (bounded), then exits. The first call decides the code; later calls (a deadline firing
 * while a normal exit flushes) wait for it. `process.exitCode` is set first, in case the loop empties meanwhile.
 */
export function exitProcess(logger: Logger, code: number): Promise<never> {
  exiting ??= (async () => {
    process.exitCode = code;
    await flushLogger(logger, LOG_FLUSH_MS);
    process.exit(code);
  })();
  return exiting;
}

/** Installs the SIGTERM/SIGINT handlers and returns the shutdown they drive. */
export function installProcessShutdown(options: ProcessShutdownOptions): ProcessShutdown {
  const { logger } = options;
  let signals = 0;
  let stopping = false;
  /** Set by the second signal: from then on only the emergency path (or the deadline) exits, and with 1. */
  let emergency = false;
  let deadline: { timer: NodeJS.Timeout; at: number } | null = null;
  const firstSignalAt = { value: 0 };

  /** Arms (or brings forward) the hard deadline; never pushes it back. */
  function armDeadline(inMs: number, reason: string): void {
    const at = Date.now() + inMs;
    if (deadline !== null && deadline.at <= at) return;
    if (deadline !== null) clearTimeout(deadline.timer);
    const timer = setTimeout(() => void onDeadline(reason), inMs);
    timer.unref();
    deadline = { timer, at };
  }

  async function onDeadline(reason: string): Promise<void> {
    let pending: Record<string, unknown> = {};
    try {
      pending = options.describePending?.() ?? {};
    } catch {
      // The log line matters more than its details.
    }
    logger.fatal(
      {
        reason,
        sinceFirstSignalMs: Date.now() - firstSignalAt.value,
        activeResources: process.getActiveResourcesInfo(),
        ...pending,
      },
      'shutdown deadline passed; exiting with work still pending',
    );
    // Only the ONNX runs in flight are worth waiting for: exiting under one aborts the process in native code
    // instead of exiting 1. They end by themselves (one batch), but not even they get more than graceMs.
    await Promise.race([options.abort().catch(() => undefined), delay(options.graceMs)]);
    await exitProcess(logger, 1);
  }

  async function stopAndExit(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    firstSignalAt.value = Date.now();
    armDeadline(
      options.drainTimeoutMs + options.graceMs,
      'DRAIN_TIMEOUT_MS + SHUTDOWN_GRACE_MS after the first signal',
    );
    let exitCode = code;
    try {
      await options.stop();
    } catch (error) {
      logger.fatal({ err: error }, 'shutdown failed');
      exitCode = 1;
    }
    // A second signal made the abort finish the stop early: that stop did not drain, it must not exit 0.
    if (emergency) return;
    await exitProcess(logger, exitCode);
  }

  async function emergencyExit(signal: string): Promise<void> {
    emergency = true;
    // The code from now on, however the process ends: once the HTTP server and the sockets are closed, the abort may
    // await only unreferenced handles (worker threads, the deadline), and an emptied event loop exits with this code.
    process.exitCode = 1;
    logger.warn({ signal }, 'second signal while stopping: exiting now, abandoning unfinished jobs');
    armDeadline(options.graceMs, 'SHUTDOWN_GRACE_MS after the second signal');
    try {
      await options.abort();
    } catch (error) {
      logger.error({ err: error }, 'abandoning the unfinished work failed');
    }
    await exitProcess(logger, 1);
  }

  function onSignal(signal: string): void {
    signals += 1;
    if (signals === 1 && !stopping) {
      logger.info(
        { signal, drainTimeoutMs: options.drainTimeoutMs, shutdownGraceMs: options.graceMs },
        'shutting down',
      );
      void stopAndExit(0);
      return;
    }
    if (signals <= 2) void emergencyExit(signal);
    // A third signal changes nothing: the emergency exit is under way, bounded by the deadline.
  }

  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  return {
    get stopping() {
      return stopping;
    },
    onSignal,
    stopAndExit,
  };
}
