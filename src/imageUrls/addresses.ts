/**
 * @file Which addresses an image URL may reach. Only global unicast addresses, as ipaddr.js classifies them
 * (every special-purpose range it knows, loopback to documentation, is something else), or an address inside
 * one of the operator's allowed networks (IMAGE_URL_ALLOWED_NETWORKS). IPv6 forms that carry an IPv4 address
 * (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address they
 * lead to, so `::ffff:127.0.0.1` is loopback and a NAT64 network still reaches public IPv4 hosts. Pure functions.
 */
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** A parsed allowed network. */
export type Network = [Address, number];

/** Why an address may be reached, or the ipaddr.js range that forbids it (`loopback`, `private`, `linkLocal`, …). */
export type AddressVerdict = { allowed: true } | { allowed: false; range: string };

/** Parses CIDR strings (already checked by the configuration) into networks. */
export function parseNetworks(cidrs: readonly string[]): Network[] {
  return cidrs.map((cidr) => ipaddr.parseCIDR(cidr));
}

/** True for a string that is an IPv4 or IPv6 address (no brackets), in any form ipaddr.js reads. */
export function isIpLiteral(host: string): boolean {
  return ipaddr.isValid(host);
}

/**
 * The IPv4 address an IPv6 address stands for, when it is one of the forms that carry one; otherwise the
 * address itself. IPv4-mapped addresses go to the IPv4 stack; NAT64 and 6to4 gateways forward to the IPv4 address.
 */
function effectiveAddress(address: Address): Address {
  if (address.kind() === 'ipv4') return address;
  const v6 = address as ipaddr.IPv6;
  const range = v6.range();
  if (range === 'ipv4Mapped') return v6.toIPv4Address();
  if (range === 'rfc6052') return ipaddr.fromByteArray(v6.toByteArray().slice(12, 16));
  if (range === '6to4') return ipaddr.fromByteArray(v6.toByteArray().slice(2, 6));
  return address;
}

function inNetworks(address: Address, networks: readonly Network[]): boolean {
  return networks.some(([network, bits]) => network.kind() === address.kind() && address.match(network, bits));
}

/**
 * Judges one address (IPv4 in any form ipaddr.js parses, or IPv6): allowed when it, or the IPv4 address it
 * embeds, is in `allowedNetworks`, or when the address it leads to is global unicast.
 */
export function judgeAddress(text: string, allowedNetworks: readonly Network[]): AddressVerdict {
  let address: Address;
  try {
    address = ipaddr.parse(text);
  } catch {
    return { allowed: false, range: 'invalid' };
  }
  const effective = effectiveAddress(address);
  if (inNetworks(address, allowedNetworks) || inNetworks(effective, allowedNetworks)) return { allowed: true };
  const range = effective.range();
  return range === 'unicast' ? { allowed: true } : { allowed: false, range };
}
