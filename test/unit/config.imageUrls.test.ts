import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('image URL settings', () => {
  it('should default to public URLs, no allowed networks, 5 redirects, 10 s, 16 fetches', () => {
    const config = loadConfig([], {});
    expect(config).toMatchObject({
      imageUrls: 'public',
      imageUrlAllowedNetworks: [],
      imageUrlMaxRedirects: 5,
      imageUrlTimeoutMs: 10_000,
      imageUrlConcurrency: 16,
    });
  });

  it('should read CIDR lists, a bare address as its own network, in canonical form', () => {
    const config = loadConfig(['--image-url-allowed-networks', '10.20.0.0/16, fd00:1::/64,127.0.0.1'], {
      IMAGE_URLS: 'OFF',
    });
    expect(config.imageUrls).toBe('off');
    expect(config.imageUrlAllowedNetworks).toEqual(['10.20.0.0/16', 'fd00:1::/64', '127.0.0.1/32']);
  });

  it.each([
    [{ IMAGE_URLS: 'private' }, /IMAGE_URLS: expected one of public, off/],
    [
      { IMAGE_URL_ALLOWED_NETWORKS: '10.0.0.0/33' },
      /IMAGE_URL_ALLOWED_NETWORKS: expected CIDR networks .*"10\.0\.0\.0\/33"/,
    ],
    [{ IMAGE_URL_ALLOWED_NETWORKS: 'intranet' }, /IMAGE_URL_ALLOWED_NETWORKS: expected CIDR networks/],
    [{ IMAGE_URL_MAX_REDIRECTS: '-1' }, /IMAGE_URL_MAX_REDIRECTS: expected an integer between 0 and 20/],
    [{ IMAGE_URL_TIMEOUT_MS: '0' }, /IMAGE_URL_TIMEOUT_MS: expected an integer between 1 and 600000/],
  ])('should refuse %j naming the setting', (env, message) => {
    expect(() => loadConfig([], env)).toThrow(ConfigError);
    expect(() => loadConfig([], env)).toThrow(message);
  });
});
