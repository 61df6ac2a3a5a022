/**
 * The DNS server on loopback, fed by a real control plane's Cloud Map records: dns-packet as the
 * client over UDP and TCP, and a fake upstream resolver (also on loopback) for forwarded names.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import * as packet from 'dns-packet';
import { cloudMapHandlers } from '../control/cloudmap';
import { controlTestContext } from '../control/control-test-context';
import { createLogger } from '../lib';
import { DnsServer } from './dns-server';
import { registrySnapshot } from './registry-snapshot';

let server: DnsServer;
let port: number;
let upstream: dgram.Socket;
let upstreamTcp: net.Server;
const upstreamQuestions: string[] = [];
let cm: ReturnType<typeof cloudMapHandlers>;
let serviceId: string;

/** A fake upstream resolver: every A question gets 192.0.2.7, TTL 42 (UDP and TCP). */
function fakeAnswer(msg: Buffer): Buffer {
  const q = packet.decode(msg);
  upstreamQuestions.push(q.questions![0]!.name);
  return packet.encode({ type: 'response', id: q.id, flags: packet.RECURSION_AVAILABLE, questions: q.questions, answers: [{ type: 'A', name: q.questions![0]!.name, ttl: 42, data: '192.0.2.7' }] });
}

before(async () => {
  const ctx = await controlTestContext({ region: 'us-east-1', accountId: '123456789012' });
  cm = cloudMapHandlers(ctx);
  upstream = dgram.createSocket('udp4');
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', () => r()));
  upstream.on('message', (msg, rinfo) => upstream.send(fakeAnswer(msg), rinfo.port, rinfo.address));
  const upPort = upstream.address().port;
  upstreamTcp = net.createServer((c) => c.on('data', (d) => {
    const res = fakeAnswer(d.subarray(2));
    const len = Buffer.alloc(2);
    len.writeUInt16BE(res.length);
    c.end(Buffer.concat([len, res]));
  }));
  await new Promise<void>((r) => upstreamTcp.listen(upPort, '127.0.0.1', () => r()));
  server = new DnsServer({
    snapshot: () => registrySnapshot([{ region: 'us-east-1', state: ctx.state }], 'us-east-1'),
    upstreams: [{ host: '127.0.0.1', port: upPort }],
    log: createLogger('dns-test', 'silent'),
  });
  ({ port } = await server.listen({ host: '127.0.0.1', port: 0 }));

  const { OperationId } = (await cm.CreatePrivateDnsNamespace!({ Name: 'corp.local', Vpc: 'vpc-1' })) as { OperationId: string };
  const nsId = ((await cm.GetOperation!({ OperationId })) as any).Operation.Targets.NAMESPACE;
  serviceId = ((await cm.CreateService!({ Name: 'api', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 7 }, { Type: 'SRV', TTL: 9 }] } })) as any).Service.Id;
  await cm.RegisterInstance!({ ServiceId: serviceId, InstanceId: 'task-a', Attributes: { AWS_INSTANCE_IPV4: '10.1.0.5', AWS_INSTANCE_PORT: '8080' } });
});

after(async () => {
  await server.close();
  upstream.close();
  await new Promise((r) => upstreamTcp.close(r));
});

let nextId = 1;
/** A query over UDP; `edns` adds an OPT record (payload size, version, flags). `bytes` is the reply's size. */
function udpQuery(name: string, type: packet.RecordType, edns?: { size?: number; version?: number; flags?: number }): Promise<packet.DecodedPacket & { bytes: number }> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => (sock.close(), reject(new Error('no answer'))), 3000);
    sock.on('message', (m) => {
      clearTimeout(timer);
      sock.close();
      resolve({ ...packet.decode(m), bytes: m.length });
    });
    const additionals = edns ? [{ type: 'OPT', name: '.', udpPayloadSize: edns.size ?? 1232, ednsVersion: edns.version ?? 0, flags: edns.flags ?? 0 } as unknown as packet.Answer] : [];
    sock.send(packet.encode({ type: 'query', id: nextId++, flags: packet.RECURSION_DESIRED, questions: [{ type, name }], additionals }), port, '127.0.0.1');
  });
}

function tcpQuery(name: string, type: packet.RecordType): Promise<packet.DecodedPacket> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    c.on('error', reject);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        c.destroy();
        resolve(packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      }
    });
    c.write(packet.streamEncode({ type: 'query', id: nextId++, flags: packet.RECURSION_DESIRED, questions: [{ type, name }] }));
  });
}

const rcodeOf = (p: packet.DecodedPacket) => (p as { rcode?: string }).rcode;
const datas = (p: packet.DecodedPacket) => (p.answers ?? []).map((a) => (a as { data: unknown }).data);

for (const [transport, query] of [['UDP', udpQuery], ['TCP', tcpQuery]] as const) {
  test(`${transport}: A of a registered instance, with the service TTL, authoritative`, async () => {
    const r = await query('api.corp.local', 'A');
    assert.equal(rcodeOf(r), 'NOERROR');
    assert.ok(r.flag_aa);
    assert.deepEqual(datas(r), ['10.1.0.5']);
    assert.equal((r.answers![0] as { ttl: number }).ttl, 7);
  });

  test(`${transport}: SRV names the instance and port, with the target's A in the additional section`, async () => {
    const r = await query('api.corp.local', 'SRV');
    assert.deepEqual(datas(r), [{ priority: 1, weight: 1, port: 8080, target: 'task-a.api.corp.local' }]);
    assert.equal((r.answers![0] as { ttl: number }).ttl, 9);
    assert.deepEqual((r.additionals ?? []).map((a) => [a.name, a.type, (a as { data: unknown }).data]), [['task-a.api.corp.local', 'A', '10.1.0.5']]);
  });

  test(`${transport}: an unknown name in the namespace is NXDOMAIN`, async () => {
    const r = await query('nothing.corp.local', 'A');
    assert.equal(rcodeOf(r), 'NXDOMAIN');
    assert.equal(r.authorities![0]!.type, 'SOA');
  });

  test(`${transport}: other names go to the upstream resolver and its answer comes back`, async () => {
    const name = `fwd-${transport.toLowerCase()}.example.test`;
    const r = await query(name, 'A');
    assert.deepEqual(datas(r), ['192.0.2.7']);
    assert.equal((r.answers![0] as { ttl: number }).ttl, 42);
    assert.ok(upstreamQuestions.includes(name), 'the upstream was asked');
  });
}

test('an instance registered later is answered, and disappears once deregistered', async () => {
  await cm.RegisterInstance!({ ServiceId: serviceId, InstanceId: 'task-b', Attributes: { AWS_INSTANCE_IPV4: '10.1.0.6', AWS_INSTANCE_PORT: '8080' } });
  assert.deepEqual(datas(await udpQuery('api.corp.local', 'A')).sort(), ['10.1.0.5', '10.1.0.6']);
  await cm.DeregisterInstance!({ ServiceId: serviceId, InstanceId: 'task-b' });
  assert.deepEqual(datas(await udpQuery('api.corp.local', 'A')), ['10.1.0.5']);
  assert.equal(rcodeOf(await udpQuery('task-b.api.corp.local', 'A')), 'NXDOMAIN');
});

test('a garbage datagram gets no answer and the server keeps answering', async () => {
  const sock = dgram.createSocket('udp4');
  sock.send(Buffer.from('not dns'), port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 50));
  sock.close();
  assert.deepEqual(datas(await udpQuery('api.corp.local', 'A')), ['10.1.0.5']);
});

/** A Cloud Map service with `n` SRV instances whose ids are as long as ECS task ids (32 characters). */
async function srvService(name: string, n: number): Promise<void> {
  const nsId = ((await cm.ListNamespaces!({})) as any).Namespaces[0].Id;
  const id = ((await cm.CreateService!({ Name: name, NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'SRV', TTL: 5 }] } })) as any).Service.Id;
  for (let i = 0; i < n; i++) {
    await cm.RegisterInstance!({ ServiceId: id, InstanceId: `${i}`.padStart(32, 'a'), Attributes: { AWS_INSTANCE_IPV4: `10.2.0.${i + 1}`, AWS_INSTANCE_PORT: '80' } });
  }
}

const optOf = (p: packet.DecodedPacket) => (p.additionals ?? []).find((r) => r.type === 'OPT') as { udpPayloadSize: number; ednsVersion: number; extendedRcode: number; flag_do: boolean } | undefined;

test('8 SRV answers too large for a plain UDP datagram: the addresses go, then the last answers, with TC; over TCP all of it', async () => {
  await srvService('big', 8);
  const udp = await udpQuery('big.corp.local', 'SRV');
  assert.ok(udp.bytes <= 512, `${udp.bytes} bytes`);
  assert.ok(udp.flag_tc, 'TC: answers were left out');
  assert.equal(udp.answers!.length, 5, 'as many SRV answers as fit in 512 bytes (81 bytes each)');
  assert.deepEqual(udp.additionals, []);
  const tcp = await tcpQuery('big.corp.local', 'SRV');
  assert.equal(tcp.flag_tc, false);
  assert.equal(tcp.answers!.length, 8);
  assert.equal(tcp.additionals!.length, 8);
});

test('SRV answers that fit without their addresses come whole, without TC (busybox nslookup sees them)', async () => {
  await srvService('five', 5);
  const udp = await udpQuery('five.corp.local', 'SRV');
  assert.ok(udp.bytes <= 512, `${udp.bytes} bytes`);
  assert.equal(udp.flag_tc, false);
  assert.equal(udp.answers!.length, 5);
  assert.ok(udp.additionals!.length < 5, 'some targets\' addresses were left out');
  const ports = new Set(udp.answers!.map((a) => (a as { data: { port: number } }).data.port));
  assert.deepEqual([...ports], [80]);
});

test('a query with EDNS gets an OPT record back and the room it offers: 8 SRV and their 8 addresses in one datagram', async () => {
  const r = await udpQuery('big.corp.local', 'SRV', { size: 4096 });
  assert.equal(r.flag_tc, false);
  assert.equal(r.answers!.length, 8);
  assert.equal(r.additionals!.filter((a) => a.type === 'A').length, 8);
  assert.ok(r.bytes > 512 && r.bytes <= 1232, `${r.bytes} bytes`);
  const opt = optOf(r);
  assert.ok(opt, 'an OPT record in the reply');
  assert.equal(opt.udpPayloadSize, 1232);
  assert.equal(opt.ednsVersion, 0);
  assert.equal(opt.flag_do, false);
  assert.equal(optOf(await udpQuery('big.corp.local', 'SRV')), undefined, 'none without EDNS in the query');
  // A small EDNS size is still at least 512; the OPT record survives truncation.
  const small = await udpQuery('big.corp.local', 'SRV', { size: 100 });
  assert.ok(small.bytes <= 512 && small.flag_tc && optOf(small));
  // Names that are forwarded and names in no namespace keep their OPT too; DO is echoed.
  assert.equal(optOf(await udpQuery('nothing.corp.local', 'A', { flags: packet.DNSSEC_OK }))!.flag_do, true);
});

test('an EDNS version Wharf does not speak is BADVERS', async () => {
  const r = await udpQuery('api.corp.local', 'A', { version: 1 });
  assert.equal(rcodeOf(r), 'NOERROR', 'the header holds the lower bits of 16');
  assert.equal(optOf(r)!.extendedRcode, 1);
  assert.deepEqual(r.answers, []);
});

test('UpdateService\'s new TTLs are what the next answers carry', async () => {
  await cm.UpdateService!({ Id: serviceId, Service: { DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 33 }, { Type: 'SRV', TTL: 44 }] } } });
  assert.equal((((await udpQuery('api.corp.local', 'A')).answers![0]) as { ttl: number }).ttl, 33);
  const srv = await tcpQuery('api.corp.local', 'SRV');
  assert.equal((srv.answers![0] as { ttl: number }).ttl, 44);
  assert.equal((srv.additionals![0] as { ttl: number }).ttl, 33, 'the target\'s address has the A record\'s TTL');
});
