import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { runStoreContract } from '../contract';
import { StoreCompactedError, type WatchEvent } from '../store';
import { EtcdStore } from './etcd-store';
import { startEtcdCluster, type EtcdCluster } from './etcd-cluster';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const missing = spawnSync('etcd', ['--version']).status !== 0;
if (missing && process.env.CI) throw new Error('etcd is not installed (apt-get install etcd-server); CI runs every test');

describe('EtcdStore', { skip: missing ? 'etcd is not installed (apt-get install etcd-server)' : false }, () => {
  let etcd: EtcdCluster;
  let n = 0;
  // Every store gets a keyspace of its own in one etcd: what lets installations share a cluster.
  const fresh = () => EtcdStore.open({ endpoints: etcd.endpoints, prefix: `t${process.pid}-${++n}/`, onWatchError: () => undefined });

  before(async () => {
    etcd = await startEtcdCluster(1);
  });
  after(async () => {
    await etcd?.stop();
  });

  runStoreContract('etcd', () => fresh(), { syncWatch: false });

  test('two installations sharing a cluster see nothing of each other', async () => {
    const a = await fresh();
    const b = await fresh();
    await a.create('clusters/x', { owner: 'a' });
    assert.equal(await b.get('clusters/x'), undefined);
    assert.deepEqual(await b.list(''), []);
    assert.equal(await b.revision(), 0);
    await b.create('clusters/x', { owner: 'b' });
    assert.deepEqual((await a.get('clusters/x'))?.value, { owner: 'a' });
    await a.close();
    await b.close();
  });

  test('a watch from a compacted revision reports StoreCompactedError, asynchronously', async () => {
    const s = await fresh();
    const r1 = await s.create('h/a', 1);
    await s.update('h/a', 2, r1);
    const r3 = await s.create('h/b', 1);
    const raw = new Etcd3({ hosts: etcd.endpoints });
    try {
      await raw.kv.compact({ revision: r3, physical: true });
    } finally {
      raw.close();
    }
    const errors: Error[] = [];
    const events: WatchEvent[] = [];
    const w = s.watch('h/', r1 - 1, (evs) => events.push(...evs), (err) => errors.push(err));
    const until = Date.now() + 5000;
    while (errors.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof StoreCompactedError, String(errors[0]));
    assert.deepEqual(events, []);
    w.cancel();
    await s.close();
  });

  test('a watch that does not need delete values gets puts and deletes in order, without prev_kv', async () => {
    const s = await fresh();
    const events: WatchEvent[] = [];
    // From now: the shared etcd's history before may be compacted (an earlier test does).
    const r0 = await s.create('e/start', 1);
    const w = s.watch('d/', r0, (evs) => events.push(...evs), (err) => assert.fail(err), { deleteValues: false });
    const r1 = await s.create('d/a', { v: 1 });
    const r2 = await s.update('d/a', { v: 2 }, r1);
    const r3 = await s.delete('d/a');
    const until = Date.now() + 5000;
    while (events.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events.map((e) => [e.type, e.key, e.revision]), [['put', 'd/a', r1], ['put', 'd/a', r2], ['delete', 'd/a', r3]]);
    assert.deepEqual(events.map((e) => e.value), [{ v: 1 }, { v: 2 }, undefined]);
    w.cancel();
    await s.close();
  });

  test('task records are stored compact; one stored as plain JSON (before that) reads the same through get, list and watch', async () => {
    const prefix = `t${process.pid}-${++n}/`;
    const s = await EtcdStore.open({ endpoints: etcd.endpoints, prefix, onWatchError: () => undefined });
    const raw = new Etcd3({ hosts: etcd.endpoints });
    try {
      const p = 'arn:aws:ecs:us-east-1:000000000000:';
      const task = (id: string) => ({
        taskArn: `${p}task/c/${id}`,
        clusterArn: `${p}cluster/c`,
        taskDefinitionArn: `${p}task-definition/f:1`,
        containers: [{ containerArn: `${p}container/c/${id}/0f8f2d0e-1111-4222-8333-944455556666`, taskArn: `${p}task/c/${id}`, name: 'app', lastStatus: 'PENDING' }],
        overrides: { containerOverrides: [], inferenceAcceleratorOverrides: [] },
        lastStatus: 'PENDING',
        version: 1,
        wharf: { id, cluster: 'c', instanceId: 'i'.repeat(32) },
        containerInstanceArn: `${p}container-instance/c/${'i'.repeat(32)}`,
      });
      const oldId = 'a'.repeat(32);
      const newId = 'b'.repeat(32);
      const r0 = await s.create('start', 1);
      const events: WatchEvent[] = [];
      const w = s.watch('tasks/', r0, (evs) => events.push(...evs), (err) => assert.fail(err), { deleteValues: false });
      // Written by an older Wharf: the JSON text itself (and the meta key, as every write does).
      await raw.put(`${prefix}k/tasks/c/${oldId}`).value(JSON.stringify(task(oldId))).exec();
      await s.create(`tasks/c/${newId}`, task(newId));
      const stored = await raw.get(`${prefix}k/tasks/c/${newId}`).buffer();
      assert.equal(stored![0], 0x01, 'compact');
      assert.ok(stored!.length < JSON.stringify(task(newId)).length * 0.7, `${stored!.length} bytes`);
      assert.deepEqual((await s.get(`tasks/c/${oldId}`))?.value, task(oldId));
      assert.deepEqual((await s.get(`tasks/c/${newId}`))?.value, task(newId));
      assert.deepEqual((await s.list('tasks/')).map((e) => e.value), [task(oldId), task(newId)]);
      const until = Date.now() + 5000;
      while (events.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(events.map((e) => e.value), [task(oldId), task(newId)]);
      // An update of the old record goes through the compare on its revision, and is then compact.
      const old = (await s.get(`tasks/c/${oldId}`))!;
      await s.update(`tasks/c/${oldId}`, { ...task(oldId), lastStatus: 'RUNNING', version: 2 }, old.modRevision);
      assert.equal((await raw.get(`${prefix}k/tasks/c/${oldId}`).buffer())![0], 0x01);
      assert.deepEqual((await s.get(`tasks/c/${oldId}`))?.value, { ...task(oldId), lastStatus: 'RUNNING', version: 2 });
      w.cancel();
    } finally {
      raw.close();
      await s.close();
    }
  });

  test("a snapshot larger than gRPC's default 4 MiB message reads whole (a replica starting on a store of thousands of tasks)", async () => {
    const s = await fresh();
    const big = 'x'.repeat(900 * 1024);
    for (let i = 0; i < 6; i++) await s.create(`big/${i}`, { i, big });
    const snap = await s.snapshot('big/');
    assert.deepEqual(snap.entries.map((e) => (e.value as { i: number }).i), [0, 1, 2, 3, 4, 5]);
    await s.close();
  });

  test("finds the cluster's limit of ops per txn, and a txn up to it commits", async () => {
    const s = await fresh();
    assert.equal(s.maxTxnOps, 1023, 'startEtcdCluster allows 1,024 (GROUP_COMMIT_LIMITS), less the meta key');
    const ops = Array.from({ length: 300 }, (_, i) => ({ op: 'create' as const, key: `many/${i}`, value: { i } }));
    await s.txn(ops);
    assert.equal((await s.list('many/')).length, 300);
    await s.close();
    const plain = await startEtcdCluster(1, { args: ['--max-txn-ops', '128'] });
    try {
      const p = await EtcdStore.open({ endpoints: plain.endpoints });
      assert.equal(p.maxTxnOps, 127, "etcd's default");
      await p.close();
    } finally {
      await plain.stop();
    }
  });

  test('members started together on this machine each get their share of its cores (GOMAXPROCS)', { skip: process.env.GOMAXPROCS ? 'GOMAXPROCS is set here' : false }, async () => {
    const three = await startEtcdCluster(3);
    try {
      const share = String(Math.max(1, Math.floor(cpus().length / 3)));
      for (const m of three.members) {
        const env = readFileSync(`/proc/${m.process.pid}/environ`, 'utf8').split('\0');
        assert.ok(env.includes(`GOMAXPROCS=${share}`), `${m.name}: ${env.filter((e) => e.startsWith('GOMAXPROCS')).join() || 'no GOMAXPROCS'}`);
      }
    } finally {
      await three.stop();
    }
  });

  test('a key prefix must end with a slash; an endpoint that does not answer fails open', async () => {
    await assert.rejects(EtcdStore.open({ endpoints: etcd.endpoints, prefix: 'nope' }), /must end with '\/'/);
    await assert.rejects(EtcdStore.open({ endpoints: ['http://127.0.0.1:1'], client: { dialTimeout: 500 } }), (e: Error) => {
      // Says why, and ends there (no empty "Resolution note: " of grpc-js after it).
      assert.match(e.message, /^etcd at http:\/\/127\.0\.0\.1:1 does not answer: .*ECONNREFUSED 127\.0\.0\.1:1$/);
      return true;
    });
  });
});
