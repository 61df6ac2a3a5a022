/**
 * Distributed mode: service discovery DNS outlives the replica that serves it. Three
 * `wharf server --store etcd://...` replicas are all asked to answer DNS on the same loopback
 * address and port; one binds it (UDP and TCP), the others stand by. A name registered through
 * Cloud Map (AWS CLI v2, on another replica) resolves; the holder is killed with -9, and a
 * standing-by replica takes the address over and answers the name again within seconds.
 *
 * Run: node scripts/run-tests.js distributed-dns
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as packet from 'dns-packet';
import { startEtcdCluster, type EtcdCluster } from '../../src/store/etcd';
import { killAllSpawned, spawnServer, waitUntil, type ServerProcess } from './helpers/processes';
import { AWS_CLI, run } from './helpers/wharf-server';
import { inCI } from '../images/docker-test-env';

const missing = spawnSync('etcd', ['--version']).status !== 0;
if (missing && inCI()) throw new Error('etcd is not installed (apt-get install etcd-server); CI runs every test');

const PREFIX = `dns${process.pid}/`;
const HOST = '127.0.0.1';

/** A port free on HOST for both UDP and TCP (the DNS server takes both). */
async function freeDnsPort(): Promise<number> {
  for (;;) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, HOST, () => resolve(udp.address().port));
    });
    const tcp = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, HOST, () => resolve(true));
    });
    udp.close();
    if (ok) {
      await new Promise<void>((r) => tcp.close(() => r()));
      return port;
    }
  }
}

/** One A question over TCP (length-prefixed), the addresses answered. */
function resolveTcp(port: number, name: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, HOST);
    c.setTimeout(1000, () => c.destroy(new Error('DNS over TCP timed out')));
    c.once('error', reject);
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        c.end();
        const res = packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        resolve((res.answers ?? []).flatMap((a) => (a.type === 'A' ? [a.data] : [])));
      }
    });
    c.on('connect', () => c.write(packet.streamEncode({ type: 'query', id: 7, flags: packet.RECURSION_DESIRED, questions: [{ type: 'A', name }] })));
  });
}

interface Healthz {
  replica: string;
  leader: boolean;
  dns?: { serving: string[]; standingBy: string[] };
}

describe('distributed mode: DNS on every replica', { skip: missing ? 'etcd is not installed' : false }, () => {
  let etcd: EtcdCluster;
  let dataDir: string;
  let port: number;
  const replicas: ServerProcess[] = [];
  const address = () => `${HOST}:${port}`;
  const healthz = async (r: ServerProcess) => (await (await fetch(`${r.endpoint}/healthz`)).json()) as Healthz;
  const resolver = () => {
    const r = new Resolver({ timeout: 400, tries: 1 });
    r.setServers([address()]);
    return r;
  };
  /** The live replicas' DNS roles: who serves the address, who stands by for it. */
  async function roles(): Promise<{ serving: ServerProcess[]; standingBy: ServerProcess[] }> {
    const live = replicas.filter((r) => !r.exited);
    const h = await Promise.all(live.map(healthz));
    return { serving: live.filter((_, i) => h[i]!.dns?.serving.includes(address())), standingBy: live.filter((_, i) => h[i]!.dns?.standingBy.includes(address())) };
  }

  before(async () => {
    etcd = await startEtcdCluster(1);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-dist-dns-'));
    port = await freeDnsPort();
    const url = `etcd://${etcd.endpoints.map((e) => e.replace('http://', '')).join(',')}/${PREFIX}`;
    for (let i = 0; i < 3; i++) {
      replicas.push(await spawnServer({ dataDir, extraArgs: ['--store', url, '--load-balancers', 'off', '--dns', address()], env: { WHARF_LOG_LEVEL: 'warn' } }));
    }
  });

  after(async () => {
    await killAllSpawned();
    await etcd?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('one replica holds the address and the others stand by; after a kill -9 of the holder another answers within seconds', async () => {
    // All three started and serve the API; the first holds the address, the two others say they wait.
    const first = await roles();
    assert.deepEqual(first.serving.map((r) => r.pid), [replicas[0]!.pid]);
    assert.deepEqual(first.standingBy.map((r) => r.pid).sort(), [replicas[1]!.pid, replicas[2]!.pid].sort());
    for (const r of first.standingBy) assert.match(r.output(), /held by another process \(another replica\?\): standing by/);

    // A name registered on another replica than the holder, through Cloud Map.
    const writer = replicas[1]!;
    const sd = async (args: string[]) => {
      const res = await run(AWS_CLI, ['servicediscovery', ...args, '--endpoint-url', writer.endpoint, '--output', 'json'], writer.env());
      assert.equal(res.code, 0, `aws servicediscovery ${args.join(' ')}: ${res.stderr}`);
      return JSON.parse(res.stdout);
    };
    const op = await sd(['create-private-dns-namespace', '--name', 'ha.local', '--vpc', 'vpc-0abc']);
    const nsId = (await sd(['get-operation', '--operation-id', op.OperationId])).Operation.Targets.NAMESPACE;
    const svc = await sd(['create-service', '--name', 'api', '--namespace-id', nsId, '--dns-config', 'RoutingPolicy=MULTIVALUE,DnsRecords=[{Type=A,TTL=10}]']);
    await sd(['register-instance', '--service-id', svc.Service.Id, '--instance-id', 'i-1', '--attributes', 'AWS_INSTANCE_IPV4=10.42.0.9']);
    // Resolves (UDP and TCP) through the holder, whose cache has the write by now.
    await waitUntil(async () => (await resolver().resolve4('api.ha.local').catch((): string[] => [])).includes('10.42.0.9'), 'the name over UDP', { timeoutMs: 10_000 });
    assert.deepEqual(await resolveTcp(port, 'api.ha.local'), ['10.42.0.9']);

    const holder = first.serving[0]!;
    const killedAt = Date.now();
    await holder.kill9();
    // Asked every 100 ms (each try waits at most 400 ms) until an answer comes again.
    let answered = 0;
    for (;;) {
      const got = await resolver().resolve4('api.ha.local').catch((): string[] => []);
      if (got.includes('10.42.0.9')) {
        answered = Date.now();
        break;
      }
      assert.ok(Date.now() - killedAt < 10_000, 'the name resolves again within 10 s of the kill');
      await new Promise((r) => setTimeout(r, 100));
    }
    const gap = answered - killedAt;
    process.stdout.write(`# DNS gap after kill -9 of the holder: ${gap} ms\n`);
    assert.ok(gap < 3000, `the name resolves again within 3 s (took ${gap} ms)`);
    assert.deepEqual(await resolveTcp(port, 'api.ha.local'), ['10.42.0.9'], 'TCP taken over too');

    // One of the two left holds it now, the other still stands by.
    const now = await waitUntil(async () => {
      const r = await roles();
      return r.serving.length === 1 && r.standingBy.length === 1 ? r : undefined;
    }, 'one holder, one standby');
    assert.notEqual(now.serving[0]!.pid, holder.pid);
    assert.match(now.serving[0]!.output(), /took over the DNS address/);

    // `wharf status` tells who serves DNS and who stands by.
    const status = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', '..', 'src', 'cmd', 'main.ts'), 'status', '--store', `etcd://${etcd.endpoints[0]!.replace('http://', '')}/${PREFIX}`, '--data-dir', dataDir], { encoding: 'utf8', timeout: 60_000 });
    assert.match(status.stdout, new RegExp(`DNS: serves ${address().replace(/\./g, '\\.')}`), status.stdout + status.stderr);
    assert.match(status.stdout, new RegExp(`DNS: stands by for ${address().replace(/\./g, '\\.')}`), status.stdout);
  });
});
