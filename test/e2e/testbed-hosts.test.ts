/**
 * Agents on several hosts (issue 13, part 3): scripts/testbed.sh makes three Docker hosts on this
 * machine (a network namespace each, with its own dockerd, bridge, data root and socket, reached
 * over a veth pair), and one `wharf agent` runs on each, registered in its own availability zone.
 * What each host's own Docker Engine runs is the truth the assertions check: spread placement puts
 * one task on each host, a draining host is emptied, a lost host's tasks are replaced on the
 * others, and its agent, back, stops what it no longer should run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteServiceCommand,
  DescribeContainerInstancesCommand,
  DescribeServicesCommand,
  ListContainerInstancesCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StopTaskCommand,
  UpdateContainerInstancesStateCommand,
  UpdateServiceCommand,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { REPO } from './helpers/wharf-server';
import { killAllSpawned, listClusterContainers, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';

const skip = dockerSkipReason();
const TESTBED = path.join(REPO, 'scripts', 'testbed.sh');
const HOSTS = 3;
const ZONES = ['us-east-1a', 'us-east-1b', 'us-east-1c'];
const CLUSTER = `testbed-${process.pid}`;
const dockerHost = (i: number) => `unix:///run/wharf-testbed/h${i}/docker.sock`;
const via = (i: number) => ['nsenter', `--net=/run/netns/wharf-tb${i}`, 'env', `DOCKER_HOST=${dockerHost(i)}`];

describe('agents on several Docker hosts (scripts/testbed.sh)', { skip }, () => {
  let srv: ServerProcess;
  let ecs: ECSClient;
  const agents: AgentProcess[] = [];
  let clusterArn = '';
  /** Container instance ARN -> test bed host number. */
  const hostOf = new Map<string, number>();

  const startAgent = (i: number, dataDir?: string) =>
    spawnAgent({ server: srv, cluster: CLUSTER, availabilityZone: ZONES[i - 1], via: via(i), dataDir, extraArgs: ['--public-ip', `10.213.0.${10 + i}`] });

  /** Running task containers per host, from each host's own Docker Engine. */
  async function runningPerHost(family: string): Promise<number[]> {
    const out: number[] = [];
    for (let i = 1; i <= HOSTS; i++) {
      out.push((await listClusterContainers(clusterArn, false, dockerHost(i))).filter((c) => c.family === family && c.running).length);
    }
    return out;
  }

  before(async () => {
    execFileSync(TESTBED, ['up', String(HOSTS), 'wharf-test/busybox:latest'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
    srv = await spawnServer({ agentTimeoutMs: 4000, healthyAfterRunningMs: 500, extraArgs: ['--listen', '10.213.0.1:0', '--load-balancers', 'off'] });
    ecs = srv.ecs();
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }))).cluster!.clusterArn!;
    for (let i = 1; i <= HOSTS; i++) {
      const a = await startAgent(i);
      agents.push(a);
      hostOf.set(a.instanceArns[0]!, i);
    }
    await ecs.send(new RegisterTaskDefinitionCommand({
      family: 'tb',
      containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, command: ['sleep', '3600'] }],
    }));
  });

  after(async () => {
    await killAllSpawned();
    try {
      execFileSync(TESTBED, ['down'], { stdio: 'ignore', timeout: 120_000 });
    } catch {
      // best effort: the next `up` starts from whatever is left
    }
  });

  test('three hosts register as three container instances in three zones', async () => {
    const arns = (await ecs.send(new ListContainerInstancesCommand({ cluster: CLUSTER }))).containerInstanceArns!;
    assert.equal(arns.length, HOSTS);
    const described = (await ecs.send(new DescribeContainerInstancesCommand({ cluster: CLUSTER, containerInstances: arns }))).containerInstances!;
    const zones = described.map((ci) => ci.attributes!.find((a) => a.name === 'ecs.availability-zone')?.value).sort();
    assert.deepEqual(zones, ZONES);
    assert.ok(described.every((ci) => ci.agentConnected === true));
  });

  test('spread across zones puts one task on each host, as each host\'s Docker Engine shows', async () => {
    const out = await ecs.send(new RunTaskCommand({
      cluster: CLUSTER,
      taskDefinition: 'tb',
      count: 3,
      placementStrategy: [{ type: 'spread', field: 'attribute:ecs.availability-zone' }],
    }));
    assert.equal(out.failures!.length, 0, JSON.stringify(out.failures));
    const hosts = out.tasks!.map((t) => hostOf.get(t.containerInstanceArn!)).sort();
    assert.deepEqual(hosts, [1, 2, 3]);
    await waitUntil(async () => (await runningPerHost('tb')).join() === '1,1,1', 'one running container per host', { timeoutMs: 60_000 });
    for (const t of out.tasks!) await ecs.send(new StopTaskCommand({ cluster: CLUSTER, task: t.taskArn! }));
    await waitUntil(async () => (await runningPerHost('tb')).join() === '0,0,0', 'the stopped tasks gone from every host', { timeoutMs: 60_000 });
  });

  test('a service spreads over the hosts; draining one moves its task; a lost host\'s task is replaced; the host, back, stops it', async () => {
    await ecs.send(new CreateServiceCommand({
      cluster: CLUSTER,
      serviceName: 'web',
      taskDefinition: 'tb',
      desiredCount: 3,
      placementStrategy: [{ type: 'spread', field: 'attribute:ecs.availability-zone' }],
      deploymentConfiguration: { minimumHealthyPercent: 0, maximumPercent: 200 },
    }));
    await waitUntil(async () => (await runningPerHost('tb')).join() === '1,1,1', 'one service task per host', { timeoutMs: 90_000 });

    // Draining host 1: its task is replaced on the others and host 1 runs nothing.
    const host1 = [...hostOf].find(([, i]) => i === 1)![0];
    await ecs.send(new UpdateContainerInstancesStateCommand({ cluster: CLUSTER, containerInstances: [host1], status: 'DRAINING' }));
    await waitUntil(async () => {
      const per = await runningPerHost('tb');
      return per[0] === 0 && per[1]! + per[2]! === 3;
    }, 'host 1 emptied and its task on hosts 2-3', { timeoutMs: 90_000, describe: () => runningPerHost('tb') });
    await ecs.send(new UpdateContainerInstancesStateCommand({ cluster: CLUSTER, containerInstances: [host1], status: 'ACTIVE' }));

    // Losing host 3's agent (SIGKILL): its containers keep running there, but the instance is
    // disconnected, so the service replaces them on the hosts it can reach.
    const onHost3Before = (await runningPerHost('tb'))[2]!;
    assert.ok(onHost3Before >= 1, 'host 3 runs a service task before it is lost');
    const lost = agents[2]!;
    await lost.kill9();
    await waitUntil(async () => {
      const svc = (await ecs.send(new DescribeServicesCommand({ cluster: CLUSTER, services: ['web'] }))).services![0]!;
      const per = await runningPerHost('tb');
      return svc.runningCount === 3 && per[0]! + per[1]! === 3;
    }, 'three running on hosts 1-2 after host 3 was lost', { timeoutMs: 90_000, describe: () => runningPerHost('tb') });

    // Host 3's agent comes back with its identity (same data dir): it learns its tasks are no
    // longer wanted and stops their containers.
    agents[2] = await startAgent(3, lost.dataDir);
    await waitUntil(async () => (await runningPerHost('tb'))[2] === 0, 'host 3 stops the tasks that were replaced', { timeoutMs: 90_000, describe: () => runningPerHost('tb') });

    await ecs.send(new UpdateServiceCommand({ cluster: CLUSTER, service: 'web', desiredCount: 0 }));
    await ecs.send(new DeleteServiceCommand({ cluster: CLUSTER, service: 'web' }));
    await waitUntil(async () => (await runningPerHost('tb')).join() === '0,0,0', 'no service task left', { timeoutMs: 60_000 });
  });
});
