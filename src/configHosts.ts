/**
 * Which `Host` names the server answers to (ALLOWED_HOSTS resolved against HOST), for the DNS-rebinding check.
 */
import type { Config } from './config.js';

/** Listen addresses that mean "every interface": a request may name the machine in any way. */
const ALL_INTERFACES: ReadonlySet<string> = new Set(['0.0.0.0', '::', '[::]', '']);

/** How an address reads in a `Host` header: IPv6 in brackets. */
function hostHeaderName(address: string): string {
  const name = address.trim().toLowerCase();
  return name.includes(':') && !name.startsWith('[') ? `[${name}]` : name;
}

/**
 * The host names requests may carry, or `any`: ALLOWED_HOSTS resolved against HOST. `auto` lets in the loopback
 * names and HOST itself when the server listens on one address (a browser on this machine reaches it by those
 * names; a page of another name that resolves here is a DNS-rebinding attempt), and any name when it listens on
 * every interface (it is then reached by names this process cannot know: list them to restrict).
 */
export function allowedHostNames(config: Pick<Config, 'allowedHosts' | 'host'>): 'any' | readonly string[] {
  if (config.allowedHosts !== 'auto') return config.allowedHosts;
  if (ALL_INTERFACES.has(config.host.trim())) return 'any';
  return [...new Set(['localhost', '127.0.0.1', '[::1]', hostHeaderName(config.host)])];
}
