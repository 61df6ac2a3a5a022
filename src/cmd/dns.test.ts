import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { resolvConfUpstreams } from '../discovery/dns-forwarder';
import { createLogger } from '../lib';
import { parseDnsFlag, startDiscoveryDns, STANDBY_RETRY_MS, taskDnsWarning } from './dns';
import type { RegionRuntimes } from './regions';

// No question is asked in these tests: the registry is never read.
const noRegions = { running: async () => [] } as unknown as RegionRuntimes;
const log = createLogger('dns-test', 'silent');

/** Holds 127.0.0.1:PORT on UDP and TCP as another process would (a free port when 0). */
async function holdAddress(port = 0): Promise<{ port: number; release(): Promise<void> }> {
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r, j) => udp.once('error', j).bind(port, '127.0.0.1', () => r()));
  const tcp = net.createServer();
  await new Promise<void>((r, j) => tcp.once('error', j).listen(udp.address().port, '127.0.0.1', () => r()));
  return { port: udp.address().port, release: async () => void (udp.close(), await new Promise((r) => tcp.close(r))) };
}

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

test("wharf up warns once when tasks get no resolver of Wharf's (its DNS not on the bridge gateway, port 53), naming the flag that fixes it", () => {
  const bridge = '172.17.0.1';
  const loopback = { host: '127.0.0.1', port: 5335 };
  assert.equal(
    taskDnsWarning({ bridge, serving: [loopback], taskDns: undefined, dnsFlag: '127.0.0.1:5335', taskDnsFlag: undefined }),
    "tasks will not resolve Cloud Map (service discovery) names or load balancer DNS names: Wharf's DNS answers on 127.0.0.1:5335 only, not on 172.17.0.1:53, where containers reach it. " +
      "Add it with --dns 127.0.0.1:5335,172.17.0.1:53 (port 53 needs root or CAP_NET_BIND_SERVICE), or name a resolver that forwards to Wharf's DNS with --task-dns ADDR.",
  );
  assert.match(taskDnsWarning({ bridge, serving: [], taskDns: undefined, dnsFlag: undefined, taskDnsFlag: undefined })!, /Wharf's DNS is not listening, not on 172\.17\.0\.1:53.* --dns 172\.17\.0\.1:53 /);
  // Tasks resolve through Wharf, or resolution through it was turned off on purpose: nothing said.
  assert.equal(taskDnsWarning({ bridge, serving: [loopback, { host: bridge, port: 53 }], taskDns: [bridge], dnsFlag: undefined, taskDnsFlag: undefined }), undefined);
  assert.equal(taskDnsWarning({ bridge, serving: [loopback], taskDns: ['10.0.0.2'], dnsFlag: '127.0.0.1:5335', taskDnsFlag: '10.0.0.2' }), undefined);
  assert.equal(taskDnsWarning({ bridge, serving: [], taskDns: undefined, dnsFlag: 'off', taskDnsFlag: undefined }), undefined);
  assert.equal(taskDnsWarning({ bridge, serving: [loopback], taskDns: undefined, dnsFlag: '127.0.0.1:5335', taskDnsFlag: 'off' }), undefined);
});

test("upstreams are resolv.conf's nameservers, except the DNS server's own addresses (no forwarding loop)", () => {
  const conf = '# generated\nsearch example\nnameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:1\n';
  assert.deepEqual(resolvConfUpstreams(conf, [{ host: '127.0.0.1', port: 53 }]), [{ host: '10.0.0.2', port: 53 }, { host: 'fe80::1', port: 53 }]);
  assert.deepEqual(resolvConfUpstreams(conf, [{ host: '127.0.0.1', port: 5353 }]).length, 3, 'another port is not a loop');
});

test('a single server: an address in use given with --dns is an error at start', async () => {
  const held = await holdAddress();
  try {
    await assert.rejects(startDiscoveryDns({ listen: [{ host: '127.0.0.1', port: held.port }], required: true, upstreams: [] }, noRegions, 'us-east-1', log), /the DNS server cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  } finally {
    await held.release();
  }
});

test('a replica (standby): an address in use is waited for, and taken over (UDP and TCP) once released', async () => {
  const held = await holdAddress();
  const addr = { host: '127.0.0.1', port: held.port };
  const dns = await startDiscoveryDns({ listen: [addr], required: true, upstreams: [], standby: true }, noRegions, 'us-east-1', log);
  try {
    assert.deepEqual(dns.addresses, []);
    assert.deepEqual(dns.standingBy, [addr]);
    const released = Date.now();
    await held.release();
    while (dns.addresses.length === 0) {
      assert.ok(Date.now() - released < 5 * STANDBY_RETRY_MS, 'taken over within a few retries');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(dns.addresses, [addr]);
    assert.deepEqual(dns.standingBy, []);
    // It holds both now: nobody else can bind either.
    await assert.rejects(holdAddress(held.port), /EADDRINUSE/);
  } finally {
    await dns.close();
  }
  // Closed: the address is free again.
  await (await holdAddress(held.port)).release();
});

test('a replica that closes while standing by stops trying', async () => {
  const held = await holdAddress();
  const dns = await startDiscoveryDns({ listen: [{ host: '127.0.0.1', port: held.port }], required: true, upstreams: [], standby: true }, noRegions, 'us-east-1', log);
  await dns.close();
  await held.release();
  await new Promise((r) => setTimeout(r, 3 * STANDBY_RETRY_MS));
  assert.deepEqual(dns.addresses, []);
  await (await holdAddress(held.port)).release();
});
