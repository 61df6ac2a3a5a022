import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adoptableReplica, awaitSpawnedReplica, forgetReplica, isReplicaProcess, recordReplica, stopAdopted } from './ha-replicas';

const dataDir = mkdtempSync(join(tmpdir(), 'wharf-ha-replicas-'));
const haDir = join(dataDir, 'ha');
mkdirSync(haDir);
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** A process whose command line looks like a replica's (`node -e ... server --listen L --data-dir D`), from cwd. */
function fakeReplica(listen: string, dir: string, cwd = dataDir): ChildProcess {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'server', '--store', 'etcd://x:1/', '--listen', listen, '--data-dir', dir], { cwd, stdio: 'ignore' });
  children.push(c);
  return c;
}

/** An endpoint whose /healthz names the replica id given. */
async function healthz(id: () => string): Promise<{ endpoint: string; close(): Promise<void> }> {
  const s = http.createServer((_, res) => res.end(JSON.stringify({ status: 'ok', replica: id(), leader: false })));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  return { endpoint: `http://127.0.0.1:${port}`, close: () => new Promise((r) => s.close(() => r())) };
}

test('a replica process is told by its command line: server, its --listen, this data dir (relative to its cwd too)', async () => {
  const abs = fakeReplica('127.0.0.1:4100', dataDir);
  const rel = fakeReplica('127.0.0.1:4101', '.', dataDir);
  const other = fakeReplica('127.0.0.1:4102', tmpdir());
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(isReplicaProcess(abs.pid!, '127.0.0.1:4100', dataDir), true);
  assert.equal(isReplicaProcess(rel.pid!, '127.0.0.1:4101', dataDir), true);
  assert.equal(isReplicaProcess(abs.pid!, '127.0.0.1:4101', dataDir), false, 'another port');
  assert.equal(isReplicaProcess(other.pid!, '127.0.0.1:4102', dataDir), false, 'another data dir');
  assert.equal(isReplicaProcess(process.pid, '127.0.0.1:4100', dataDir), false, 'not a server');
  assert.equal(isReplicaProcess(abs.pid!, '127.0.0.1:4100', dataDir, 'etcd://x:1/'), true, 'its store');
  assert.equal(isReplicaProcess(abs.pid!, '127.0.0.1:4100', dataDir, 'etcd://y:2/'), false, 'another store');
});

test('a record is adopted only when its pid is the replica answering on its endpoint', async () => {
  let answeringPid = 0;
  const h = await healthz(() => `host-${answeringPid}-abc123`);
  try {
    const listen = new URL(h.endpoint).host;
    const c = fakeReplica(listen, dataDir);
    await new Promise((r) => setTimeout(r, 200));
    recordReplica(haDir, 1, { pid: c.pid!, endpoint: h.endpoint });
    // The endpoint answers as another process: not this record's.
    answeringPid = c.pid! + 1;
    assert.equal(await adoptableReplica(haDir, 1, dataDir, undefined, 1000), undefined);
    answeringPid = c.pid!;
    assert.deepEqual(await adoptableReplica(haDir, 1, dataDir, undefined, 1000), { pid: c.pid, endpoint: h.endpoint });
    // Another data dir's replica is not adopted.
    const elsewhere = mkdtempSync(join(tmpdir(), 'wharf-ha-other-'));
    assert.equal(await adoptableReplica(haDir, 1, elsewhere, undefined, 1000), undefined);
    rmSync(elsewhere, { recursive: true });
    // Stopped (SIGTERM; no exit event, it is adopted): gone, and its record no longer adoptable.
    await stopAdopted(c.pid!);
    assert.equal(await adoptableReplica(haDir, 1, dataDir, undefined, 1000), undefined);
    forgetReplica(haDir, 1);
    assert.equal(await adoptableReplica(haDir, 1, dataDir, undefined, 1000), undefined, 'no record');
  } finally {
    await h.close();
  }
});

test('a replica process that never answers is an error, not a second replica', async () => {
  const c = fakeReplica('127.0.0.1:1', dataDir);
  await new Promise((r) => setTimeout(r, 200));
  recordReplica(haDir, 2, { pid: c.pid!, endpoint: 'http://127.0.0.1:1' });
  await assert.rejects(adoptableReplica(haDir, 2, dataDir, undefined, 500), new RegExp(`replica 2 \\(pid ${c.pid}, http://127\\.0\\.0\\.1:1\\) runs but does not answer /healthz`));
  forgetReplica(haDir, 2);
});

test('a spawned replica is up only when it answers as itself; one that exits because another server holds its port says why', async () => {
  const h = await healthz(() => `host-${process.pid}-abc123`);
  try {
    const port = new URL(h.endpoint).port;
    // The spawned replica fails to listen and exits, as `wharf server` does (main.ts).
    const log = join(dataDir, 'replica-2.log');
    const c = spawn(process.execPath, ['-e', `setTimeout(() => { require('fs').appendFileSync(${JSON.stringify(log)}, 'wharf: listen EADDRINUSE: address already in use 127.0.0.1:${port}\\n'); process.exit(1); }, 600)`], { stdio: 'ignore' });
    children.push(c);
    await assert.rejects(
      awaitSpawnedReplica({ n: 2, pid: c.pid!, endpoint: h.endpoint, exited: () => c.exitCode !== null, log: () => readFileSync(log, 'utf8'), pollMs: 50 }),
      (e: Error) => {
        assert.equal(e.message, `replica 2 exited: listen EADDRINUSE: address already in use 127.0.0.1:${port} (another process answers on ${h.endpoint})`);
        return true;
      },
    );
    // One that answers as itself (its pid in the replica id) is up.
    await awaitSpawnedReplica({ n: 1, pid: process.pid, endpoint: h.endpoint, exited: () => false, log: () => '', pollMs: 50 });
    // Another process answering and the spawned one still running: not up, and the timeout says who answers.
    await assert.rejects(awaitSpawnedReplica({ n: 3, pid: process.pid + 1, endpoint: h.endpoint, exited: () => false, log: () => '', timeoutMs: 300, pollMs: 50 }), new RegExp(`replica 3 \\(pid ${process.pid + 1}\\): another process answers on ${h.endpoint}`));
  } finally {
    await h.close();
  }
});
