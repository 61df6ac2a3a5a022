import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipInRange, parseIpAddress, parseIpRange } from './ip-address';

test('addresses in their usual notations; an IPv4-mapped IPv6 address reads as IPv4', () => {
  assert.deepEqual(parseIpAddress('192.0.2.7'), { version: 4, value: 0xc0000207n });
  assert.deepEqual(parseIpAddress('::ffff:192.0.2.7'), { version: 4, value: 0xc0000207n });
  assert.deepEqual(parseIpAddress('::1'), { version: 6, value: 1n });
  assert.deepEqual(parseIpAddress('::'), { version: 6, value: 0n });
  assert.equal(parseIpAddress('2001:db8::8:800:200c:417a')?.value, 0x20010db80000000000080800200c417an);
  assert.equal(parseIpAddress('2001:DB8:0:0:8:800:200C:417A')?.value, 0x20010db80000000000080800200c417an);
  assert.equal(parseIpAddress('64:ff9b::192.0.2.7')?.value, (0x64ff9bn << 96n) | 0xc0000207n);
  for (const bad of ['', '1.2.3', '256.1.1.1', '1.2.3.4.5', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '12345::', 'g::', ':1::', '::1.2.3', 'localhost']) {
    assert.equal(parseIpAddress(bad), undefined, bad);
  }
});

test('ranges: prefixes, single addresses, host bits ignored, no mixing of families', () => {
  const inRange = (a: string, r: string) => ipInRange(parseIpAddress(a)!, parseIpRange(r)!);
  assert.equal(inRange('10.1.2.3', '10.0.0.0/8'), true);
  assert.equal(inRange('11.0.0.1', '10.0.0.0/8'), false);
  assert.equal(inRange('10.1.2.3', '10.1.2.3/8'), true, 'host bits below the prefix are ignored');
  assert.equal(inRange('10.1.2.3', '10.1.2.3'), true);
  assert.equal(inRange('10.1.2.4', '10.1.2.3'), false);
  assert.equal(inRange('8.8.8.8', '0.0.0.0/0'), true);
  assert.equal(inRange('2001:db8:ffff::1', '2001:db8::/32'), true);
  assert.equal(inRange('2001:db9::1', '2001:db8::/32'), false);
  assert.equal(inRange('::ffff:10.0.0.1', '10.0.0.0/8'), true);
  assert.equal(inRange('10.0.0.1', '::/0'), false, 'an IPv4 address is not in an IPv6 range');
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/-1', 'x/8']) assert.equal(parseIpRange(bad), undefined, bad);
});
