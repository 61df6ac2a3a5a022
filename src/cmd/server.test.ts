/**
 * What a `wharf server` tells others about itself: the endpoint announced to agents and other
 * replicas (--advertise-url, or a dialable address for a wildcard --listen), and what /healthz
 * says of its store and the replicas it knows (read by `wharf status`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer, type ServerOptions } from './server';
import { hostAddress } from './advertise-url';
import { startEtcdCluster, type EtcdCluster } from '../store/etcd';
import { createLogger } from '../lib';

const missing = spawnSync('etcd', ['--version']).status !== 0;
if (missing && process.env.CI) throw new Error('etcd is not installed (apt-get install etcd-server); CI runs every test');

const dirs: string[] = [];
const servers: RunningServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function server(o: Partial<ServerOptions>): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wharf-server-test-'));
  dirs.push(dataDir);
  const s = await startServer({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    region: 'us-east-1',
    accountId: '123456789012',
    synchronous: 'NORMAL',
    log: createLogger('server-test', 'silent'),
    loadBalancers: { enabled: false },
    consoleDir: false,
    ...o,
  });
  servers.push(s);
  return s;
}

async function healthz(endpoint: string): Promise<{ replicasHeader: string | null; body: { replica: string; leader: boolean; store?: string; replicas?: { replica: string; endpoint: string; heartbeatAgeSeconds: number }[] } }> {
  const res = await fetch(`${endpoint}/healthz`);
  return { replicasHeader: res.headers.get('x-wharf-replicas'), body: (await res.json()) as never };
}

async function eventually<T>(probe: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('a single server says on /healthz that it keeps its state in SQLite, and lists no replicas', async () => {
  const s = await server({});
  const h = await healthz(s.endpoint);
  assert.equal(h.body.store, 'sqlite');
  assert.equal(h.body.leader, true);
  assert.equal(h.body.replicas, undefined);
  assert.equal(s.advertisedEndpoint, s.endpoint);
});

describe('replicas on etcd', { skip: missing ? 'etcd is not installed (apt-get install etcd-server)' : false }, () => {
  let etcd: EtcdCluster;
  before(async () => {
    etcd = await startEtcdCluster(1);
  });
  after(async () => {
    for (const s of servers.splice(0)) await s.close();
    await etcd?.stop();
  });

  test('replicas announce --advertise-url, or a concrete address of the host for 0.0.0.0 (never 0.0.0.0), and /healthz lists them all', async () => {
    const store = `etcd://${etcd.endpoints[0]!.replace('http://', '')}/adv${process.pid}/`;
    const a = await server({ store, advertiseUrl: 'http://wharf-a.example:4100/' });
    const b = await server({ store, host: '0.0.0.0' });
    assert.equal(a.advertisedEndpoint, 'http://wharf-a.example:4100');
    const expected = hostAddress('0.0.0.0')?.address ?? '127.0.0.1';
    assert.equal(b.advertisedEndpoint, `http://${expected}:${b.port}`);
    assert.doesNotMatch(b.advertisedEndpoint, /0\.0\.0\.0/);

    // Agents learn both (x-wharf-replicas), and /healthz names both, whichever replica is asked.
    for (const asked of [a, b]) {
      const h = await eventually(async () => {
        const got = await healthz(asked === b ? `http://127.0.0.1:${b.port}` : asked.endpoint);
        return got.body.replicas?.length === 2 ? got : undefined;
      }, 'both replicas in the registry');
      assert.deepEqual(h.replicasHeader!.split(',').sort(), [a.advertisedEndpoint, b.advertisedEndpoint].sort());
      assert.equal(h.body.store, 'etcd');
      assert.deepEqual(h.body.replicas!.map((r) => r.endpoint).sort(), [a.advertisedEndpoint, b.advertisedEndpoint].sort());
      assert.ok(h.body.replicas!.some((r) => r.replica === h.body.replica), 'it lists itself under its own id');
      for (const r of h.body.replicas!) assert.ok(r.heartbeatAgeSeconds >= 0 && r.heartbeatAgeSeconds < 10, JSON.stringify(r));
    }
  });
});
