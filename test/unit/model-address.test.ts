import { describe, expect, it } from 'vitest';
import * as A from '../../src/model/address.js';

describe('IPv4 address math', () => {
  it('round-trips addresses and rejects malformed ones', () => {
    expect(A.ipToInt('10.0.0.1')).toBe(167772161);
    expect(A.intToIp(167772161)).toBe('10.0.0.1');
    expect(A.intToIp(A.ipToInt('255.255.255.255'))).toBe('255.255.255.255');
    for (const bad of ['10.0.0', '10.0.0.256', '010.0.0.1', 'a.b.c.d', '', '1.2.3.4.5']) {
      expect(A.isIpv4(bad)).toBe(false);
      expect(() => A.ipToInt(bad)).toThrow(/not an IPv4 address/);
    }
  });

  it('parses CIDRs strictly (host bits must be zero)', () => {
    expect(A.parseCidr('10.10.0.0/24')).toEqual({ network: A.ipToInt('10.10.0.0'), prefixLen: 24 });
    expect(() => A.parseCidr('10.10.0.1/24')).toThrow(/host bits set.*10\.10\.0\.0\/24/);
    expect(() => A.parseCidr('10.10.0.0/33')).toThrow(/> 32/);
    expect(() => A.parseCidr('10.10.0.0')).toThrow(/CIDR/);
    expect(A.isCidr('0.0.0.0/0')).toBe(true);
    expect(A.formatCidr(A.parseCidr('192.168.4.0/22'))).toBe('192.168.4.0/22');
  });

  it('contains / within / overlaps', () => {
    const lan = A.parseCidr('10.0.0.0/24');
    expect(A.contains(lan, '10.0.0.255')).toBe(true);
    expect(A.contains(lan, '10.0.1.0')).toBe(false);
    expect(A.within(A.parseCidr('10.0.0.192/27'), lan)).toBe(true);
    expect(A.within(lan, A.parseCidr('10.0.0.192/27'))).toBe(false);
    expect(A.overlaps(A.parseCidr('10.0.0.128/25'), lan)).toBe(true);
    expect(A.overlaps(A.parseCidr('10.0.1.0/24'), lan)).toBe(false);
    expect(A.overlaps(A.parseCidr('10.0.0.255/32'), lan)).toBe(true);
  });

  it('allocates the n-th host and refuses what does not fit', () => {
    const c = A.parseCidr('10.0.0.0/29'); // .1–.6 usable
    expect(A.host(c, 1)).toBe('10.0.0.1');
    expect(A.host(c, 6)).toBe('10.0.0.6');
    expect(() => A.host(c, 7)).toThrow(RangeError);
    expect(() => A.host(c, 0)).toThrow(RangeError);
    expect(A.hostRange(A.parseCidr('10.0.0.0/31')).count).toBe(2);
    expect(A.hostRange(A.parseCidr('10.0.0.7/32'))).toEqual({ first: A.ipToInt('10.0.0.7'), last: A.ipToInt('10.0.0.7'), count: 1 });
  });

  it('lists every address of a small CIDR and knows network/broadcast', () => {
    expect(A.addresses(A.parseCidr('10.0.0.4/30'))).toEqual(['10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7']);
    expect(() => A.addresses(A.parseCidr('10.0.0.0/16'), 1024)).toThrow(/65536 addresses/);
    const lan = A.parseCidr('10.0.0.0/24');
    expect(A.isNetworkOrBroadcast(lan, '10.0.0.0')).toBe(true);
    expect(A.isNetworkOrBroadcast(lan, '10.0.0.255')).toBe(true);
    expect(A.isNetworkOrBroadcast(lan, '10.0.0.1')).toBe(false);
  });
});
