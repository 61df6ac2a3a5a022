/**
 * The Docker networks of awsvpc subnets (`wharf-subnet-<id>`) are removed by the agent once no
 * container uses them: when the last task on a subnet is cleaned up, and for networks a crash
 * left empty. A network a task still runs on stays, and networks without Wharf's label are never
 * touched. Real Docker Engine, real control plane, and an agent built as `wharf agent` builds it
 * but with a short task cleanup wait (ECS keeps stopped containers for 3 hours).
 *
 * Run: node scripts/run-tests.js --e2e tasks-network-cleanup
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateClusterCommand, DescribeTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, type ECSClient, type Task } from '@aws-sdk/client-ecs';
import { Agent, DockerRuntime, HttpControlPlaneClient } from '../../src/agent';
import { AWSVPC_NETWORK_LABELS, removeUnusedTaskNetworks } from '../../src/agent/task-resources';
import { createLogger } from '../../src/lib';
import { dockerSkipReason } from '../images/docker-test-env';
import { listClusterContainers, removeClusterContainers, waitUntil } from './helpers/processes';
import { defaultSubnets, startTestServer, type TestServer } from './helpers/wharf-server';
import { ensureAgentToken } from '../../src/cmd/agent-tokens';
import { subnetNetworkName } from '../../src/control/agent-desired-state';

const skip = dockerSkipReason();
const ID = `e2ec${process.pid}`;
/** The network of a default subnet of the server's region (by id; its range and zone are known once the server runs). */
const subnetInfo = new Map<string, { cidr: string; zone: string }>();
const net = (subnet: string) => subnetNetworkName(subnet, subnetInfo.get(subnet)?.cidr, subnetInfo.get(subnet)?.zone);

function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' });
}

/** The networks Docker has now, by name: what `docker network ls` shows. */
function networkNames(): string[] {
  return docker('network', 'ls', '--format', '{{.Name}}').split('\n').filter(Boolean);
}

function removeNetworkQuietly(name: string): void {
  try {
    execFileSync('docker', ['network', 'rm', name], { stdio: 'ignore' });
  } catch {
    /* gone already */
  }
}

describe('awsvpc subnet networks are removed once unused', { skip, timeout: 300_000 }, () => {
  let srv: TestServer;
  let ecs: ECSClient;
  let clusterArn: string;
  let runtime: DockerRuntime;
  /** Two hosts on this engine, in zones a and b: a task's subnet (of one zone) picks the host. */
  const agents: Agent[] = [];
  const dataDirs: string[] = [];
  let td: string;
  let SUBNET_X: string;
  let SUBNET_Y: string;

  before(async () => {
    srv = await startTestServer();
    ecs = srv.ecs();
    const cluster = `net-cleanup-${process.pid}`;
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
    runtime = new DockerRuntime();
    const logger = createLogger('wharf-e2e-agent', process.env.WHARF_LOG_LEVEL ?? 'silent');
    for (const zone of ['a', 'b']) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-agent-'));
      dataDirs.push(dataDir);
      const agent = new Agent({
        client: new HttpControlPlaneClient({ endpoint: srv.endpoint, region: srv.region, credentials: ensureAgentToken(srv.dataDir, cluster), logger }),
        runtime,
        cluster,
        dataDir,
        region: srv.region,
        availabilityZone: `${srv.region}${zone}`,
        pullBehaviour: 'prefer-cached',
        taskCleanupWaitMs: 500,
        logger,
      });
      await agent.start();
      agents.push(agent);
    }
    const subnets = await defaultSubnets(srv);
    for (const [zone, sub] of Object.entries(subnets)) subnetInfo.set(sub.id, { cidr: sub.cidr, zone });
    SUBNET_X = subnets[`${srv.region}a`]!.id;
    SUBNET_Y = subnets[`${srv.region}b`]!.id;
    const out = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'net-cleanup',
        networkMode: 'awsvpc',
        requiresCompatibilities: ['EC2'],
        containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: ['sleep', '3600'] }],
      }),
    );
    td = out.taskDefinition!.taskDefinitionArn!;
  });

  after(async () => {
    for (const a of agents) await a.stop();
    runtime?.close();
    await srv?.close();
    if (clusterArn) await removeClusterContainers(clusterArn);
    for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true });
  });

  const describeTask = async (arn: string): Promise<Task> => (await ecs.send(new DescribeTasksCommand({ cluster: clusterArn, tasks: [arn] }))).tasks![0]!;
  const runOn = async (subnet: string): Promise<string> => {
    const out = await ecs.send(
      new RunTaskCommand({ cluster: clusterArn, taskDefinition: td, networkConfiguration: { awsvpcConfiguration: { subnets: [subnet] } } }),
    );
    assert.equal(out.tasks?.length, 1, JSON.stringify(out.failures));
    return out.tasks![0]!.taskArn!;
  };
  const waitStatus = (arn: string, status: string) =>
    waitUntil(async () => ((await describeTask(arn)).lastStatus === status ? true : undefined), `${arn} ${status}`, { timeoutMs: 60_000, intervalMs: 100 });
  /** Cleaned up: the task's containers (its pause container too) are gone from Docker. */
  const waitCleanedUp = (arn: string) =>
    waitUntil(async () => ((await listClusterContainers(clusterArn, true)).some((c) => c.taskArn === arn) ? undefined : true), `${arn} cleaned up`, {
      timeoutMs: 60_000,
      intervalMs: 100,
    });

  test('the last task on a subnet takes its network with it; a network a task still runs on stays', async () => {
    const x = await runOn(SUBNET_X);
    const y1 = await runOn(SUBNET_Y);
    const y2 = await runOn(SUBNET_Y);
    for (const arn of [x, y1, y2]) await waitStatus(arn, 'RUNNING');
    assert.ok(networkNames().includes(net(SUBNET_X)));
    assert.ok(networkNames().includes(net(SUBNET_Y)));

    // x was alone on its subnet; y2 still runs on y1's.
    await ecs.send(new StopTaskCommand({ cluster: clusterArn, task: x }));
    await ecs.send(new StopTaskCommand({ cluster: clusterArn, task: y1 }));
    await waitCleanedUp(x);
    await waitCleanedUp(y1);
    await waitUntil(() => (networkNames().includes(net(SUBNET_X)) ? undefined : true), `${net(SUBNET_X)} removed`, { timeoutMs: 30_000, intervalMs: 100 });
    assert.ok(networkNames().includes(net(SUBNET_Y)), 'the network y2 runs on stays');
    assert.equal((await describeTask(y2)).lastStatus, 'RUNNING');

    await ecs.send(new StopTaskCommand({ cluster: clusterArn, task: y2 }));
    await waitCleanedUp(y2);
    await waitUntil(() => (networkNames().includes(net(SUBNET_Y)) ? undefined : true), `${net(SUBNET_Y)} removed`, { timeoutMs: 30_000, intervalMs: 100 });
  });

  test('a sweep removes labelled networks without containers only: not one with a container, not an unlabelled one', async () => {
    const empty = `wharf-subnet-left${ID}`;
    const withStopped = `wharf-subnet-stopped${ID}`;
    const withRunning = `wharf-subnet-running${ID}`;
    const foreign = `not-wharf-${ID}`;
    const label = Object.entries(AWSVPC_NETWORK_LABELS).map(([k, v]) => `${k}=${v}`)[0]!;
    const containers: string[] = [];
    try {
      for (const n of [empty, withStopped, withRunning]) docker('network', 'create', '--label', label, n);
      docker('network', 'create', foreign);
      // A created (never started) container and a running one: Docker itself would refuse only
      // the running one, but both mean "in use".
      containers.push(docker('create', '--network', withStopped, 'wharf/pause:latest').trim());
      containers.push(docker('run', '-d', '--network', withRunning, 'wharf/pause:latest').trim());

      const listed = await runtime.listNetworks(AWSVPC_NETWORK_LABELS);
      assert.deepEqual(listed.find((n) => n.name === withStopped)?.containerIds, [containers[0]]);
      assert.deepEqual(listed.find((n) => n.name === withRunning)?.containerIds, [containers[1]]);
      // Any agent on this engine (this file's, or a `wharf up` the user keeps running beside the
      // tests) may sweep the empty one as soon as it exists: listed with no container, or gone.
      const emptyNow = listed.find((n) => n.name === empty);
      if (emptyNow) assert.deepEqual(emptyNow.containerIds, []);
      assert.equal(listed.find((n) => n.name === foreign), undefined);
      assert.equal(await runtime.removeNetwork(withRunning), 'in-use', 'a running container blocks removal; not an error');

      // The agent's own watcher may get there first (it shares the runtime, and with it the
      // per-network holds): either way the empty one is gone afterwards.
      await removeUnusedTaskNetworks(runtime);
      const now = networkNames();
      assert.ok(!now.includes(empty));
      for (const kept of [withStopped, withRunning, foreign]) assert.ok(now.includes(kept), `${kept} kept`);
      assert.equal(await runtime.removeNetwork(empty), 'absent');
    } finally {
      if (containers.length) execFileSync('docker', ['rm', '-f', ...containers], { stdio: 'ignore' });
      for (const n of [empty, withStopped, withRunning, foreign]) removeNetworkQuietly(n);
    }
  });

  test("a subnet's network keeps the addresses AWS reserves: a task's first address is the subnet's fourth, not its second", async () => {
    const name = `wharf-subnet-first${ID}`;
    const base = `10.252.${process.pid % 250}`;
    const c: string[] = [];
    try {
      await runtime.ensureNetwork(name, AWSVPC_NETWORK_LABELS, { subnet: `${base}.0/24`, gateway: `${base}.1` });
      c.push(docker('run', '-d', '--network', name, 'wharf/pause:latest').trim());
      const ip = docker('inspect', '-f', `{{(index .NetworkSettings.Networks "${name}").IPAddress}}`, c[0]!).trim();
      assert.equal(ip, `${base}.4`);
    } finally {
      if (c.length) execFileSync('docker', ['rm', '-f', ...c], { stdio: 'ignore' });
      removeNetworkQuietly(name);
    }
  });

  test("a subnet whose range another Docker network holds (another Wharf's) fails naming the range and --vpc-base", async () => {
    const other = `someone-else-${ID}`;
    const range = `10.251.${process.pid % 250}.0/24`;
    try {
      docker('network', 'create', '--subnet', range, other);
      await assert.rejects(runtime.ensureNetwork(`wharf-subnet-clash${ID}`, AWSVPC_NETWORK_LABELS, { subnet: range, gateway: range.replace(/0\/24$/, '1') }), (err: Error) => {
        assert.match(err.message, /overlaps/);
        assert.ok(err.message.includes(`another Docker network on this host uses ${range}; start wharf server (or wharf up) with --vpc-base A.B`), err.message);
        return true;
      });
      assert.ok(!networkNames().includes(`wharf-subnet-clash${ID}`));
    } finally {
      removeNetworkQuietly(other);
    }
  });
});
