/**
 * The pino factory: JSON lines (one object a line, for log collectors) or human-readable lines (pino-pretty,
 * for a person at a terminal), and the one way to flush them before the process exits.
 *
 * JSON goes to stdout through a *synchronous* destination. pino's default destination buffers and writes
 * asynchronously, and flushes what is left from a `process.on('exit')` hook; sonic-boom 4's `flushSync`
 * treats every write error but EAGAIN as "retry in 100 ms", forever, so an exit while stdout's reader was
 * gone (EPIPE) never returned: the server did not exit. A synchronous destination has
 * nothing buffered, registers no exit hook, and on EPIPE pino turns logging off instead of retrying.
 *
 * Pretty output is a pino transport (a worker thread running pino-pretty), asynchronous by nature: callers
 * `flushLogger()` before exiting, bounded, so the last lines (the start-up failure paragraph) are written
 * but a stuck terminal can never hold the process.
 */
import { pino, stdSerializers, type Logger, type LevelWithSilent, type SerializedError } from 'pino';
import { isAppError } from './errors.js';

export type { Logger };

/** How log lines look: `json` (one object a line) or `pretty` (coloured, human-readable). */
export type LogFormat = 'json' | 'pretty';
/** The LOG_FORMAT setting: a format, or `auto` (pretty when stdout is a terminal, JSON otherwise). */
export type LogFormatSetting = LogFormat | 'auto';

export interface LoggerOptions {
  /** @default 'json' */
  format?: LogFormat;
}

/** `auto` → pretty for a person at a terminal, JSON for everything else (pipes, files, log collectors). */
export function resolveLogFormat(setting: LogFormatSetting, stdoutIsTty: boolean): LogFormat {
  if (setting !== 'auto') return setting;
  return stdoutIsTty ? 'pretty' : 'json';
}

/** Field names pino-pretty leaves out of every line: constant for the process, noise for a reader. */
const PRETTY_IGNORE = 'pid,hostname,service';

/**
 * Errors carrying a public code (AppError and its kind) are expected conditions whose message says
 * everything: their stack is logged only at debug level. Anything else keeps its stack: it is a bug.
 */
function errorSerializer(level: LevelWithSilent): (error: unknown) => unknown {
  const withStacks = level === 'debug' || level === 'trace';
  return (error) => {
    if (!(error instanceof Error)) return error;
    const serialized: SerializedError = stdSerializers.err(error);
    if (withStacks || !isAppError(error)) return serialized;
    const { stack: _stack, ...rest } = serialized;
    return rest;
  };
}

/** The process logger on stdout. Children carry jobId/requestId. */
export function createLogger(level: LevelWithSilent = 'info', options: LoggerOptions = {}): Logger {
  const base = { level, base: { service: 'clip-server' }, serializers: { err: errorSerializer(level) } };
  if (options.format === 'pretty') {
    const transport = pino.transport({
      target: 'pino-pretty',
      // No flush from a process 'exit' hook: there it blocks the main thread (Atomics.wait) until the worker
      // catches up, and a worker writing into a dead pipe never does. flushLogger() does it instead.
      worker: { autoEnd: false },
      // sync: the worker writes each line before it takes the next, so a flush that saw the worker catch up
      // means the lines are on the terminal. Colours follow the terminal (pino-pretty's default: fd 1 a TTY).
      options: { destination: 1, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: PRETTY_IGNORE, singleLine: true },
    });
    return pino(base, transport);
  }
  return pino(base, pino.destination({ dest: 1, sync: true }));
}

/** A logger that writes nothing: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Resolves once everything logged so far has been handed to the output, or after `timeoutMs`, whichever
 * comes first; never rejects. Its timer does not keep the process alive.
 */
export function flushLogger(logger: Logger, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    try {
      logger.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      // A destination that lost its output (EPIPE) has nothing left to flush.
      clearTimeout(timer);
      resolve();
    }
  });
}
