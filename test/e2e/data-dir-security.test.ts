/**
 * The data dir at rest (issue 12 part 5): a server and an agent started with umask 000 write
 * nothing wider than 0600 / 0700 (store, WAL, keys, credentials, the agent's task files,
 * HAProxy's config, pid file, log and sockets), narrow what an older build left wider, and keep
 * no Secrets Manager value in the clear on disk; GetSecretValue still returns it. A server
 * started with another secrets.key says it cannot decrypt (DecryptionFailure), never returns
 * garbage; a secrets.key of the wrong size stops the server with a clear message.
 *
 * Run: node scripts/run-tests.js --e2e data-dir-security
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AWS_CLI, run } from './helpers/wharf-server';
import { killAllSpawned, removeClusterContainers, spawnAgent, spawnServer, waitUntil, type ServerProcess } from './helpers/processes';
import { dockerSkipReason } from '../images/docker-test-env';
import { forwardListener, haproxySkipReason, httpGroup, startDataPlane, startTarget } from './helpers/lb-harness';

/** Every path under `dir` whose mode is not 0700 (directories) or 0600 (anything else), but the user's notes.txt. */
function wideModes(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    if (path.relative(dir, p) === 'notes.txt') return;
    const st = fs.lstatSync(p);
    const want = st.isDirectory() ? 0o700 : 0o600;
    if (!st.isSymbolicLink() && (st.mode & 0o777) !== want) out.push(`${path.relative(dir, p) || '.'} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
  return out;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    else if (st.isFile()) out.push(p);
  };
  walk(dir);
  return out;
}

const CLUSTER = `modes-${process.pid}`;
// The test runs HAProxy in the data dir's haproxy/ itself (the load balancer data plane, as the
// server would): the server's own controller, which adopts a HAProxy running there, stays off.
const NO_LB = ['--load-balancers', 'off'];

describe('the data dir at rest', { skip: dockerSkipReason(), timeout: 300_000 }, () => {
  const oldUmask = process.umask(0);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-modes-'));
  // Random per run: finding it on disk cannot be a coincidence.
  const password = `pw-${randomBytes(12).toString('hex')}`;
  let srv: ServerProcess;
  let clusterArn = '';

  const sm = (s: Pick<ServerProcess, 'endpoint' | 'env'>, args: string[]) => run(AWS_CLI, ['secretsmanager', ...args, '--endpoint-url', s.endpoint, '--output', 'json'], s.env());
  const ecs = (args: string[]) => run(AWS_CLI, ['ecs', ...args, '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env());

  before(async () => {
    // As a data dir made by hand or by an older build: world-writable, with Wharf's files wider
    // than they should be, and a file of the user's that is not Wharf's to change.
    fs.chmodSync(dataDir, 0o777);
    fs.mkdirSync(path.join(dataDir, 'haproxy'), { mode: 0o777 });
    fs.chmodSync(path.join(dataDir, 'haproxy'), 0o777);
    fs.writeFileSync(path.join(dataDir, 'haproxy', 'haproxy.log'), 'from an older build\n');
    fs.chmodSync(path.join(dataDir, 'haproxy', 'haproxy.log'), 0o644);
    fs.writeFileSync(path.join(dataDir, 'notes.txt'), "the user's own");
    fs.chmodSync(path.join(dataDir, 'notes.txt'), 0o644);
    srv = await spawnServer({ dataDir, extraArgs: NO_LB });
  });
  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    process.umask(oldUmask);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('a server and an agent under umask 000 write only 0600 files and 0700 directories; secrets are not on disk in the clear', async () => {
    // The server narrowed what an older build left, at start (HAProxy is not running yet).
    assert.equal(fs.statSync(dataDir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dataDir, 'haproxy')).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dataDir, 'haproxy', 'haproxy.log')).mode & 0o777, 0o600);
    assert.equal((await ecs(['create-cluster', '--cluster-name', CLUSTER])).code, 0);
    const created = await sm(srv, ['create-secret', '--name', 'db', '--secret-string', JSON.stringify({ username: 'app', password })]);
    assert.equal(created.code, 0, created.stderr);
    const secretArn = JSON.parse(created.stdout).ARN as string;
    // An agent sharing the server's data dir (as under `wharf up`), running a task that gets the
    // secret: it writes its identity and task files under agent/.
    const agent = await spawnAgent({ server: srv, cluster: CLUSTER, dataDir });
    const td = await ecs(['register-task-definition', '--family', 'modes', '--network-mode', 'bridge', '--requires-compatibilities', 'EC2', '--container-definitions', JSON.stringify([{ name: 'app', image: 'wharf-test/busybox:latest', memory: 32, command: ['sleep', '3600'], secrets: [{ name: 'PW', valueFrom: `${secretArn}:password::` }] }])]);
    assert.equal(td.code, 0, td.stderr);
    const ran = await ecs(['run-task', '--cluster', CLUSTER, '--task-definition', 'modes']);
    assert.equal(ran.code, 0, ran.stderr);
    const taskArn = JSON.parse(ran.stdout).tasks[0]?.taskArn as string;
    assert.ok(taskArn, ran.stdout);
    clusterArn = JSON.parse(ran.stdout).tasks[0].clusterArn;
    await waitUntil(async () => {
      const d = await ecs(['describe-tasks', '--cluster', CLUSTER, '--tasks', taskArn]);
      const t = JSON.parse(d.stdout).tasks[0];
      assert.notEqual(t?.lastStatus, 'STOPPED', t?.stoppedReason);
      return t?.lastStatus === 'RUNNING';
    }, 'the task with a secret to run (the agent got the decrypted value)', { timeoutMs: 90_000, intervalMs: 250 });
    assert.ok(fs.readdirSync(path.join(dataDir, 'agent', 'tasks')).length > 0, 'the agent wrote its task file');

    // HAProxy's files, as the load balancer controller lays them out in the data dir.
    if (!haproxySkipReason()) {
      const target = await startTarget('t');
      const lb = await startDataPlane(path.join(dataDir, 'haproxy'));
      try {
        const port = 19000 + (process.pid % 1000);
        await lb.apply({ loadBalancers: [{ id: 'lb1', type: 'application', address: `127.101.${process.pid % 200}.1`, listeners: [forwardListener('l1', port, 'web')] }], targetGroups: [httpGroup('web', [target])] });
        assert.ok(fs.readdirSync(path.join(dataDir, 'haproxy')).some((f) => f.endsWith('.pid')), 'haproxy runs and wrote its pid file');
        assert.deepEqual(wideModes(dataDir), [], 'with haproxy running');
      } finally {
        await lb.stop();
        await target.close();
      }
    }

    const names = filesUnder(dataDir).map((f) => path.relative(dataDir, f));
    for (const f of ['wharf.db', 'secrets.key', 'credentials.json', 'haproxy/haproxy.log']) assert.ok(names.includes(f), `${f} in ${names.join(', ')}`);
    assert.equal(fs.statSync(path.join(dataDir, 'notes.txt')).mode & 0o777, 0o644, "a file that is not Wharf's is left as it is");
    assert.ok(names.some((f) => f.startsWith('agent/tasks/')), names.join(', '));
    assert.deepEqual(wideModes(dataDir), []);
    assert.equal(fs.statSync(path.join(dataDir, 'secrets.key')).size, 32);

    for (const f of filesUnder(dataDir)) {
      const bytes = fs.readFileSync(f);
      assert.ok(!bytes.includes(password), `${path.relative(dataDir, f)} holds the secret in the clear`);
    }
    const got = await sm(srv, ['get-secret-value', '--secret-id', 'db']);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(JSON.parse(JSON.parse(got.stdout).SecretString).password, password);
    await agent.stop();
  });

  test('another secrets.key: DecryptionFailure with a clear message; a key of the wrong size stops the server', async () => {
    await srv.stop();
    const keyFile = path.join(dataDir, 'secrets.key');
    const original = fs.readFileSync(keyFile);
    fs.writeFileSync(keyFile, randomBytes(32));
    const other = await spawnServer({ dataDir, extraArgs: NO_LB });
    const r = await sm(other, ['get-secret-value', '--secret-id', 'db']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\(DecryptionFailure\) when calling the GetSecretValue operation.*?: Secrets Manager can't decrypt the protected secret text using the provided KMS key \(secret db: .*secrets\.key/);
    assert.ok(!r.stderr.includes(password) && !r.stdout.includes(password));
    await other.stop();

    fs.writeFileSync(keyFile, randomBytes(5));
    await assert.rejects(spawnServer({ dataDir, extraArgs: NO_LB, startTimeoutMs: 30_000 }), /secrets\.key holds 5 bytes, not the 32 of an AES-256 key/);
    assert.equal(fs.statSync(keyFile).size, 5, 'a bad key is reported, never replaced');

    fs.writeFileSync(keyFile, original);
    srv = await spawnServer({ dataDir, extraArgs: NO_LB });
    const back = await sm(srv, ['get-secret-value', '--secret-id', 'db']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(JSON.parse(JSON.parse(back.stdout).SecretString).password, password);
  });
});
