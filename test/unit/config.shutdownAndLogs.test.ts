import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('the shutdown and logging settings', () => {
  it('should default to a 5 s shutdown grace and automatic log format', () => {
    expect(loadConfig([], {})).toMatchObject({ shutdownGraceMs: 5_000, logFormat: 'auto' });
  });

  it('should read SHUTDOWN_GRACE_MS and LOG_FORMAT from the environment and their flags', () => {
    expect(loadConfig([], { SHUTDOWN_GRACE_MS: '250', LOG_FORMAT: 'Pretty' })).toMatchObject({
      shutdownGraceMs: 250,
      logFormat: 'pretty',
    });
    expect(loadConfig(['--shutdown-grace-ms', '0', '--log-format', 'json'], {})).toMatchObject({
      shutdownGraceMs: 0,
      logFormat: 'json',
    });
  });

  it('should refuse bad values naming the setting', () => {
    expect(() => loadConfig([], { SHUTDOWN_GRACE_MS: '-1' })).toThrow(ConfigError);
    expect(() => loadConfig([], { SHUTDOWN_GRACE_MS: '-1' })).toThrow(
      /SHUTDOWN_GRACE_MS: expected an integer >= 0, got "-1"/,
    );
    expect(() => loadConfig([], { LOG_FORMAT: 'yaml' })).toThrow(
      /LOG_FORMAT: expected one of auto, json, pretty, got "yaml"/,
    );
  });
});
