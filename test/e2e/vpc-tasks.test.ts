/**
 * Fargate tasks in the region's VPC on a real Docker Engine, as a user sees them: a task gets an
 * address in its subnet's range and DescribeTasks shows its ENI; security groups decide who
 * connects (a task admitting tcp/8080 only from group G takes a connection from a task in G and
 * not from one outside it); assignPublicIp ENABLED publishes the task's port on the host (here
 * 127.0.0.1) where networkBindings say, DISABLED publishes nothing; names resolve through
 * Docker's embedded DNS, which forwards to the host's resolver.
 *
 * Run: node --import tsx --test test/e2e/vpc-tasks.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateClusterCommand, DescribeTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, type ECSClient, type Task } from '@aws-sdk/client-ecs';
import { startAgents, type RunningAgents } from '../../src/cmd/agent';
import { FARGATE_POOL } from '../../src/core/fargate-pool';
import { createLogger } from '../../src/lib';
import { dockerSkipReason } from '../images/docker-test-env';
import { removeClusterContainers, waitUntil } from './helpers/processes';
import { AWS_CLI, defaultSubnets, run, startTestServer, type TestServer } from './helpers/wharf-server';
import { ensureAgentToken } from '../../src/cmd/agent-tokens';

const skip = dockerSkipReason();
/** Serves one line per connection on 8080 (busybox nc; its wget fails under gVisor). */
const SERVE = 'while :; do echo hello-from-web | nc -l -p 8080; done';
/** Tries the web task every second and prints what it got. */
const CLIENT = (ip: string) => `while :; do if r=$(nc -w 2 ${ip} 8080 </dev/null) && [ -n "$r" ]; then echo "GOT $r"; else echo FAIL; fi; sleep 1; done`;

function inCidr(cidr: string, ip: string): boolean {
  const n = (x: string) => x.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const [base, bits] = cidr.split('/');
  return n(ip) >= n(base!) && n(ip) < n(base!) + 2 ** (32 - Number(bits));
}

const logs = (id: string) => execFileSync('docker', ['logs', id], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** The first line a TCP server at host:port sends. */
function readLine(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, timeout: 3000 });
    let got = '';
    s.on('data', (d) => (got += String(d)));
    s.on('end', () => resolve(got.trim()));
    s.on('timeout', () => s.destroy(new Error('timeout')));
    s.on('error', reject);
  });
}

describe('Fargate tasks in the VPC', { skip, timeout: 180_000 }, () => {
  let srv: TestServer;
  let ecs: ECSClient;
  let pool: RunningAgents;
  let agentDir: string;
  const cluster = `vpc-${process.pid}`;
  let clusterArn = '';
  let subnetA: { id: string; cidr: string };
  const groups: Record<string, string> = {};

  const ec2 = async (args: string[]) => {
    const r = await run(AWS_CLI, ['ec2', ...args, '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env());
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  };
  const describeTask = async (arn: string): Promise<Task> => (await ecs.send(new DescribeTasksCommand({ cluster, tasks: [arn] }))).tasks![0]!;
  const running = (arn: string) =>
    waitUntil(async () => {
      const t = await describeTask(arn);
      if (t.lastStatus === 'STOPPED') throw new Error(`${arn} stopped: ${t.stoppedReason}`);
      return t.lastStatus === 'RUNNING' && t.attachments?.[0]?.status === 'ATTACHED' ? t : undefined;
    }, `${arn} RUNNING`, { timeoutMs: 90_000, intervalMs: 250 });
  const runTask = async (family: string, securityGroups: string[] | undefined, assignPublicIp: 'ENABLED' | 'DISABLED' = 'DISABLED') => {
    const out = await ecs.send(
      new RunTaskCommand({ cluster, launchType: 'FARGATE', taskDefinition: family, networkConfiguration: { awsvpcConfiguration: { subnets: [subnetA.id], securityGroups, assignPublicIp } } }),
    );
    assert.deepEqual(out.failures, []);
    return running(out.tasks![0]!.taskArn!);
  };
  const ipOf = (t: Task) => t.attachments![0]!.details!.find((d) => d.name === 'privateIPv4Address')!.value!;

  before(async () => {
    srv = await startTestServer();
    ecs = srv.ecs();
    agentDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-agent-'));
    pool = await startAgents({
      endpoint: srv.endpoint,
      region: srv.region,
      cluster: FARGATE_POOL,
      availabilityZone: `${srv.region}a`,
      credentials: ensureAgentToken(srv.dataDir, FARGATE_POOL),
      dataDir: agentDir,
      attributes: {},
      resources: { cpu: 4096, memory: 8192 },
      runtime: 'docker',
      instances: 1,
      pullBehaviour: 'prefer-cached',
      taskEndpoint: { port: 0 },
      publicIp: '127.0.0.1',
      log: createLogger('wharf-e2e-agent', process.env.WHARF_LOG_LEVEL ?? 'silent'),
    });
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
    subnetA = (await defaultSubnets(srv))[`${srv.region}a`]!;
    for (const family of ['web', 'client']) {
      await ecs.send(
        new RegisterTaskDefinitionCommand({
          family: `vpc-${family}`,
          networkMode: 'awsvpc',
          requiresCompatibilities: ['FARGATE'],
          cpu: '256',
          memory: '512',
          containerDefinitions: [
            {
              name: family,
              image: 'wharf-test/busybox',
              essential: true,
              stopTimeout: 1,
              command: ['sh', '-c', family === 'web' ? SERVE : 'sleep 3600'],
              ...(family === 'web' ? { portMappings: [{ containerPort: 8080 }] } : {}),
            },
          ],
        }),
      );
    }
    const suffix = process.pid;
    groups.web = (await ec2(['create-security-group', '--group-name', `web-${suffix}`, '--description', 'web'])).GroupId;
    groups.g = (await ec2(['create-security-group', '--group-name', `clients-${suffix}`, '--description', 'clients'])).GroupId;
    groups.other = (await ec2(['create-security-group', '--group-name', `others-${suffix}`, '--description', 'others'])).GroupId;
    groups.open = (await ec2(['create-security-group', '--group-name', `open-${suffix}`, '--description', 'open to the subnet'])).GroupId;
    await ec2(['authorize-security-group-ingress', '--group-id', groups.web, '--ip-permissions', `IpProtocol=tcp,FromPort=8080,ToPort=8080,UserIdGroupPairs=[{GroupId=${groups.g}}]`]);
    groups.public = (await ec2(['create-security-group', '--group-name', `public-${suffix}`, '--description', 'open to everyone'])).GroupId;
    await ec2(['authorize-security-group-ingress', '--group-id', groups.public, '--protocol', 'tcp', '--port', '8080', '--cidr', '0.0.0.0/0']);
  });
  after(async () => {
    await pool?.stop();
    await srv?.close();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (agentDir) fs.rmSync(agentDir, { recursive: true, force: true });
  });

  test("a task's address is in its subnet, and DescribeTasks shows the ENI; names resolve through the embedded DNS", async () => {
    const t = await runTask('vpc-client', undefined);
    const eni = t.attachments![0]!;
    assert.equal(eni.type, 'ElasticNetworkInterface');
    const d = Object.fromEntries(eni.details!.map((x) => [x.name, x.value]));
    assert.equal(d.subnetId, subnetA.id);
    assert.ok(inCidr(subnetA.cidr, d.privateIPv4Address!), `${d.privateIPv4Address} in ${subnetA.cidr}`);
    assert.match(d.networkInterfaceId!, /^eni-[0-9a-f]{17}$/);
    assert.match(d.macAddress!, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.equal(d.privateDnsName, `ip-${d.privateIPv4Address!.replace(/\./g, '-')}.ec2.internal`);
    assert.equal(d.publicIPv4Address, undefined, 'DISABLED: no public address');
    assert.equal(t.availabilityZone, `${srv.region}a`);
    assert.deepEqual(t.containers![0]!.networkInterfaces, [{ attachmentId: eni.id, privateIpv4Address: d.privateIPv4Address }]);

    const id = t.containers![0]!.runtimeId!;
    const resolv = execFileSync('docker', ['exec', id, 'cat', '/etc/resolv.conf'], { encoding: 'utf8' });
    assert.match(resolv, /^nameserver 127\.0\.0\.11$/m, "Docker's embedded DNS, which forwards what it does not know to the host's resolvers");
    // The embedded DNS answers for the subnet: the task's pause container by name is the task's address.
    const pause = JSON.parse(execFileSync('docker', ['inspect', id], { encoding: 'utf8' }))[0].HostConfig.NetworkMode.replace(/^container:/, '');
    const pauseName = JSON.parse(execFileSync('docker', ['inspect', pause], { encoding: 'utf8' }))[0].Name.replace(/^\//, '');
    const looked = execFileSync('docker', ['exec', id, 'nslookup', pauseName, '127.0.0.11'], { encoding: 'utf8' });
    assert.ok(looked.includes(d.privateIPv4Address!), looked);
  });

  test('security groups: tcp/8080 from group G only, a task outside G is refused; a CIDR source admits its range', async () => {
    const web = await runTask('vpc-web', [groups.web!]);
    const ip = ipOf(web);
    const c = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'vpc-probe',
        networkMode: 'awsvpc',
        requiresCompatibilities: ['FARGATE'],
        cpu: '256',
        memory: '512',
        containerDefinitions: [{ name: 'probe', image: 'wharf-test/busybox', essential: true, stopTimeout: 1, command: ['sh', '-c', CLIENT(ip)] }],
      }),
    );
    const family = c.taskDefinition!.family!;
    const member = await runTask(family, [groups.g!]);
    const outsider = await runTask(family, [groups.other!]);
    const memberId = member.containers![0]!.runtimeId!;
    const outsiderId = outsider.containers![0]!.runtimeId!;
    await waitUntil(() => (logs(memberId).includes('GOT hello-from-web') ? true : undefined), 'the member of G connects', { timeoutMs: 30_000, intervalMs: 500, describe: () => logs(memberId) });
    // By now the outsider has tried several times, every time in vain.
    await waitUntil(() => (logs(outsiderId).split('\n').filter((l) => l === 'FAIL').length >= 3 ? true : undefined), 'the outsider tried', { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(!logs(outsiderId).includes('GOT'), `the outsider never connected: ${logs(outsiderId)}`);


    // A CIDR source: a group admitting the subnet's range lets a task of any group in.
    await ec2(['authorize-security-group-ingress', '--group-id', groups.open!, '--protocol', 'tcp', '--port', '8080', '--cidr', subnetA.cidr]);
    const open = await runTask('vpc-web', [groups.open!]);
    const probe = await ecs.send(new RegisterTaskDefinitionCommand({
      family: 'vpc-probe-open', networkMode: 'awsvpc', requiresCompatibilities: ['FARGATE'], cpu: '256', memory: '512',
      containerDefinitions: [{ name: 'probe', image: 'wharf-test/busybox', essential: true, stopTimeout: 1, command: ['sh', '-c', CLIENT(ipOf(open))] }],
    }));
    const anyone = await runTask(probe.taskDefinition!.family!, [groups.other!]);
    const anyoneId = anyone.containers![0]!.runtimeId!;
    await waitUntil(() => (logs(anyoneId).includes('GOT hello-from-web') ? true : undefined), 'a task in the range connects', { timeoutMs: 30_000, intervalMs: 500, describe: () => logs(anyoneId) });
  });

  test('assignPublicIp ENABLED publishes the port its groups open to 0.0.0.0/0 on the host where networkBindings say; a port open only to a group, or DISABLED, is not', async () => {
    const pub = await runTask('vpc-web', [groups.public!], 'ENABLED');
    // Said with RUNNING itself (they read [] until a later observation of the containers).
    const binding = pub.containers![0]!.networkBindings?.[0];
    assert.ok(binding, `networkBindings of the RUNNING task: ${JSON.stringify(pub.containers![0]!.networkBindings)}`);
    assert.equal(binding.bindIP, '127.0.0.1');
    assert.equal(binding.containerPort, 8080);
    assert.equal(binding.protocol, 'tcp');
    const eni = Object.fromEntries((await describeTask(pub.taskArn!)).attachments![0]!.details!.map((x) => [x.name, x.value]));
    assert.equal(eni.publicIPv4Address, '127.0.0.1');
    // docker-proxy accepts at once; the container answers once its server is up.
    const line = await waitUntil(() => readLine('127.0.0.1', binding.hostPort!).then((l) => l || undefined, () => undefined), `127.0.0.1:${binding.hostPort}`, { timeoutMs: 20_000, intervalMs: 500 });
    assert.equal(line, 'hello-from-web');

    // Published, a port would reach the task from the host's address, past its groups' sources.
    const groupOnly = await runTask('vpc-web', [groups.web!], 'ENABLED');
    const priv = await runTask('vpc-web', [groups.public!], 'DISABLED');
    await new Promise((r) => setTimeout(r, 1000));
    for (const t of [groupOnly, priv]) {
      assert.deepEqual((await describeTask(t.taskArn!)).containers![0]!.networkBindings ?? [], []);
      const pause = JSON.parse(execFileSync('docker', ['inspect', t.containers![0]!.runtimeId!], { encoding: 'utf8' }))[0].HostConfig.NetworkMode.replace(/^container:/, '');
      const ports = JSON.parse(execFileSync('docker', ['inspect', pause], { encoding: 'utf8' }))[0].NetworkSettings.Ports ?? {};
      assert.deepEqual(Object.values(ports).filter((v) => v !== null), [], 'nothing published');
    }
  });
});
