import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** The process logger: structured JSON lines on stdout. Children carry jobId/requestId. */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { service: 'clip-server' } });
}

/** A logger that writes nothing: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
