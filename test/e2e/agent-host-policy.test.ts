/**
 * Host policy (issue 12 part 4), attacked from the wrong side with a real Docker Engine:
 * `wharf agent --disable-privileged --allowed-host-paths DIR` refuses what it forbids at
 * placement (the attributes it withholds, which PutAttributes cannot re-add) and, where
 * placement cannot see (a host path), on the agent itself: the task goes
 * STOPPED with the reason and Docker never has a container of it. A second, open host takes the
 * tasks the first refuses; restarted with a policy, it withdraws what it advertised.
 *
 * Run: node --import tsx --test test/e2e/agent-host-policy.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateClusterCommand,
  DescribeContainerInstancesCommand,
  DescribeTasksCommand,
  PutAttributesCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StartTaskCommand,
  StopTaskCommand,
  type ContainerDefinition,
  type ECSClient,
  type Task,
  type Volume,
} from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { sdkError } from './helpers/wharf-server';
import { killAllSpawned, listClusterContainers, removeClusterContainers, removeDir, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';

const skip = dockerSkipReason();
const CLUSTER = `host-policy-${process.pid}`;
const PRIVILEGED = 'com.amazonaws.ecs.capability.privileged-container';

describe('wharf agent host policy', { skip, timeout: 300_000 }, () => {
  let srv: ServerProcess;
  let ecs: ECSClient;
  let strict: AgentProcess;
  let open: AgentProcess | undefined;
  let clusterArn = '';
  let hostDir = '';
  let allowed = '';
  let outside = '';

  const sleeper = (o: Partial<ContainerDefinition> = {}): ContainerDefinition => ({
    name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: ['sleep', '3600'], ...o,
  });
  const register = async (family: string, c: Partial<ContainerDefinition>, volumes?: Volume[]) =>
    (await ecs.send(new RegisterTaskDefinitionCommand({ family, containerDefinitions: [sleeper(c)], volumes }))).taskDefinition!.taskDefinitionArn!;
  const describe1 = async (arn: string): Promise<Task> => (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: [arn] }))).tasks![0]!;
  const attributesOf = async (arn: string) =>
    new Map(((await ecs.send(new DescribeContainerInstancesCommand({ cluster: CLUSTER, containerInstances: [arn] }))).containerInstances![0]!.attributes ?? []).map((a) => [a.name!, a.value]));
  const stopped = (arn: string) => waitUntil(async () => { const t = await describe1(arn); return t.lastStatus === 'STOPPED' && t; }, `task ${arn} STOPPED`, { timeoutMs: 60_000, intervalMs: 200 });
  const containersOf = async (taskArn: string) => (await listClusterContainers(clusterArn, true)).filter((c) => c.taskArn === taskArn);

  before(async () => {
    hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-host-policy-'));
    allowed = path.join(hostDir, 'allowed');
    outside = path.join(hostDir, 'outside');
    fs.mkdirSync(allowed);
    fs.mkdirSync(outside);
    srv = await spawnServer({});
    ecs = srv.ecs();
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }))).cluster!.clusterArn!;
    strict = await spawnAgent({ server: srv, cluster: CLUSTER, extraArgs: ['--disable-privileged', '--allowed-host-paths', allowed] });
    await register('hp-privileged', { privileged: true });
  });
  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    if (strict) removeDir(strict.dataDir);
    if (open) removeDir(open.dataDir);
    if (hostDir) removeDir(hostDir);
  });

  test('the strict host withholds the privileged attribute and shows its allowed host paths', async () => {
    const attrs = await attributesOf(strict.instanceArns[0]!);
    assert.equal(attrs.has(PRIVILEGED), false);
    assert.equal(attrs.get('wharf.allowed-host-paths'), allowed);
    assert.ok(attrs.has('wharf.capability.host-network'), 'host networking is not forbidden here');
    assert.ok(attrs.has('ecs.capability.task-eni'), 'the rest is advertised as before');
  });

  test('a privileged task is refused at placement (RunTask and StartTask) when no host allows it', async () => {
    const td = 'hp-privileged';
    const run = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: td }));
    assert.deepEqual(run.tasks, []);
    assert.equal(run.failures![0]!.reason, 'ATTRIBUTE');
    assert.equal(run.failures![0]!.arn, strict.instanceArns[0]);
    const start = await ecs.send(new StartTaskCommand({ cluster: CLUSTER, taskDefinition: td, containerInstances: [strict.instanceArns[0]!] }));
    assert.deepEqual(start.tasks, []);
    assert.equal(start.failures![0]!.reason, 'ATTRIBUTE');
  });

  test('PutAttributes cannot re-add the privileged attribute to fool placement', async () => {
    // The agent's own check (TaskStarter, unit task-starter) would still stop such a task; the
    // bind mount case below shows that check end to end.
    const target = strict.instanceArns[0]!;
    const e = await sdkError(ecs.send(new PutAttributesCommand({ cluster: CLUSTER, attributes: [{ name: PRIVILEGED, targetId: target }] })));
    assert.equal(e.name, 'InvalidParameterException');
    assert.equal(e.message, `Attribute '${PRIVILEGED}' is set by the container agent and cannot be changed with PutAttributes: names beginning with 'ecs.' or 'com.amazonaws.ecs.' are reserved.`);
    const run = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'hp-privileged' }));
    assert.equal(run.failures![0]!.reason, 'ATTRIBUTE');
  });

  test('a bind mount outside the allowed host paths is refused on the agent; one inside runs', async () => {
    // `..` cannot climb out of the allowed directory.
    const sneaky = `${allowed}/../outside`;
    const tdOut = await register('hp-outside', { mountPoints: [{ sourceVolume: 'v', containerPath: '/v' }] }, [{ name: 'v', host: { sourcePath: sneaky } }]);
    const run = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: tdOut }));
    assert.deepEqual(run.failures, [], 'no attribute can say which paths: placement lets it through');
    const arn = run.tasks![0]!.taskArn!;
    const t = await stopped(arn);
    assert.equal(t.stopCode, 'TaskFailedToStart');
    assert.equal(
      t.stoppedReason,
      `CannotStartContainerError: container app mounts host path ${sneaky} (volume v), which is outside this container instance's allowed host paths ${allowed} (wharf agent --allowed-host-paths)`,
    );
    assert.deepEqual(await containersOf(arn), [], 'docker ps -a has no container of the task');

    const tdIn = await register('hp-inside', { mountPoints: [{ sourceVolume: 'v', containerPath: '/v' }], command: ['sh', '-c', 'echo here > /v/proof && sleep 3600'] }, [
      { name: 'v', host: { sourcePath: path.join(allowed, 'app') } },
    ]);
    const ok = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: tdIn }));
    const okArn = ok.tasks![0]!.taskArn!;
    await waitUntil(async () => (await describe1(okArn)).lastStatus === 'RUNNING', 'the task mounting an allowed path RUNNING', { timeoutMs: 60_000, intervalMs: 200 });
    await waitUntil(() => fs.existsSync(path.join(allowed, 'app', 'proof')), 'the container wrote through the bind mount', { timeoutMs: 10_000 });
    await ecs.send(new StopTaskCommand({ cluster: CLUSTER, task: okArn }));
    await stopped(okArn);
  });

  test('with a second, open host the privileged tasks land there, and it creates them privileged', async () => {
    open = await spawnAgent({ server: srv, cluster: CLUSTER });
    const openArn = open.instanceArns[0]!;
    assert.ok((await attributesOf(openArn)).has(PRIVILEGED));
    const run = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'hp-privileged', count: 3 }));
    assert.deepEqual(run.failures, []);
    assert.deepEqual(new Set(run.tasks!.map((t) => t.containerInstanceArn)), new Set([openArn]), 'none on the host that forbids it');
    const arns = run.tasks!.map((t) => t.taskArn!);
    // Whether a privileged container then runs is the engine's business: a Docker Engine that is
    // itself confined (as in some CI sandboxes) fails its start ("unable to apply caps"). What
    // the open host must do is create it, privileged, and not refuse it by policy.
    const settled = await waitUntil(
      async () => {
        const ts = (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: arns }))).tasks!;
        return ts.every((t) => t.lastStatus === 'RUNNING' || t.lastStatus === 'STOPPED') && ts;
      },
      'the 3 tasks RUNNING or STOPPED',
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    for (const t of settled) assert.doesNotMatch(t.stoppedReason ?? '', /wharf agent --disable-privileged/);
    for (const arn of arns) {
      const [c] = await containersOf(arn);
      assert.ok(c, `a container of ${arn} exists`);
      assert.equal(execFileSync('docker', ['inspect', '-f', '{{.HostConfig.Privileged}}', c.id]).toString().trim(), 'true');
    }
    for (const arn of arns) await ecs.send(new StopTaskCommand({ cluster: CLUSTER, task: arn }));
    for (const arn of arns) await stopped(arn);
  });

  test('the open host restarted with a policy withdraws what it no longer allows', async () => {
    const arn = open!.instanceArns[0]!;
    await open!.stop();
    open = await spawnAgent({ server: srv, cluster: CLUSTER, dataDir: open!.dataDir, extraArgs: ['--disallow-host-network'], env: { ECS_DISABLE_PRIVILEGED: 'true' } });
    assert.equal(open.instanceArns[0], arn, 'the same instance');
    const attrs = await attributesOf(arn);
    assert.equal(attrs.has(PRIVILEGED), false, 'ECS_DISABLE_PRIVILEGED');
    assert.equal(attrs.has('wharf.capability.host-network'), false, '--disallow-host-network');
    const run = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'hp-privileged' }));
    assert.deepEqual(run.tasks, []);
    assert.equal(run.failures![0]!.reason, 'ATTRIBUTE');
    const hostTd = (await ecs.send(new RegisterTaskDefinitionCommand({ family: 'hp-hostnet', networkMode: 'host', containerDefinitions: [sleeper()] }))).taskDefinition!;
    assert.ok(hostTd.requiresAttributes!.some((a) => a.name === 'wharf.capability.host-network'));
    const onStrict = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'hp-hostnet', count: 2 }));
    assert.deepEqual(new Set(onStrict.tasks!.map((t) => t.containerInstanceArn)), new Set([strict.instanceArns[0]]), 'host networking only where it is allowed');
    for (const t of onStrict.tasks!) await ecs.send(new StopTaskCommand({ cluster: CLUSTER, task: t.taskArn! }));
  });
});
