/**
 * A Fargate pool host's pause containers started ahead (agent/pause-pool.ts), on a real Docker
 * Engine: after a first task on the subnet the host keeps two ready; the next task starts in one
 * (its address is that pause container's, and its security group holds: a member of the allowed
 * group connects, an outsider never does); an agent killed and started again keeps the task
 * (same pause container, same address) and removes the ready ones of its previous run, and an
 * agent stopped normally removes its ready ones: nothing is left behind.
 *
 * Run: node --import tsx --test test/e2e/pause-pool.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { CreateClusterCommand, DescribeTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, type ECSClient, type Task } from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { killAllSpawned, removeClusterContainers, removeDir, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';
import { AWS_CLI, defaultSubnets, run } from './helpers/wharf-server';

const skip = dockerSkipReason();
const SERVE = 'while :; do echo hello-from-web | nc -l -p 8080; done';
const CLIENT = (ip: string) => `while :; do if r=$(nc -w 2 ${ip} 8080 </dev/null) && [ -n "$r" ]; then echo "GOT $r"; else echo FAIL; fi; sleep 1; done`;

const docker = (args: string[]) => execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inspect = (id: string) => JSON.parse(docker(['inspect', id]))[0];
const logs = (id: string) => docker(['logs', id]);

describe('pause containers started ahead on a Fargate pool host', { skip, timeout: 240_000 }, () => {
  let srv: ServerProcess;
  let ecs: ECSClient;
  let agent: AgentProcess;
  const cluster = `pool-${process.pid}`;
  let clusterArn = '';
  let subnet = '';
  let instanceArn = '';
  const groups: Record<string, string> = {};

  /** This host's pause containers that no task names (ready in its pool), running or not. */
  const poolContainers = () =>
    docker(['ps', '-a', '--no-trunc', '--filter', 'label=io.wharf.pause-pool', '--filter', `label=io.wharf.container-instance=${instanceArn}`, '--format', '{{.ID}}'])
      .split('\n')
      .filter(Boolean);
  /** Pause containers some container of this cluster names (taken by its tasks). */
  const taken = () =>
    new Set(
      docker(['ps', '-a', '--no-trunc', '--filter', `label=com.amazonaws.ecs.cluster=${clusterArn}`, '--format', '{{.Label "io.wharf.pause-id"}}'])
        .split('\n')
        .filter(Boolean),
    );
  const ready = () => poolContainers().filter((id) => !taken().has(id));

  const ec2 = async (args: string[]) => {
    const r = await run(AWS_CLI, ['ec2', ...args, '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env());
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  };
  const describeTask = async (arn: string): Promise<Task> => (await ecs.send(new DescribeTasksCommand({ cluster, tasks: [arn] }))).tasks![0]!;
  const runTask = async (family: string, securityGroups: string[]) => {
    const out = await ecs.send(new RunTaskCommand({ cluster, launchType: 'FARGATE', taskDefinition: family, networkConfiguration: { awsvpcConfiguration: { subnets: [subnet], securityGroups } } }));
    assert.deepEqual(out.failures, []);
    const arn = out.tasks![0]!.taskArn!;
    return waitUntil(async () => {
      const t = await describeTask(arn);
      if (t.lastStatus === 'STOPPED') throw new Error(`${arn} stopped: ${t.stoppedReason}`);
      return t.lastStatus === 'RUNNING' && t.attachments?.[0]?.status === 'ATTACHED' ? t : undefined;
    }, `${arn} RUNNING`, { timeoutMs: 90_000, intervalMs: 250 });
  };
  const ipOf = (t: Task) => t.attachments![0]!.details!.find((d) => d.name === 'privateIPv4Address')!.value!;
  const pauseOf = (t: Task) => inspect(t.containers![0]!.runtimeId!).HostConfig.NetworkMode.replace(/^container:/, '') as string;
  const register = (family: string, command: string) =>
    ecs.send(
      new RegisterTaskDefinitionCommand({
        family,
        networkMode: 'awsvpc',
        requiresCompatibilities: ['FARGATE'],
        cpu: '256',
        memory: '512',
        containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', essential: true, stopTimeout: 1, command: ['sh', '-c', command] }],
      }),
    );

  before(async () => {
    srv = await spawnServer();
    ecs = srv.ecs();
    agent = await spawnAgent({ server: srv, fargate: true, availabilityZone: 'us-east-1a', resources: 'cpu=4096,memory=8192' });
    instanceArn = agent.instanceArns[0]!;
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
    subnet = (await defaultSubnets(srv))['us-east-1a']!.id;
    await register('pool-web', SERVE);
    await register('pool-idle', 'sleep 3600');
    groups.web = (await ec2(['create-security-group', '--group-name', `pool-web-${process.pid}`, '--description', 'web'])).GroupId;
    groups.g = (await ec2(['create-security-group', '--group-name', `pool-g-${process.pid}`, '--description', 'clients'])).GroupId;
    groups.other = (await ec2(['create-security-group', '--group-name', `pool-o-${process.pid}`, '--description', 'others'])).GroupId;
    await ec2(['authorize-security-group-ingress', '--group-id', groups.web, '--ip-permissions', `IpProtocol=tcp,FromPort=8080,ToPort=8080,UserIdGroupPairs=[{GroupId=${groups.g}}]`]);
  });
  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    // Whatever a killed agent left in its pool.
    if (instanceArn) for (const id of poolContainers()) docker(['rm', '-f', id]);
    if (srv) removeDir(srv.dataDir);
    if (agent) removeDir(agent.dataDir);
  });

  test('after a first task the host keeps two ready; the next task starts in one, and its security group holds', async () => {
    assert.deepEqual(poolContainers(), [], 'none before a task showed the subnet');
    const first = await runTask('pool-idle', [groups.g!]);
    assert.ok(!poolContainers().includes(pauseOf(first)), 'the first task made its own');
    await waitUntil(() => (ready().length === 2 ? true : undefined), 'two ready', { timeoutMs: 60_000, intervalMs: 250, describe: () => ready() });
    for (const id of ready()) {
      const c = inspect(id);
      assert.equal(c.State.Running, true);
      assert.equal(c.Config.Labels['com.amazonaws.ecs.task-arn'], undefined, 'a ready one names no task');
    }

    const web = await runTask('pool-web', [groups.web!]);
    const pause = pauseOf(web);
    assert.ok(poolContainers().includes(pause), 'the task took a pause container from the pool');
    const pauseIp = Object.values(inspect(pause).NetworkSettings.Networks as Record<string, { IPAddress: string }>)[0]!.IPAddress;
    assert.equal(ipOf(web), pauseIp, "the task's address is its pause container's");
    assert.match(inspect(web.containers![0]!.runtimeId!).HostConfig.CgroupParent, /^\/wharf\/pool-[0-9a-f]+$/, "the task's containers share the pool's cgroup");
    await waitUntil(() => (ready().length === 2 ? true : undefined), 'refilled', { timeoutMs: 60_000, intervalMs: 250 });

    // The group admits tcp/8080 from G only, though the pause container was made before the task.
    await register('pool-probe', CLIENT(ipOf(web)));
    const member = await runTask('pool-probe', [groups.g!]);
    const outsider = await runTask('pool-probe', [groups.other!]);
    const memberId = member.containers![0]!.runtimeId!;
    const outsiderId = outsider.containers![0]!.runtimeId!;
    await waitUntil(() => (logs(memberId).includes('GOT hello-from-web') ? true : undefined), 'the member of G connects', { timeoutMs: 30_000, intervalMs: 500, describe: () => logs(memberId) });
    await waitUntil(() => (logs(outsiderId).split('\n').filter((l) => l === 'FAIL').length >= 3 ? true : undefined), 'the outsider tried', { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(!logs(outsiderId).includes('GOT'), `the outsider never connected: ${logs(outsiderId)}`);
  });

  test('an agent killed and started again keeps its tasks and removes its old ready ones; a normal stop removes the ready ones', async () => {
    const before = await runTask('pool-idle', [groups.g!]);
    const pause = pauseOf(before);
    await waitUntil(() => (ready().length === 2 ? true : undefined), 'two ready', { timeoutMs: 60_000, intervalMs: 250 });
    const old = ready();
    await agent.kill9();
    agent = await spawnAgent({ server: srv, fargate: true, dataDir: agent.dataDir, availabilityZone: 'us-east-1a', resources: 'cpu=4096,memory=8192' });
    await waitUntil(() => (old.every((id) => !poolContainers().includes(id)) ? true : undefined), 'the old ready ones removed', { timeoutMs: 60_000, intervalMs: 250, describe: () => ready() });
    // The task kept its pause container (adopted through its containers' labels) and its address.
    const still = await describeTask(before.taskArn!);
    assert.equal(still.lastStatus, 'RUNNING');
    assert.equal(inspect(pause).State.Running, true);
    assert.equal(ipOf(still), ipOf(before));

    // A task after the restart makes the subnet wanted again; then a normal stop removes the ready ones.
    await runTask('pool-idle', [groups.g!]);
    await waitUntil(() => (ready().length === 2 ? true : undefined), 'two ready again', { timeoutMs: 60_000, intervalMs: 250 });
    await agent.stop();
    assert.deepEqual(ready(), [], 'a stopped agent leaves no ready pause container');
    assert.equal(inspect(pause).State.Running, true, "a task's pause container stays with its task");
  });
});
