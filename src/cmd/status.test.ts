/**
 * `wharf status` asked of one replica shows the whole installation: the replicas the asked one
 * lists on /healthz are asked in turn, so a follower's URL shows the real leader and every replica.
 * Heartbeat ages are measured after etcd's registry has been read, so never negative.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { Etcd3 } from 'etcd3';
import { clusterStatus, renderStatus, statusHealthy } from './status';
import { startEtcdCluster } from '../store/etcd';

interface FakeReplica {
  endpoint: string;
  /** What its /healthz answers (set before use). */
  health: Record<string, unknown>;
  close(): Promise<void>;
}

const open: FakeReplica[] = [];
after(async () => {
  for (const r of open) await r.close();
});

/** An endpoint answering /healthz as `wharf server` does. */
async function fakeReplica(): Promise<FakeReplica> {
  const r: FakeReplica = { endpoint: '', health: {}, close: async () => undefined };
  const s = http.createServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', region: 'us-east-1', ...r.health }));
  });
  await new Promise<void>((done) => s.listen(0, '127.0.0.1', () => done()));
  r.endpoint = `http://127.0.0.1:${(s.address() as { port: number }).port}`;
  r.close = () => new Promise((done) => s.close(() => done()));
  open.push(r);
  return r;
}

test("asked of a follower alone, status shows the real leader and every replica of the follower's registry", async () => {
  const [leader, follower, other] = [await fakeReplica(), await fakeReplica(), await fakeReplica()];
  const listed = [
    { replica: 'h-1-aaa', endpoint: leader.endpoint, heartbeatAgeSeconds: 0.4 },
    { replica: 'h-2-bbb', endpoint: follower.endpoint, heartbeatAgeSeconds: 1.2 },
    { replica: 'h-3-ccc', endpoint: other.endpoint, heartbeatAgeSeconds: 0.9 },
  ];
  leader.health = { replica: 'h-1-aaa', leader: true, store: 'etcd', replicas: listed };
  other.health = { replica: 'h-3-ccc', leader: false, store: 'etcd', replicas: listed };
  // The follower read the registry a moment ago; the others' own reports say the same.
  follower.health = { replica: 'h-2-bbb', leader: false, store: 'etcd', replicas: listed };

  const s = await clusterStatus({ endpoints: [follower.endpoint] });
  assert.equal(s.storeKind, 'etcd');
  assert.doesNotMatch(s.store, /no etcd store|SQLite/);
  assert.deepEqual(s.replicas.map((r) => [r.endpoint, r.replica, r.leader, r.healthy]), [
    [leader.endpoint, 'h-1-aaa', true, true],
    [follower.endpoint, 'h-2-bbb', false, true],
    [other.endpoint, 'h-3-ccc', false, true],
  ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
  assert.equal(statusHealthy(s), true);
  const text = renderStatus(s);
  assert.equal((text.match(/LEADER/g) ?? []).length, 1, text);
  assert.doesNotMatch(text, /no replica leads/);

  // Asked of the leader, the same picture.
  const fromLeader = await clusterStatus({ endpoints: [leader.endpoint] });
  assert.deepEqual(fromLeader.replicas.map((r) => r.endpoint), s.replicas.map((r) => r.endpoint));
});

test('a listed replica that does not answer is shown unreachable under its id, and status is not healthy', async () => {
  const [leader, dead] = [await fakeReplica(), await fakeReplica()];
  await dead.close();
  const listed = [
    { replica: 'h-1-aaa', endpoint: leader.endpoint, heartbeatAgeSeconds: 0.1 },
    { replica: 'h-9-zzz', endpoint: dead.endpoint, heartbeatAgeSeconds: 4.5 },
    // Gone longer than a replica is listed for: an earlier run's, left out.
    { replica: 'h-8-old', endpoint: 'http://127.0.0.1:1', heartbeatAgeSeconds: 600 },
  ];
  leader.health = { replica: 'h-1-aaa', leader: true, store: 'etcd', replicas: listed };
  const s = await clusterStatus({ endpoints: [leader.endpoint] });
  assert.deepEqual(s.replicas.map((r) => r.endpoint).sort(), [leader.endpoint, dead.endpoint].sort());
  const down = s.replicas.find((r) => r.endpoint === dead.endpoint)!;
  assert.equal(down.healthy, false);
  assert.equal(down.replica, 'h-9-zzz');
  assert.equal(down.heartbeatAgeSeconds, 4.5);
  assert.equal(statusHealthy(s), false);
});

test('a replica reached under another URL than the one it announces is shown once', async () => {
  const r = await fakeReplica();
  const announced = r.endpoint.replace('127.0.0.1', 'localhost');
  r.health = { replica: 'h-1-aaa', leader: true, store: 'etcd', replicas: [{ replica: 'h-1-aaa', endpoint: announced, heartbeatAgeSeconds: 0.3 }] };
  const s = await clusterStatus({ endpoints: [`${r.endpoint}/`] });
  assert.equal(s.replicas.length, 1, JSON.stringify(s.replicas));
  assert.equal(s.replicas[0]!.leader, true);
});

test('a single SQLite server is reported as such', async () => {
  const r = await fakeReplica();
  r.health = { replica: 'h-1-aaa', leader: true, store: 'sqlite' };
  const s = await clusterStatus({ endpoints: [r.endpoint] });
  assert.equal(s.storeKind, 'sqlite');
  assert.match(renderStatus(s), /^Store: SQLite/);
  assert.equal(statusHealthy(s), true);
});

test('a heartbeat written while status reads the registry shows as a moment ago, not in the future', async () => {
  const r = await fakeReplica();
  r.health = { replica: 'h-1-aaa', leader: true, store: 'etcd' };
  // Status starts at t; the replica's heartbeat lands at t+0.3 s, while the registry is being
  // read, which ends at t+0.5 s.
  const t = 1_000_000;
  let now = t;
  const s = await clusterStatus({
    endpoints: [],
    store: 'etcd://127.0.0.1:1/wharf/',
    clock: () => now,
    readRegistry: async () => {
      now = t + 500;
      return { records: new Map([['h-1-aaa', { endpoint: r.endpoint, heartbeatAt: t + 300 }]]), leaderKey: 'h-1-aaa' };
    },
  });
  assert.equal(s.replicas.length, 1);
  assert.equal(s.replicas[0]!.heartbeatAgeSeconds, 0.2);
  assert.equal(s.leaderKey, 'h-1-aaa');
  assert.match(renderStatus(s), /heartbeat 0\.2s ago/);
});

const missing = spawnSync('etcd', ['--version']).status !== 0;
if (missing && process.env.CI) throw new Error('etcd is not installed (apt-get install etcd-server); CI runs every test');

describe('with the etcd store', { skip: missing ? 'etcd is not installed (apt-get install etcd-server)' : false }, () => {
  test('a replica stamping heartbeats by a clock a little ahead shows 0 s, never a negative age', async () => {
    const etcd = await startEtcdCluster(1);
    const client = new Etcd3({ hosts: etcd.endpoints });
    try {
      const r = await fakeReplica();
      r.health = { replica: 'h-1-aaa', leader: true, store: 'etcd' };
      const prefix = `sk${process.pid}/`;
      await client.put(`${prefix}k/replicas/h-1-aaa`).value(JSON.stringify({ endpoint: r.endpoint, heartbeatAt: Date.now() + 400 }));
      const s = await clusterStatus({ endpoints: [], store: `etcd://${etcd.endpoints[0]!.replace('http://', '')}/${prefix}` });
      assert.equal(s.replicas[0]!.heartbeatAgeSeconds, 0);
      assert.doesNotMatch(renderStatus(s), /heartbeat -/);
    } finally {
      client.close();
      await etcd.stop();
    }
  });
});
