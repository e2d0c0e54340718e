import { describe, expect, it } from 'vitest';
import { judgeAddress, parseNetworks } from '../../../src/imageUrls/addresses.js';

const NONE = parseNetworks([]);

describe('judgeAddress', () => {
  it.each([
    ['93.184.216.34', 'a public IPv4 address'],
    ['1.1.1.1', 'a public resolver'],
    ['2606:4700:4700::1111', 'a public IPv6 address'],
    ['::ffff:8.8.8.8', 'an IPv4-mapped public address'],
    ['64:ff9b::808:808', 'NAT64 of a public address'],
    ['2002:808:808::1', '6to4 of a public address'],
  ])('should allow %s (%s)', (address) => {
    expect(judgeAddress(address, NONE)).toEqual({ allowed: true });
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['169.254.169.254', 'linkLocal'],
    ['0.0.0.0', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['192.0.2.1', undefined],
    ['198.51.100.7', undefined],
    ['203.0.113.9', undefined],
    ['198.18.0.1', undefined],
    ['240.0.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', undefined],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['64:ff9b::a00:1', 'private'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:a9fe:a9fe::1', 'linkLocal'],
    ['2001::1', undefined],
  ])('should refuse %s (%s)', (address, range) => {
    const verdict = judgeAddress(address, NONE);
    expect(verdict.allowed).toBe(false);
    if (range !== undefined) expect(verdict).toEqual({ allowed: false, range });
  });

  it('should refuse what is not an address at all', () => {
    expect(judgeAddress('not-an-address', NONE)).toEqual({ allowed: false, range: 'invalid' });
  });

  it('should allow an address inside an allowed network, in either spelling, and nothing next to it', () => {
    const allowed = parseNetworks(['127.0.0.1/32', 'fd00:1::/64', '10.20.0.0/16']);
    expect(judgeAddress('127.0.0.1', allowed)).toEqual({ allowed: true });
    expect(judgeAddress('::ffff:127.0.0.1', allowed)).toEqual({ allowed: true });
    expect(judgeAddress('fd00:1::5', allowed)).toEqual({ allowed: true });
    expect(judgeAddress('10.20.255.1', allowed)).toEqual({ allowed: true });
    expect(judgeAddress('127.0.0.2', allowed)).toEqual({ allowed: false, range: 'loopback' });
    expect(judgeAddress('fd00:2::5', allowed)).toEqual({ allowed: false, range: 'uniqueLocal' });
    expect(judgeAddress('10.21.0.1', allowed)).toEqual({ allowed: false, range: 'private' });
  });
});
