import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../src/errors.js';
import { createLogger, flushLogger, resolveLogFormat } from '../../src/logger.js';

describe('resolveLogFormat', () => {
  it('should pick pretty lines for a terminal and JSON lines for anything else when auto', () => {
    expect(resolveLogFormat('auto', true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
  });

  it('should keep a forced format whatever stdout is', () => {
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(resolveLogFormat('pretty', false)).toBe('pretty');
  });
});

describe('createLogger', () => {
  /** The logger's error serializer, applied the way pino applies it. */
  function serialize(level: 'info' | 'debug', error: Error): Record<string, unknown> {
    const logger = createLogger(level);
    const serializer = (logger as unknown as { [key: symbol]: Record<string, (value: unknown) => unknown> })[
      pino.symbols.serializersSym
    ]!.err!;
    return serializer(error) as Record<string, unknown>;
  }

  it('should log the stack of a coded (expected) error only at debug level', () => {
    const error = new AppError(
      ErrorCode.ModelUnavailable,
      'config.json of x/y not found at https://hub/x/y/resolve/main/config.json',
    );
    const atInfo = serialize('info', error);
    expect(atInfo).toMatchObject({ message: error.message, code: ErrorCode.ModelUnavailable });
    expect(atInfo).not.toHaveProperty('stack');
    expect(serialize('debug', error).stack).toContain('AppError');
  });

  it('should always log the stack of an uncoded error: it is a bug', () => {
    expect(serialize('info', new TypeError('x is undefined')).stack).toContain('TypeError: x is undefined');
  });
});

describe('flushLogger', () => {
  it('should resolve once the destination has flushed', async () => {
    const written: string[] = [];
    const logger = pino(
      {},
      new Writable({
        write: (chunk: Buffer, _encoding, callback) => void (written.push(chunk.toString()), callback()),
      }),
    );
    logger.info('one');
    await flushLogger(logger, 5_000);
    expect(written.join('')).toContain('"msg":"one"');
  });

  it('should give up after its timeout when the destination never flushes', async () => {
    const logger = pino({}, { write: () => {} });
    // A destination whose flush never calls back (a worker that stopped reading).
    (logger as unknown as { flush: (cb: () => void) => void }).flush = () => {};
    const started = performance.now();
    await flushLogger(logger, 50);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });
});
