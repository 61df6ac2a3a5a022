/**
 * The persistent local cluster of `wharf up --ha`: its members on the ports asked for, a cluster
 * that cannot be moved to other ports, and a member that died started again as the same member,
 * with its data.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { ensureEtcdCluster, etcdMemberPid, restartEtcdMember } from './etcd-cluster';
import { freePortRun, processAlive } from '../../lib';

const missing = spawnSync('etcd', ['--version']).status !== 0;
if (missing && process.env.CI) throw new Error('etcd is not installed (apt-get install etcd-server); CI runs every test');


describe('a persistent local etcd cluster', { skip: missing ? 'etcd is not installed (apt-get install etcd-server)' : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-etcd-cluster-'));
  after(() => {
    for (const name of ['m1', 'm2', 'm3']) {
      const pid = etcdMemberPid(dir, name);
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('members on the ports asked for; a member killed is started again as itself, with its data; other ports are refused', async () => {
    const base = await freePortRun(6);
    const members = await ensureEtcdCluster(dir, 3, { firstPort: base });
    assert.deepEqual(
      members.map((m) => [m.name, m.clientUrl, m.peerUrl]),
      [0, 1, 2].map((i) => [`m${i + 1}`, `http://127.0.0.1:${base + 2 * i}`, `http://127.0.0.1:${base + 2 * i + 1}`]),
    );
    const client = new Etcd3({ hosts: members.map((m) => m.clientUrl) });
    try {
      await client.put('kept').value('yes');
      const ids = async () => (await client.cluster.memberList({})).members.map((m) => [m.name, m.ID]).sort();
      const before = await ids();

      const pid = etcdMemberPid(dir, 'm2')!;
      assert.equal(pid, members[1]!.startedPid);
      process.kill(pid, 'SIGKILL');
      while (processAlive(pid)) await new Promise((r) => setTimeout(r, 50));
      const again = await restartEtcdMember(dir, members[1]!, members);
      assert.notEqual(again, pid);
      assert.equal(etcdMemberPid(dir, 'm2'), again);
      // The same member (its id), the same cluster, its data: asked alone, it has the key.
      assert.deepEqual(await ids(), before);
      const alone = new Etcd3({ hosts: [members[1]!.clientUrl] });
      try {
        assert.equal(await alone.get('kept').string(), 'yes');
      } finally {
        alone.close();
      }
    } finally {
      client.close();
    }

    await assert.rejects(ensureEtcdCluster(dir, 3, { firstPort: base + 10 }), new RegExp(`--etcd-ports ${base + 10}: the etcd cluster in .* was made with other ports \\(client/peer: m1 ${base}/${base + 1}, m2 ${base + 2}/${base + 3}, m3 ${base + 4}/${base + 5}\\)`));
    // The same ports, or none: adopted as it runs.
    assert.deepEqual((await ensureEtcdCluster(dir, 3, { firstPort: base })).map((m) => m.startedPid), [undefined, undefined, undefined]);
    assert.deepEqual((await ensureEtcdCluster(dir, 3)).map((m) => m.startedPid), [undefined, undefined, undefined]);
  });

  test('a port asked for that is taken is named', async () => {
    const other = mkdtempSync(join(tmpdir(), 'wharf-etcd-cluster-'));
    const base = await freePortRun(6);
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(base + 3, '127.0.0.1', () => r()));
    try {
      await assert.rejects(ensureEtcdCluster(other, 3, { firstPort: base }), new RegExp(`port ${base + 3} \\(the peer port of etcd member m2\\) is in use on 127\\.0\\.0\\.1: choose other --etcd-ports`));
    } finally {
      holder.close();
      rmSync(other, { recursive: true, force: true });
    }
  });
});
