/**
 * `wharf agent` registering a real host, as a user starts it (child process, every flag), seen
 * through DescribeContainerInstances / ListContainerInstances, and the instance-level operations
 * that affect tasks: draining (UpdateContainerInstancesState) and forced deregistration.
 *
 * Run: npx tsx --test test/e2e/tasks-agent-registration.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand,
  DeregisterContainerInstanceCommand,
  DescribeContainerInstancesCommand,
  DescribeTasksCommand,
  ListContainerInstancesCommand,
  ListTasksCommand,
  StopTaskCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  UpdateContainerInstancesStateCommand,
  type ContainerInstance,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { killAllSpawned, removeClusterContainers, removeDir, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';

const skip = dockerSkipReason();
const CLUSTER = `tasks-reg-agent-${process.pid}`;

describe('wharf agent registration', { skip, timeout: 240_000 }, () => {
  let srv: ServerProcess;
  let ecs: ECSClient;
  let agent: AgentProcess;
  let clusterArn = '';

  const flags = ['--availability-zone', 'us-east-1c', '--instance-type', 'm5.large', '--attribute', 'stack=blue', '--attribute', 'rack=r1', '--resources', 'cpu=2048,memory=1024', '--image-pull-behavior', 'prefer-cached'];
  const describeInstance = async (arn: string): Promise<ContainerInstance> =>
    (await ecs.send(new DescribeContainerInstancesCommand({ cluster: CLUSTER, containerInstances: [arn] }))).containerInstances![0]!;

  before(async () => {
    srv = await spawnServer({ agentTimeoutMs: 3000 });
    ecs = srv.ecs();
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }))).cluster!.clusterArn!;
    agent = await spawnAgent({ server: srv, cluster: CLUSTER, extraArgs: flags });
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'reg-sleeper',
        containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', memory: 64, cpu: 64, essential: true, stopTimeout: 1, command: ['sleep', '3600'] }],
      }),
    );
  });
  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    if (agent) removeDir(agent.dataDir);
  });

  test('the host registers with its flags, reserved ports, built-in attributes and version info', async () => {
    const arn = agent.instanceArns[0]!;
    assert.deepEqual((await ecs.send(new ListContainerInstancesCommand({ cluster: CLUSTER }))).containerInstanceArns, [arn]);
    const i = await describeInstance(arn);
    assert.equal(i.status, 'ACTIVE');
    assert.equal(i.agentConnected, true);
    const res = (list: typeof i.registeredResources, name: string) => list!.find((r) => r.name === name)!;
    assert.equal(res(i.registeredResources, 'CPU').integerValue, 2048);
    assert.equal(res(i.registeredResources, 'MEMORY').integerValue, 1024);
    assert.deepEqual([...res(i.registeredResources, 'PORTS').stringSetValue!].sort(), ['22', '2375', '2376', '51678', '51679']);
    assert.equal(res(i.remainingResources, 'MEMORY').integerValue, 1024);
    const attrs = new Map(i.attributes!.map((a) => [a.name!, a.value]));
    assert.equal(attrs.get('ecs.availability-zone'), 'us-east-1c');
    assert.equal(attrs.get('ecs.instance-type'), 'm5.large');
    assert.equal(attrs.get('ecs.os-type'), 'linux');
    assert.ok(attrs.has('ecs.cpu-architecture'));
    assert.equal(attrs.get('stack'), 'blue');
    assert.equal(attrs.get('rack'), 'r1');
    assert.ok(attrs.has('com.amazonaws.ecs.capability.logging-driver.json-file'));
    assert.ok(attrs.has('ecs.capability.task-eni'));
    assert.ok(i.versionInfo?.agentVersion);
    assert.match(i.versionInfo?.dockerVersion ?? '', /^DockerVersion: \d+/);
    assert.equal(i.runningTasksCount, 0);
    assert.equal(i.pendingTasksCount, 0);
    assert.ok(i.registeredAt instanceof Date);
  });

  test('reserved ports cannot be taken by a task', async () => {
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'reg-port22',
        networkMode: 'host',
        containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, command: ['sleep', '3600'], portMappings: [{ containerPort: 22, hostPort: 22 }] }],
      }),
    );
    const out = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'reg-port22' }));
    assert.equal(out.tasks!.length, 0);
    assert.equal(out.failures![0]!.reason, 'RESOURCE:PORTS');
  });

  test('the offered resources are what placement uses; a restart with the same --data-dir keeps the identity', async () => {
    // 1024 MiB offered, 64 MiB each: 16 fit, the 17th does not.
    const run = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'reg-sleeper', count: 10 }));
    const run2 = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'reg-sleeper', count: 7 }));
    assert.equal(run.tasks!.length + run2.tasks!.length, 16);
    assert.equal(run2.failures![0]!.reason, 'RESOURCE:MEMORY');
    const arns = [...run.tasks!, ...run2.tasks!].map((t) => t.taskArn!);
    await waitUntil(async () => {
      const ts = (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: arns }))).tasks!;
      return ts.every((t) => t.lastStatus === 'RUNNING');
    }, 'the 16 tasks RUNNING', { timeoutMs: 90_000, intervalMs: 200 });
    const i = await describeInstance(agent.instanceArns[0]!);
    assert.equal(i.runningTasksCount, 16);
    assert.equal(i.remainingResources!.find((r) => r.name === 'MEMORY')!.integerValue, 0);
    assert.equal(i.remainingResources!.find((r) => r.name === 'CPU')!.integerValue, 2048 - 16 * 64);

    await agent.stop();
    const again = await spawnAgent({ server: srv, cluster: CLUSTER, dataDir: agent.dataDir, extraArgs: flags });
    assert.deepEqual(again.instanceArns, agent.instanceArns);
    agent = again;
    assert.equal((await ecs.send(new ListContainerInstancesCommand({ cluster: CLUSTER }))).containerInstanceArns!.length, 1);
  });

  test('an agent started before its server waits for it, then registers', async () => {
    // A server of its own, stopped: its port and join token are what the agent is given.
    const late = await spawnServer({ agentTimeoutMs: 3000 });
    const port = Number(new URL(late.endpoint).port);
    await late.ecs().send(new CreateClusterCommand({ clusterName: `${CLUSTER}-late` }));
    await late.stop();
    const pending = spawnAgent({ server: late, cluster: `${CLUSTER}-late`, startTimeoutMs: 90_000 });
    // Several failed attempts (backoff from 500 ms): the agent must still be there, retrying.
    await new Promise((r) => setTimeout(r, 4000));
    const again = await spawnServer({ agentTimeoutMs: 3000, port, dataDir: late.dataDir });
    const a = await pending;
    assert.equal(a.exited, false);
    const listed = await again.ecs().send(new ListContainerInstancesCommand({ cluster: `${CLUSTER}-late` }));
    assert.deepEqual(listed.containerInstanceArns, a.instanceArns);
    await a.stop();
    await again.stop();
    removeDir(a.dataDir);
    removeDir(again.dataDir);
  });

  test('DRAINING takes no new tasks; a forced deregistration leaves the instance INACTIVE', async () => {
    const arn = agent.instanceArns[0]!;
    await waitUntil(async () => (await describeInstance(arn)).agentConnected === true, 'reconnected');
    const d = await ecs.send(new UpdateContainerInstancesStateCommand({ cluster: CLUSTER, containerInstances: [arn], status: 'DRAINING' }));
    assert.equal(d.containerInstances![0]!.status, 'DRAINING');
    // Stop a task so room exists: the draining instance still takes nothing new.
    const some = (await ecs.send(new ListTasksCommand({ cluster: CLUSTER }))).taskArns![0]!;
    await ecs.send(new StopTaskCommand({ cluster: CLUSTER, task: some }));
    await waitUntil(async () => (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: [some] }))).tasks![0]!.lastStatus === 'STOPPED', 'a task STOPPED');
    // As in ECS: a cluster with no ACTIVE instance refuses RunTask outright.
    const none = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'reg-sleeper' })).then(() => undefined, (e: Error) => e);
    assert.equal(none?.name, 'InvalidParameterException');
    assert.match(none!.message, /No Container Instances were found/);
    await ecs.send(new UpdateContainerInstancesStateCommand({ cluster: CLUSTER, containerInstances: [arn], status: 'ACTIVE' }));
    // Not forced, with tasks on it: refused.
    const refused = await ecs.send(new DeregisterContainerInstanceCommand({ cluster: CLUSTER, containerInstance: arn })).then(() => undefined, (e: Error) => e);
    assert.ok(refused, 'deregistering an instance with tasks needs force');
    const out = await ecs.send(new DeregisterContainerInstanceCommand({ cluster: CLUSTER, containerInstance: arn, force: true }));
    assert.equal(out.containerInstance!.status, 'INACTIVE');
    assert.deepEqual((await ecs.send(new ListContainerInstancesCommand({ cluster: CLUSTER }))).containerInstanceArns, []);
  });
});
