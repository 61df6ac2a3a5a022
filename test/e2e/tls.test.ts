/**
 * The control plane over TLS (issue 12 part 5): `wharf server --tls-cert --tls-key` with the
 * self-signed pair `wharf up --tls` makes (cmd/tls.ts) serves HTTPS and the agent channel as WSS.
 * The AWS CLI v2 (--ca-bundle, AWS_CA_BUNDLE), boto3 (verify=) and Wharf's own client
 * (--ca, AWS_CA_BUNDLE) work when they trust the certificate and refuse the server when they do not; an
 * agent given --ca registers and runs a task on Docker, one without it stops with a clear error.
 *
 * Run: node scripts/run-tests.js --e2e tls
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureSelfSignedCertificate } from '../../src/cmd/tls';
import { AWS_CLI, REPO, run } from './helpers/wharf-server';
import { killAllSpawned, removeClusterContainers, spawnAgent, spawnServer, waitUntil, type ServerProcess } from './helpers/processes';
import { dockerSkipReason } from '../images/docker-test-env';

const CLUSTER = `tls-${process.pid}`;

describe('TLS: HTTPS and WSS with a self-signed certificate', { timeout: 300_000 }, () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-tls-'));
  let srv: ServerProcess;
  let cert = '';
  let clusterArn = '';

  const aws = (args: string[], env: Record<string, string> = {}) => run(AWS_CLI, [...args, '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env(env));

  before(async () => {
    const pair = ensureSelfSignedCertificate(dataDir);
    assert.equal(pair.created, true);
    cert = pair.certFile;
    srv = await spawnServer({ dataDir, extraArgs: ['--tls-cert', pair.certFile, '--tls-key', pair.keyFile] });
  });
  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('the pair: key 0600, names 127.0.0.1 and localhost, reused on the next start', () => {
    const { keyFile, certFile } = ensureSelfSignedCertificate(dataDir);
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(keyFile)).mode & 0o777, 0o700);
    assert.equal(certFile, cert, 'the same files');
    const text = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-text'], { encoding: 'utf8' });
    assert.match(text, /IP Address:127\.0\.0\.1/);
    assert.match(text, /DNS:localhost/);
    assert.match(srv.endpoint, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test('the AWS CLI v2 works with --ca-bundle or AWS_CA_BUNDLE and refuses the server without', async () => {
    const withFlag = await aws(['ecs', 'create-cluster', '--cluster-name', CLUSTER, '--ca-bundle', cert]);
    assert.equal(withFlag.code, 0, withFlag.stderr);
    clusterArn = JSON.parse(withFlag.stdout).cluster.clusterArn;
    const withEnv = await aws(['ecs', 'list-clusters'], { AWS_CA_BUNDLE: cert });
    assert.equal(withEnv.code, 0, withEnv.stderr);
    assert.ok(JSON.parse(withEnv.stdout).clusterArns.includes(clusterArn));
    const without = await aws(['ecs', 'list-clusters']);
    assert.notEqual(without.code, 0);
    assert.match(without.stderr, /SSL validation failed|CERTIFICATE_VERIFY_FAILED/);
    // Nothing is served in the clear on the TLS port.
    const plain = await fetch(srv.endpoint.replace('https:', 'http:') + '/healthz').then((r) => r.status, (e: Error) => e.message);
    assert.notEqual(plain, 200);
  });

  test("boto3 with verify= and Wharf's own client with --ca or AWS_CA_BUNDLE", async () => {
    const py = `import boto3,sys\nc=boto3.client('ecs',endpoint_url=sys.argv[1],region_name='us-east-1',verify=sys.argv[2])\nprint(len(c.list_clusters()['clusterArns']))`;
    const b = await run('python3', ['-c', py, srv.endpoint, cert], srv.env());
    assert.equal(b.code, 0, b.stderr);
    assert.ok(Number(b.stdout.trim()) >= 1);
    const wharf = (env: Record<string, string>, args: string[] = []) => run(process.execPath, ['--import', 'tsx', path.join(REPO, 'src', 'cmd', 'main.ts'), 'subnets', '--endpoint', srv.endpoint, ...args], srv.env(env));
    for (const [env, args] of [[{ AWS_CA_BUNDLE: cert }, []], [{}, ['--ca', cert]]] as const) {
      const ok = await wharf(env, [...args]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /subnet-/);
    }
    const refused = await wharf({});
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /the TLS certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT: .*\); pass --ca FILE or set AWS_CA_BUNDLE/);
  });

  test('an agent without --ca stops with a clear error, whether it asks for the region or registers', async () => {
    await assert.rejects(spawnAgent({ server: srv, cluster: CLUSTER, region: null, runtime: 'simulated' }), /the TLS certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate\); give the agent the certificate or CA the server uses with --ca FILE/);
    await assert.rejects(spawnAgent({ server: srv, cluster: CLUSTER, runtime: 'simulated' }), /UntrustedCertificate: the TLS certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted/);
    const described = await aws(['ecs', 'describe-clusters', '--clusters', CLUSTER, '--ca-bundle', cert]);
    assert.equal(JSON.parse(described.stdout).clusters[0].registeredContainerInstancesCount, 0, 'nothing registered');
  });

  test('an agent with --ca registers over HTTPS and runs a task it hears of over WSS', { skip: dockerSkipReason() }, async () => {
    const agent = await spawnAgent({ server: srv, cluster: CLUSTER, region: null, extraArgs: ['--ca', cert, '--task-endpoint', 'off'] });
    assert.equal(agent.instanceArns.length, 1);
    const td = await aws(['ecs', 'register-task-definition', '--ca-bundle', cert, '--family', 'tls', '--network-mode', 'bridge', '--container-definitions', JSON.stringify([{ name: 'app', image: 'wharf-test/busybox:latest', memory: 32, command: ['sleep', '3600'] }])]);
    assert.equal(td.code, 0, td.stderr);
    const ran = await aws(['ecs', 'run-task', '--ca-bundle', cert, '--cluster', CLUSTER, '--task-definition', 'tls']);
    assert.equal(ran.code, 0, ran.stderr);
    const taskArn = JSON.parse(ran.stdout).tasks[0]?.taskArn as string;
    assert.ok(taskArn, ran.stdout);
    await waitUntil(async () => {
      const t = JSON.parse((await aws(['ecs', 'describe-tasks', '--ca-bundle', cert, '--cluster', CLUSTER, '--tasks', taskArn])).stdout).tasks[0];
      assert.notEqual(t?.lastStatus, 'STOPPED', t?.stoppedReason);
      return t?.lastStatus === 'RUNNING';
    }, 'the task to run', { timeoutMs: 90_000, intervalMs: 250 });
    const inst = JSON.parse((await aws(['ecs', 'describe-container-instances', '--ca-bundle', cert, '--cluster', CLUSTER, '--container-instances', agent.instanceArns[0]!])).stdout).containerInstances[0];
    assert.equal(inst.agentConnected, true, 'the agent channel (WSS) is up');
    await aws(['ecs', 'stop-task', '--ca-bundle', cert, '--cluster', CLUSTER, '--task', taskArn]);
    await agent.stop();
  });

  test('wharf up --tls: makes the pair, its local agent trusts it, and the banner says how to', async () => {
    const upDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-up-tls-'));
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src', 'cmd', 'main.ts'), 'up', '--tls', '--runtime', 'simulated', '--without-fargate', '--dns', 'off', '--load-balancers', 'off', '--listen', '127.0.0.1:0', '--data-dir', upDir], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WHARF_LOG_LEVEL: 'warn' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    try {
      await waitUntil(() => /Local agent: 1 container instance/.test(out), `wharf up to start; output:\n${out}`, { timeoutMs: 60_000, intervalMs: 100 });
      const certFile = path.join(upDir, 'tls', 'wharf.crt');
      const endpoint = /Endpoint:\s+(https:\/\/\S+)/.exec(out)![1]!;
      assert.ok(out.includes(`AWS_CA_BUNDLE=${certFile} aws ecs list-clusters --endpoint-url ${endpoint}`), out);
      assert.ok(out.includes(`wharf agent --endpoint ${endpoint} --ca ${certFile}`), out);
      assert.equal(fs.statSync(path.join(upDir, 'tls', 'wharf.key')).mode & 0o777, 0o600);
      const id = /Access key id:\s+(\S+)/.exec(out)![1]!;
      const secret = /Secret access key:\s+(\S+)/.exec(out)![1]!;
      const r = await run(AWS_CLI, ['ecs', 'describe-clusters', '--clusters', 'default', '--endpoint-url', endpoint, '--output', 'json'], { ...process.env, AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret, AWS_DEFAULT_REGION: 'us-east-1', AWS_CA_BUNDLE: certFile });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).clusters[0].registeredContainerInstancesCount, 1, 'the local agent registered over HTTPS');
    } finally {
      child.kill('SIGTERM');
      await new Promise((res) => child.once('exit', res));
      fs.rmSync(upDir, { recursive: true, force: true });
    }
  });
});
