import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { FencedError, FencedStore } from '../fenced-store';
import { EtcdStore } from './etcd-store';
import { startEtcdCluster, type EtcdCluster } from './etcd-cluster';
import type { EtcdLeadership } from './etcd-leadership';

const missing = spawnSync('etcd', ['--version']).status !== 0;
if (missing && process.env.CI) throw new Error('etcd is not installed (apt-get install etcd-server); CI runs every test');

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('EtcdLeadership and FencedStore', { skip: missing ? 'etcd is not installed' : false }, () => {
  let etcd: EtcdCluster;
  let n = 0;
  before(async () => {
    etcd = await startEtcdCluster(1);
  });
  after(async () => {
    await etcd?.stop();
  });

  /** Two replicas of one installation: same endpoints, same keyspace. */
  async function replicas(count: number, ttlSeconds = 2) {
    const prefix = `lead${process.pid}-${++n}/`;
    const stores = await Promise.all(Array.from({ length: count }, () => EtcdStore.open({ endpoints: etcd.endpoints, prefix })));
    const leads = stores.map((s, i) => s.leadership({ id: `replica-${i}`, ttlSeconds }));
    return { stores, leads, close: async () => {
      await Promise.all(leads.map((l) => l.close()));
      await Promise.all(stores.map((s) => s.close()));
    } };
  }
  const leading = (leads: EtcdLeadership[]) => leads.filter((l) => l.current() !== undefined);

  test('exactly one replica leads; only its fenced writes are accepted', async () => {
    const r = await replicas(3);
    await until(() => leading(r.leads).length === 1, 'one leader');
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(leading(r.leads).length, 1, 'still exactly one leader');
    const i = r.leads.findIndex((l) => l.current() !== undefined);
    assert.equal(await r.leads[0]!.leader(), `replica-${i}`);
    const fenced = r.stores.map((s, j) => new FencedStore(s, () => r.leads[j]!.current()));
    await fenced[i]!.create('services/a', { by: i });
    const other = (i + 1) % 3;
    await assert.rejects(fenced[other]!.create('services/b', {}), FencedError);
    assert.equal(await r.stores[0]!.get('services/b'), undefined);
    await r.close();
  });

  test('when the leader resigns another takes over, and the old term is fenced out', async () => {
    const r = await replicas(2);
    await until(() => leading(r.leads).length === 1, 'one leader');
    const first = r.leads.findIndex((l) => l.current() !== undefined);
    const oldFence = r.leads[first]!.current()!;
    const changes: boolean[] = [];
    r.leads[first]!.onChange((b) => changes.push(b));
    await r.leads[first]!.close();
    assert.deepEqual(changes, [false]);
    const second = 1 - first;
    await until(() => r.leads[second]!.current() !== undefined, 'the other replica leads');
    // A replica that still believes in its old term (paused while the lead moved) writes nothing.
    const stale = new FencedStore(r.stores[first]!, () => oldFence);
    await assert.rejects(stale.update('x', 1, 1), FencedError);
    await assert.rejects(stale.txn([{ op: 'put', key: 'services/s', value: 1 }]), FencedError);
    assert.equal(await r.stores[second]!.get('services/s'), undefined);
    const fresh = new FencedStore(r.stores[second]!, () => r.leads[second]!.current());
    await fresh.txn([{ op: 'put', key: 'services/s', value: 2 }]);
    assert.equal((await r.stores[first]!.get('services/s'))?.value, 2);
    await r.close();
  });

  test('a waiting replica takes over as soon as the leader key goes, not at its next poll', async () => {
    // A 30 s TTL: the waiting replica polls every 3 s; the watch on the key wakes it at once.
    const r = await replicas(2, 30);
    try {
      await until(() => leading(r.leads).length === 1, 'one leader');
      const first = r.leads.findIndex((l) => l.current() !== undefined);
      // Let the other replica's poll start its wait.
      await new Promise((res) => setTimeout(res, 500));
      await r.leads[first]!.close();
      await until(() => r.leads[1 - first]!.current() !== undefined, 'the other replica leads within 2.5 s', 2500);
    } finally {
      await r.close();
    }
  });

  test('a leader that stops hearing from etcd steps down by its own clock before its lease can expire', async () => {
    const r = await replicas(1);
    await until(() => r.leads[0]!.current() !== undefined, 'leader');
    const changes: boolean[] = [];
    r.leads[0]!.onChange((b) => changes.push(b));
    // Stop etcd answering: the keep-alives fail, and within half the TTL the replica stops.
    etcd.members[0]!.process.kill('SIGSTOP');
    try {
      const stoppedAt = Date.now();
      await until(() => changes.includes(false), 'step down', 5000);
      assert.ok(Date.now() - stoppedAt < 2000, `stepped down after ${Date.now() - stoppedAt} ms (TTL 2 s)`);
      assert.equal(r.leads[0]!.current(), undefined);
    } finally {
      etcd.members[0]!.process.kill('SIGCONT');
    }
    // Back in touch, it campaigns again and leads.
    await until(() => r.leads[0]!.current() !== undefined, 'leads again');
    await r.close();
  });
});
