import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { announcedEndpoint, hostAddress, parseAdvertiseUrl, type HostNetwork } from './advertise-url';

const v4 = (address: string, internal = false): NetworkInterfaceInfo => ({ address, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: `${address}/24` });
const v6 = (address: string): NetworkInterfaceInfo => ({ address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: `${address}/64`, scopeid: 0 });

// A host as Linux describes it: eth0 carries the default route, docker0 is Docker's bridge.
const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;
const host: HostNetwork = {
  interfaces: { lo: [v4('127.0.0.1', true)], docker0: [v4('172.17.0.1')], eth0: [v4('192.0.2.2'), v6('fe80::1'), v6('fd00::2')] },
  ipv4Routes: ROUTES,
  ipv6Routes: '',
};

test('a wildcard --listen announces the address of the default route interface, and says so', () => {
  const a = announcedEndpoint({ scheme: 'http', host: '0.0.0.0', port: 4100, network: host });
  assert.equal(a.endpoint, 'http://192.0.2.2:4100');
  assert.match(a.note!, /listening on 0\.0\.0\.0:4100: announcing http:\/\/192\.0\.2\.2:4100 .*eth0, which carries this host's default route.*--advertise-url/);
  assert.equal(announcedEndpoint({ scheme: 'https', host: '::', port: 4100, network: host }).endpoint, 'https://192.0.2.2:4100', ':: takes IPv4 too');
});

test('of several default routes the lowest metric wins; container bridges are never chosen', () => {
  const two: HostNetwork = {
    ...host,
    interfaces: { ...host.interfaces, wlan0: [v4('10.1.2.3')] },
    ipv4Routes: `${ROUTES}wlan0\t00000000\t0102000A\t0003\t0\t0\t50\t00000000\t0\t0\t0\n`,
  };
  assert.equal(hostAddress('0.0.0.0', two)?.address, '10.1.2.3');
  // No default route: the first interface that is not a bridge of containers, not docker0's.
  const noRoute: HostNetwork = { interfaces: { lo: [v4('127.0.0.1', true)], docker0: [v4('172.17.0.1')], 'br-0a1b2c': [v4('172.18.0.1')], ens3: [v4('10.0.0.5')] }, ipv4Routes: '', ipv6Routes: '' };
  const chosen = hostAddress('0.0.0.0', noRoute)!;
  assert.equal(chosen.address, '10.0.0.5');
  assert.match(chosen.why, /first address of ens3/);
});

test('an IPv6-only host announces its global IPv6 address (bracketed) for ::, never a link-local one', () => {
  const v6only: HostNetwork = {
    interfaces: { lo: [v4('127.0.0.1', true)], eth0: [v6('fe80::fc:ff:fe00:1'), v6('2001:db8::7')] },
    ipv4Routes: '',
    ipv6Routes: [
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo',
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000003 00000000 00000003     eth0',
    ].join('\n'),
  };
  assert.equal(announcedEndpoint({ scheme: 'http', host: '::', port: 80, network: v6only }).endpoint, 'http://[2001:db8::7]:80');
});

test('loopback and concrete --listen addresses are announced as they are', () => {
  assert.deepEqual(announcedEndpoint({ scheme: 'http', host: '127.0.0.1', port: 4311, network: host }), { endpoint: 'http://127.0.0.1:4311' });
  assert.deepEqual(announcedEndpoint({ scheme: 'http', host: '::1', port: 4311, network: host }), { endpoint: 'http://[::1]:4311' });
  assert.deepEqual(announcedEndpoint({ scheme: 'http', host: '10.0.0.5', port: 4311, network: host }), { endpoint: 'http://10.0.0.5:4311' });
});

test('a host with only loopback announces 127.0.0.1 and warns that only its own agents can use it', () => {
  const a = announcedEndpoint({ scheme: 'http', host: '0.0.0.0', port: 4100, network: { interfaces: { lo: [v4('127.0.0.1', true)] }, ipv4Routes: '', ipv6Routes: '' } });
  assert.equal(a.endpoint, 'http://127.0.0.1:4100');
  assert.equal(a.warn, true);
  assert.match(a.note!, /give --advertise-url/);
});

test('--advertise-url wins over --listen, and is checked', () => {
  const a = announcedEndpoint({ scheme: 'http', host: '0.0.0.0', port: 4100, advertiseUrl: parseAdvertiseUrl('http://wharf-1.example:4100/', false), network: host });
  assert.equal(a.endpoint, 'http://wharf-1.example:4100');
  assert.match(a.note!, /announcing http:\/\/wharf-1\.example:4100 .*\(--advertise-url\)/);
  assert.equal(parseAdvertiseUrl('https://[2001:db8::7]:4100', true), 'https://[2001:db8::7]:4100');
  for (const [url, tls, why] of [
    ['wharf-1:4100', false, /expected an http:\/\/ or https:\/\/ URL|not a URL/],
    ['http://h:4100', true, /serves HTTPS/],
    ['https://h:4100', false, /serves plain HTTP/],
    ['http://h:4100/wharf', false, /no path/],
    ['http://u:p@h:4100', false, /credentials/],
    ['http://0.0.0.0:4100', false, /not an address anyone can dial/],
    ['http://[::]:4100', false, /not an address anyone can dial/],
  ] as const) {
    assert.throws(() => parseAdvertiseUrl(url, tls), why, url);
  }
});
