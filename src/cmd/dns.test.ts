import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolvConfUpstreams } from '../discovery/dns-forwarder';
import { parseDnsFlag } from './dns';

test('--dns: off, a list of ADDR:PORT (IPv6 in brackets), or the defaults (loopback and the bridge gateway, not required)', () => {
  assert.equal(parseDnsFlag('off'), undefined);
  assert.deepEqual(parseDnsFlag('127.0.0.1:5353,[::1]:53'), { listen: [{ host: '127.0.0.1', port: 5353 }, { host: '::1', port: 53 }], required: true });
  const d = parseDnsFlag(undefined)!;
  assert.equal(d.required, false);
  assert.deepEqual(d.listen[0], { host: '127.0.0.1', port: 53 });
  assert.ok(d.listen.every((a) => a.port === 53));
  assert.throws(() => parseDnsFlag('127.0.0.1'), /--dns wants off or ADDR:PORT/);
  assert.throws(() => parseDnsFlag('127.0.0.1:70000'), /--dns wants/);
});

test("upstreams are resolv.conf's nameservers, except the DNS server's own addresses (no forwarding loop)", () => {
  const conf = '# generated\nsearch example\nnameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:1\n';
  assert.deepEqual(resolvConfUpstreams(conf, [{ host: '127.0.0.1', port: 53 }]), [{ host: '10.0.0.2', port: 53 }, { host: 'fe80::1', port: 53 }]);
  assert.deepEqual(resolvConfUpstreams(conf, [{ host: '127.0.0.1', port: 5353 }]).length, 3, 'another port is not a loop');
});
