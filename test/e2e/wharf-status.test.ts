/**
 * Trying distributed mode out (issue 13, part 5): `wharf up --ha` starts a three-member etcd
 * cluster and three replicas and prints where they are; `wharf status` says which replica leads
 * and how healthy every replica and etcd member is, and still does for a single SQLite server.
 * The agent runs the simulated runtime: what is tested is the control plane.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateClusterCommand, ListClustersCommand, ECSClient } from '@aws-sdk/client-ecs';
import { killAllSpawned, spawnServer, waitUntil } from './helpers/processes';
import { REPO } from './helpers/wharf-server';
import { inCI } from '../images/docker-test-env';
import type { ClusterStatus } from '../../src/cmd/status';
import type { HaState } from '../../src/cmd/up-ha';
import { freePortRun } from '../../src/lib/free-ports';

const missing = spawnSync('etcd', ['--version']).status !== 0;
if (missing && inCI()) throw new Error('etcd is not installed (apt-get install etcd-server); CI runs every test');

const MAIN = path.join(REPO, 'src', 'cmd', 'main.ts');

function wharf(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function status(args: string[], env: Record<string, string> = {}): { code: number; status: ClusterStatus; text: string } {
  const json = wharf(['status', '--json', ...args], env);
  const text = wharf(['status', ...args], env).stdout;
  return { code: json.code, status: JSON.parse(json.stdout) as ClusterStatus, text };
}

/** `wharf up --ha` as a child process; resolves once its banner has been printed. */
function up(dataDir: string, extra: string[] = []): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'up', '--ha', '--runtime', 'simulated', '--without-fargate', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--load-balancers', 'off', '--dns', 'off', ...extra], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WHARF_LOG_LEVEL: 'warn' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  ups.push(child);
  // waitUntil takes a probe that throws for "not yet": an exit is returned, then thrown.
  return waitUntil(() => (/Local agent: 1 container instance/.test(out) ? { child, output: () => out } : child.exitCode !== null ? { exited: out } : undefined), 'wharf up --ha to start', { timeoutMs: 120_000, describe: () => out }).then((r) => {
    if ('exited' in r) throw new Error(r.exited);
    return r;
  });
}

const ups: ChildProcess[] = [];

/** The first of six consecutive loopback ports that are all free now. */
const stopped = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));

describe('wharf status of a single server', () => {
  after(killAllSpawned);

  test('one replica, healthy, leading; no etcd members; exit status 0', async () => {
    const srv = await spawnServer();
    const s = status(['--endpoint', srv.endpoint, '--data-dir', srv.dataDir]);
    assert.equal(s.code, 0, s.text);
    assert.equal(s.status.replicas.length, 1);
    assert.deepEqual({ ...s.status.replicas[0], replica: undefined }, { endpoint: srv.endpoint, healthy: true, leader: true, replica: undefined });
    assert.match(s.status.replicas[0]!.replica!, new RegExp(`-${srv.pid}-`));
    assert.deepEqual(s.status.etcd, []);
    assert.match(s.text, /LEADER\s+healthy/);
    // The server gone: status says so, and fails.
    await srv.kill9();
    const gone = status(['--endpoint', srv.endpoint, '--data-dir', srv.dataDir]);
    assert.equal(gone.code, 1);
    assert.equal(gone.status.replicas[0]!.healthy, false);
    assert.match(gone.text, /UNREACHABLE \(connect ECONNREFUSED/);
  });
});

describe('wharf up --ha and wharf status', { skip: missing ? 'etcd is not installed' : false }, () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-up-ha-'));
  const etcdPids = () => spawnSync('pgrep', ['-f', '--', `--data-dir ${path.join(dataDir, 'ha', 'etcd')}/`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);

  after(async () => {
    for (const c of ups) if (c.exitCode === null) c.kill('SIGKILL');
    // The replicas are children of `wharf up` (a killed one leaves them), and the etcd members
    // outlive it by design: every process started on this data dir goes.
    for (const line of spawnSync('pgrep', ['-f', '--', `--data-dir ${dataDir}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(line), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('three replicas on three etcd members; status shows one leader, the failover, and the adopted members after a restart', async () => {
    // The etcd members on ports of our choosing (--etcd-ports): six in a row, all free.
    const etcdBase = await freePortRun(6);
    const first = await up(dataDir, ['--etcd-ports', String(etcdBase)]);
    const state = JSON.parse(fs.readFileSync(path.join(dataDir, 'ha', 'state.json'), 'utf8')) as HaState;
    assert.equal(state.replicas.length, 3);
    assert.deepEqual(state.etcd.map((m) => m.clientUrl), [0, 2, 4].map((i) => `http://127.0.0.1:${etcdBase + i}`));
    // The banner names every replica and member.
    for (const e of [...state.replicas, ...state.etcd.map((m) => m.clientUrl)]) assert.ok(first.output().includes(e), `${e} in the banner:\n${first.output()}`);
    assert.equal((first.output().match(/etcd member \S+ \S+ started \(pid \d+\)/g) ?? []).length, 3, first.output());
    assert.equal((first.output().match(/replica \d \S+ started \(pid \d+\)/g) ?? []).length, 3, first.output());

    // Any replica answers the API with the root credentials of the shared data dir.
    const creds = JSON.parse(fs.readFileSync(path.join(dataDir, 'credentials.json'), 'utf8')) as { user: { accessKeyId: string; secretAccessKey: string } };
    const ecsAt = (endpoint: string) => new ECSClient({ endpoint, region: 'us-east-1', credentials: creds.user });
    const clusters = async (endpoint: string) => {
      const ecs = ecsAt(endpoint);
      try {
        return (await ecs.send(new ListClustersCommand({}))).clusterArns!;
      } finally {
        ecs.destroy();
      }
    };
    const created = ecsAt(state.replicas[1]!);
    await created.send(new CreateClusterCommand({ clusterName: 'ha-try' }));
    created.destroy();
    for (const endpoint of state.replicas) {
      await waitUntil(async () => (await clusters(endpoint)).some((a) => a.endsWith('/ha-try')), `the cluster on ${endpoint}`, { timeoutMs: 10_000 });
    }

    const healthy = await waitUntil(() => {
      const s = status(['--data-dir', dataDir]);
      return s.code === 0 ? s : undefined;
    }, 'a healthy installation with a leader', { timeoutMs: 30_000 });
    assert.deepEqual(healthy.status.replicas.map((r) => r.endpoint).sort(), [...state.replicas].sort());
    const leaders = healthy.status.replicas.filter((r) => r.leader);
    assert.equal(leaders.length, 1);
    assert.equal(healthy.status.leaderKey, leaders[0]!.replica, 'the replica that says it leads holds the leader key');
    assert.deepEqual(healthy.status.etcd.map((m) => [m.endpoint, m.healthy]), state.etcd.map((m) => [m.clientUrl, true]));
    assert.equal((healthy.text.match(/LEADER/g) ?? []).length, 1, healthy.text);

    // Asked at a follower, with the data dir in the environment: the data dir's etcd store still
    // says who leads, and lists every replica and member.
    const follower = healthy.status.replicas.find((r) => !r.leader)!.endpoint;
    const atFollower = status(['--endpoint', follower], { WHARF_DATA_DIR: dataDir });
    assert.equal(atFollower.code, 0, atFollower.text);
    assert.equal(atFollower.status.store, state.store);
    assert.deepEqual(atFollower.status.replicas.filter((r) => r.leader).map((r) => r.endpoint), [leaders[0]!.endpoint], atFollower.text);
    assert.deepEqual(atFollower.status.replicas.map((r) => r.endpoint).sort(), [...state.replicas].sort());
    assert.equal(atFollower.status.etcd.length, 3);
    assert.match(atFollower.text, /^Store: etcd:\/\//);
    // Without the data dir (another machine, say): the follower's /healthz says the store is
    // etcd and lists the replicas, which are asked in turn: the same leader, every replica.
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-status-elsewhere-'));
    try {
      const alone = status(['--endpoint', follower, '--data-dir', elsewhere]);
      assert.equal(alone.code, 0, alone.text);
      assert.equal(alone.status.storeKind, 'etcd');
      assert.deepEqual(alone.status.replicas.filter((r) => r.leader).map((r) => r.endpoint), [leaders[0]!.endpoint], alone.text);
      assert.deepEqual(alone.status.replicas.map((r) => r.endpoint).sort(), [...state.replicas].sort(), alone.text);
      assert.doesNotMatch(alone.text, /no etcd store|no replica leads|heartbeat -/);
    } finally {
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }

    // A second `wharf up` on this data dir, --ha or not, is refused at once, and the running
    // one's replicas are left as they were.
    const records = () => [1, 2, 3].map((n) => fs.readFileSync(path.join(dataDir, 'ha', `replica-${n}.json`), 'utf8'));
    const recorded = records();
    for (const extra of [['--ha'], []]) {
      const again = wharf(['up', ...extra, '--runtime', 'simulated', '--without-fargate', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--load-balancers', 'off', '--dns', 'off']);
      assert.equal(again.code, 1, again.stderr);
      assert.match(again.stderr, new RegExp(`wharf: wharf up is already running on this data dir \\(pid ${first.child.pid}\\)`));
    }
    assert.deepEqual(records(), recorded);

    // kill -9 the leader's process: another replica leads, and wharf up starts the killed one
    // again on its endpoint (a new process), saying so: three healthy replicas again.
    const leaderPid = Number(/-(\d+)-[0-9a-f]+$/.exec(leaders[0]!.replica!)![1]);
    process.kill(leaderPid, 'SIGKILL');
    const pidOf = (r: { replica?: string }) => Number(/-(\d+)-[0-9a-f]+$/.exec(r.replica ?? '')?.[1]);
    const after = await waitUntil(() => {
      const s = status(['--data-dir', dataDir]);
      const l = s.status.replicas.filter((r) => r.leader);
      const again = s.status.replicas.find((r) => r.endpoint === leaders[0]!.endpoint);
      return s.code === 0 && l.length === 1 && l[0]!.endpoint !== leaders[0]!.endpoint && again?.healthy && pidOf(again) !== leaderPid ? s : undefined;
    }, 'another replica leading, and the killed one started again', { timeoutMs: 60_000, describe: () => first.output() });
    assert.equal(after.status.replicas.length, 3, after.text);
    assert.match(first.output(), new RegExp(`wharf: replica \\d ${leaders[0]!.endpoint} \\(pid ${leaderPid}\\) ended: killed by SIGKILL; starting it again`));
    const restartedPid = pidOf(after.status.replicas.find((r) => r.endpoint === leaders[0]!.endpoint)!);
    assert.match(first.output(), new RegExp(`wharf: replica \\d ${leaders[0]!.endpoint} started again \\(pid ${restartedPid}\\)`));

    // kill -9 an etcd member: started again on its data (the same member), healthy again.
    const lost = etcdPids()[0]!;
    process.kill(lost, 'SIGKILL');
    await waitUntil(() => /wharf: etcd member m\d \S+ started again \(pid \d+\)/.test(first.output()) && etcdPids().length === 3, 'the etcd member started again', { timeoutMs: 60_000, describe: () => first.output() });
    assert.match(first.output(), new RegExp(`wharf: etcd member m\\d \\S+ \\(pid ${lost}\\) is gone; starting it again`));
    assert.equal(etcdPids().includes(lost), false);
    const whole = await waitUntil(() => {
      const s = status(['--data-dir', dataDir]);
      return s.code === 0 ? s : undefined;
    }, 'healthy with the member back', { timeoutMs: 30_000 });
    assert.deepEqual(whole.status.etcd.map((m) => [m.endpoint, m.healthy]), state.etcd.map((m) => [m.clientUrl, true]));

    // Stop `wharf up`: the replicas stop, the etcd members keep running.
    const members = etcdPids();
    assert.equal(members.length, 3);
    first.child.kill('SIGTERM');
    await stopped(first.child);
    assert.deepEqual(etcdPids().sort(), [...members].sort(), 'the etcd members outlive wharf up');
    // The cluster cannot move to other ports: --etcd-ports must match it, or be left out.
    const moved = wharf(['up', '--ha', '--etcd-ports', String(etcdBase + 10), '--runtime', 'simulated', '--without-fargate', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--load-balancers', 'off', '--dns', 'off']);
    assert.equal(moved.code, 1, moved.stderr);
    assert.match(moved.stderr, new RegExp(`wharf: --etcd-ports ${etcdBase + 10}: the etcd cluster in \\S+ was made with other ports \\(client/peer: m1 ${etcdBase}/${etcdBase + 1}, m2 ${etcdBase + 2}/${etcdBase + 3}, m3 ${etcdBase + 4}/${etcdBase + 5}\\).*Leave --etcd-ports out \\(or give ${etcdBase}\\)`));
    assert.deepEqual(etcdPids().sort(), [...members].sort(), 'nothing started or stopped');
    // One member is lost meanwhile: the next `wharf up --ha` starts it again on its data, and
    // adopts the two that run.
    process.kill(members[0]!, 'SIGKILL');
    await waitUntil(() => etcdPids().length === 2, 'the member gone');
    const second = await up(dataDir);
    assert.equal((second.output().match(/etcd member \S+ \S+ already running: adopted/g) ?? []).length, 2, second.output());
    assert.equal((second.output().match(/etcd member \S+ \S+ started \(pid \d+\)/g) ?? []).length, 1, second.output());
    assert.equal((second.output().match(/replica \d \S+ started \(pid \d+\)/g) ?? []).length, 3, 'a clean stop leaves no replica to adopt');
    const again = await waitUntil(() => {
      const s = status(['--data-dir', dataDir]);
      return s.code === 0 ? s : undefined;
    }, 'healthy again after the restart', { timeoutMs: 30_000 });
    assert.equal(again.status.replicas.length, 3, again.text);
    assert.ok(again.status.etcd.every((m) => m.healthy));
    // The state is etcd's, kept across the restart.
    const restarted = (JSON.parse(fs.readFileSync(path.join(dataDir, 'ha', 'state.json'), 'utf8')) as HaState).replicas;
    assert.ok((await clusters(restarted[2]!)).some((a) => a.endsWith('/ha-try')));
    second.child.kill('SIGTERM');
    await stopped(second.child);
  });

  test('wharf up --ha killed with -9 leaves its replicas running; the next one adopts them, and stops them all on a clean stop', async () => {
    // Not gone and not a zombie (an orphan's exit is reaped by whatever adopted it, maybe nobody).
    const running = (pid: number) => {
      try {
        return !/^\d+ \(.*\) Z/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    const replicaPids = (s: ClusterStatus) => s.replicas.map((r) => Number(/-(\d+)-[0-9a-f]+$/.exec(r.replica ?? '')?.[1])).sort();
    const healthyStatus = (what: string) =>
      waitUntil(() => {
        const s = status(['--data-dir', dataDir]);
        return s.code === 0 ? s : undefined;
      }, what, { timeoutMs: 30_000 });
    const first = await up(dataDir);
    const before = await healthyStatus('a healthy installation');
    const pids = replicaPids(before.status);
    assert.equal(pids.length, 3);
    first.child.kill('SIGKILL');
    await stopped(first.child);
    // The replicas outlive it (their output goes to their log files, not to a pipe of it).
    for (const pid of pids) assert.ok(running(pid), `replica ${pid} still runs`);

    const second = await up(dataDir);
    assert.equal((second.output().match(/replica \d \S+ already running \(pid \d+\): adopted/g) ?? []).length, 3, second.output());
    assert.doesNotMatch(second.output(), /replica \d \S+ started/);
    for (const pid of pids) assert.ok(second.output().includes(`pid ${pid}, adopted`), `replica ${pid} in the banner:\n${second.output()}`);
    const adopted = await healthyStatus('healthy with the adopted replicas');
    assert.deepEqual(replicaPids(adopted.status), pids, 'the same replica processes, none doubled');
    assert.equal(adopted.status.replicas.filter((r) => r.leader).length, 1);

    // Left running again, then started with another flag: the replicas are replaced one at a
    // time (never adopted with the flags of before), and run with this run's flags.
    second.child.kill('SIGKILL');
    await stopped(second.child);
    const third = await up(dataDir, ['--sync', 'normal']);
    assert.equal((third.output().match(/replica \d \S+ \(pid \d+\) runs with other flags \([^)]*--sync full[^)]*\): replacing it/g) ?? []).length, 3, third.output());
    const replaced = await healthyStatus('healthy with the replaced replicas');
    const newPids = replicaPids(replaced.status);
    assert.equal(newPids.length, 3);
    for (const pid of pids) assert.equal(newPids.includes(pid), false, `replica ${pid} was replaced`);
    for (const pid of newPids) assert.match(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '), /--sync normal/);
    assert.equal(replaced.status.replicas.filter((r) => r.leader).length, 1);

    // A clean stop stops the adopted replicas too: no wharf process of this data dir is left
    // (the etcd members, under ha/etcd, keep running by design).
    third.child.kill('SIGTERM');
    await stopped(third.child);
    const left = spawnSync('pgrep', ['-f', '--', `--data-dir ${dataDir}( |$)`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    assert.deepEqual(left, [], 'no wharf process of the data dir remains');
    for (const pid of [...pids, ...newPids]) assert.equal(running(pid), false, `replica ${pid} stopped`);
    assert.equal(etcdPids().length, 3);
  });

  test('a replica whose port another server holds fails wharf up --ha, saying why (not "started", not a second leader)', async () => {
    // Someone else's server on the second replica's port, answering /healthz as a leader.
    const foreign = http.createServer((_, res) => res.end(JSON.stringify({ status: 'ok', replica: 'elsewhere-1-abc123', leader: true })));
    const free = (port: number) =>
      new Promise<boolean>((resolve) => {
        const s = net.createServer().once('error', () => resolve(false));
        s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
      });
    let port = 0;
    for (let i = 0; i < 20 && port === 0; i++) {
      await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', () => r()));
      const held = (foreign.address() as net.AddressInfo).port;
      if ((await free(held - 1)) && (await free(held + 1))) port = held - 1;
      else await new Promise<void>((r) => foreign.close(() => r()));
    }
    assert.ok(port > 0, 'three consecutive ports, the middle one held');
    try {
      const failed = await up(dataDir, ['--listen', `127.0.0.1:${port}`]).then(
        (u) => assert.fail(`wharf up --ha started:\n${u.output()}`),
        (e: Error) => e.message,
      );
      assert.match(failed, new RegExp(`wharf: replica 2 exited: listen EADDRINUSE: address already in use 127\\.0\\.0\\.1:${port + 1}`), failed);
      assert.doesNotMatch(failed, /replica 2 \S+ started/);
      // What it started is stopped again: no replica of this data dir runs, none is recorded.
      const left = spawnSync('pgrep', ['-f', '--', `--data-dir ${dataDir}( |$)`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      assert.deepEqual(left, []);
      assert.deepEqual(fs.readdirSync(path.join(dataDir, 'ha')).filter((f) => /^replica-\d\.json$/.test(f)), []);
    } finally {
      await new Promise<void>((r) => foreign.close(() => r()));
    }
  });
});
