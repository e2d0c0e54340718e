import { describe, expect, it } from 'vitest';
import { createHostCheck, foreignHostMessage, hostNameOf } from '../../../src/http/allowedHosts.js';

describe('hostNameOf', () => {
  it('should take the name of a Host header: lower case, no port, no trailing dot, IPv6 in brackets', () => {
    expect(hostNameOf('LocalHost:4000')).toBe('localhost');
    expect(hostNameOf('127.0.0.1')).toBe('127.0.0.1');
    expect(hostNameOf('[::1]:4000')).toBe('[::1]');
    expect(hostNameOf('api.example.com.:443')).toBe('api.example.com');
    expect(hostNameOf(' evil.example ')).toBe('evil.example');
  });
});

describe('createHostCheck', () => {
  it('should allow exactly the listed names on any port, requests without a Host, and anything for any', () => {
    const check = createHostCheck(['localhost', '127.0.0.1', '[::1]']);
    for (const host of ['localhost', 'localhost:4000', '127.0.0.1:1', '[::1]:4000', 'LOCALHOST', undefined])
      expect(check(host), String(host)).toBe(true);
    for (const host of [
      'evil.example',
      'evil.example:4000',
      'localhost.evil.example',
      '127.0.0.2',
      '[::2]',
      '',
      'localhost@evil.example',
    ]) {
      expect(check(host), host).toBe(false);
    }
    expect(createHostCheck('any')('evil.example')).toBe(true);
  });

  it('should name the host and the setting in the refusal, within bounds', () => {
    expect(foreignHostMessage('evil.example:4000')).toBe(
      'This server does not answer to the host "evil.example" (ALLOWED_HOSTS)',
    );
    expect(foreignHostMessage('x'.repeat(10_000)).length).toBeLessThan(400);
  });
});
