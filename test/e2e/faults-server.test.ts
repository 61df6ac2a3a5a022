/**
 * Control-plane restart end to end: kill -9 `wharf server` while an agent runs tasks, start it
 * again on the same data dir and port. No task is lost or duplicated: every task is still
 * listed, running ones keep their containers, a container that exited while the server was
 * down is reported as STOPPED with its exit code once the agent gets through, and a RunTask
 * retried with its clientToken answers with the task it created before the crash.
 *
 * Run: npx tsx --test test/e2e/faults-server.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand,
  DescribeContainerInstancesCommand,
  DescribeTasksCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  type ECSClient,
  type Task,
} from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import {
  killAllSpawned,
  listClusterContainers,
  removeClusterContainers,
  removeDir,
  spawnAgent,
  spawnServer,
  waitUntil,
  type AgentProcess,
  type ServerProcess,
} from './helpers/processes';

const skip = dockerSkipReason();
const CLUSTER = `faults-server-${process.pid}`;

describe('control plane restart', { skip, timeout: 300_000 }, () => {
  let srv: ServerProcess;
  let agent: AgentProcess;
  let clusterArn = '';

  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    if (agent) removeDir(agent.dataDir);
  });

  before(async () => {
    srv = await spawnServer({ agentTimeoutMs: 5000, sync: 'full' });
    const ecs = srv.ecs();
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }))).cluster!.clusterArn!;
    agent = await spawnAgent({ server: srv, cluster: CLUSTER, extraArgs: ['--image-pull-behavior', 'prefer-cached'] });
  });

  const describeTasks = async (ecs: ECSClient, arns: string[]): Promise<Task[]> => (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: arns }))).tasks!;

  test('kill -9 of the server loses and duplicates nothing', async () => {
    let ecs = srv.ecs();
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'fs-sleeper',
        containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: ['sleep', '3600'] }],
      }),
    );
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'fs-exit-later',
        containerDefinitions: [{ name: 'app', image: 'wharf-test/exit', memory: 32, essential: true, environment: [{ name: 'EXIT_CODE', value: '9' }, { name: 'SLEEP_SECONDS', value: '4' }] }],
      }),
    );
    const runInput = { cluster: CLUSTER, taskDefinition: 'fs-sleeper', count: 3, clientToken: `fs-${process.pid}` };
    const sleepers = (await ecs.send(new RunTaskCommand(runInput))).tasks!.map((t) => t.taskArn!);
    const exiter = (await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'fs-exit-later' }))).tasks![0]!.taskArn!;
    const all = [...sleepers, exiter];
    const running = await waitUntil(async () => {
      const ts = await describeTasks(ecs, all);
      return ts.every((t) => t.lastStatus === 'RUNNING') ? ts : undefined;
    }, 'all RUNNING', { timeoutMs: 60_000, intervalMs: 100 });
    const ids = new Map(running.map((t) => [t.taskArn!, t.containers![0]!.runtimeId!]));

    await srv.kill9();
    // The exiter ends while the control plane is down.
    await waitUntil(async () => !(await listClusterContainers(clusterArn)).some((c) => c.taskArn === exiter), 'the exiter to exit', { timeoutMs: 30_000 });
    srv = await spawnServer({ dataDir: srv.dataDir, port: srv.port, agentTimeoutMs: 5000, sync: 'full' });
    ecs = srv.ecs();

    // The agent reconnects on its own and delivers the report it held.
    const instArn = agent.instanceArns[0]!;
    await waitUntil(async () => {
      const i = (await ecs.send(new DescribeContainerInstancesCommand({ cluster: CLUSTER, containerInstances: [instArn] }))).containerInstances![0]!;
      return i.agentConnected;
    }, 'the agent to reconnect', { timeoutMs: 60_000, intervalMs: 250 });
    const [stopped] = await waitUntil(async () => {
      const ts = await describeTasks(ecs, [exiter]);
      return ts[0]!.lastStatus === 'STOPPED' ? ts : undefined;
    }, 'the exiter STOPPED', { timeoutMs: 60_000, intervalMs: 200 });
    assert.equal(stopped!.containers![0]!.exitCode, 9);
    assert.equal(stopped!.stoppedReason, 'Essential container in task exited');

    // Every task is still there; the sleepers run in the same containers.
    const listed = (await ecs.send(new ListTasksCommand({ cluster: CLUSTER }))).taskArns!.sort();
    assert.deepEqual(listed, [...sleepers].sort());
    for (const t of await describeTasks(ecs, sleepers)) {
      assert.equal(t.lastStatus, 'RUNNING');
      assert.equal(t.containers![0]!.runtimeId, ids.get(t.taskArn!));
    }
    // The retried RunTask answers with the same tasks and starts nothing.
    const again = (await ecs.send(new RunTaskCommand(runInput))).tasks!.map((t) => t.taskArn!);
    assert.deepEqual(again.sort(), [...sleepers].sort());
    const containers = await listClusterContainers(clusterArn, true);
    for (const arn of all) assert.equal(containers.filter((c) => c.taskArn === arn).length, 1, `one container for ${arn}`);
    assert.equal(containers.length, 4);

    // And the restarted control plane places new work.
    const fresh = (await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'fs-sleeper' }))).tasks![0]!.taskArn!;
    await waitUntil(async () => (await describeTasks(ecs, [fresh]))[0]!.lastStatus === 'RUNNING', 'a new task RUNNING', { timeoutMs: 60_000, intervalMs: 100 });
  });
});
