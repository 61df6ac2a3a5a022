/**
 * Agent faults end to end: real `wharf server` and `wharf agent` child processes on this host's
 * Docker Engine, checked through the ECS API and against what Docker really runs.
 *
 * - kill -9 the agent while tasks run, restart it: it re-adopts its containers by label, reports
 *   what changed while it was away (a container that exited meanwhile makes its task STOPPED
 *   with the exit code) and never starts a duplicate.
 * - stop the agent (SIGSTOP) for longer than the heartbeat: the instance shows
 *   agentConnected=false, nothing new is placed there, its tasks keep running; after SIGCONT it
 *   reconnects and everything is consistent.
 * - restart the agent (kill -9, then a clean stop) within the agent timeout: its service's tasks
 *   stay as they are (same tasks, none stopped or replaced), as on ECS an agent restart is routine.
 *
 * Run: npx tsx --test test/e2e/faults-agent.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeContainerInstancesCommand,
  DescribeServicesCommand,
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
  sleep,
  spawnAgent,
  spawnServer,
  waitUntil,
  type AgentProcess,
  type ServerProcess,
} from './helpers/processes';

const skip = dockerSkipReason();

describe('agent faults', { skip, timeout: 300_000 }, () => {
  let srv: ServerProcess;
  let ecs: ECSClient;
  const clusters: string[] = [];
  const dirs: string[] = [];

  before(async () => {
    srv = await spawnServer({ agentTimeoutMs: 3000 });
    ecs = srv.ecs();
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'faults-sleeper',
        containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: ['sleep', '3600'] }],
      }),
    );
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'faults-exit-later',
        containerDefinitions: [
          { name: 'app', image: 'wharf-test/exit', memory: 32, essential: true, environment: [{ name: 'EXIT_CODE', value: '5' }, { name: 'SLEEP_SECONDS', value: '4' }] },
        ],
      }),
    );
  });
  after(async () => {
    await killAllSpawned();
    for (const c of clusters) await removeClusterContainers(c);
    for (const d of [srv?.dataDir, ...dirs]) if (d) removeDir(d);
  });

  async function cluster(name: string): Promise<string> {
    const arn = (await ecs.send(new CreateClusterCommand({ clusterName: `${name}-${process.pid}` }))).cluster!.clusterArn!;
    clusters.push(arn);
    return `${name}-${process.pid}`;
  }
  const agent = async (c: string, dataDir?: string) => {
    const a = await spawnAgent({ server: srv, cluster: c, dataDir, extraArgs: ['--image-pull-behavior', 'prefer-cached'] });
    if (!dataDir) dirs.push(a.dataDir);
    return a;
  };
  const describeTasks = async (c: string, arns: string[]): Promise<Task[]> => (await ecs.send(new DescribeTasksCommand({ cluster: c, tasks: arns }))).tasks!;
  const instance = async (c: string, arn: string) => (await ecs.send(new DescribeContainerInstancesCommand({ cluster: c, containerInstances: [arn] }))).containerInstances![0]!;
  const runTask = async (c: string, family: string, count = 1) => {
    const out = await ecs.send(new RunTaskCommand({ cluster: c, taskDefinition: family, count }));
    assert.equal(out.failures?.length ?? 0, 0, JSON.stringify(out.failures));
    return out.tasks!.map((t) => t.taskArn!);
  };
  const waitStatus = (c: string, arns: string[], status: string) =>
    waitUntil(async () => {
      const ts = await describeTasks(c, arns);
      return ts.every((t) => t.lastStatus === status) ? ts : undefined;
    }, `tasks ${status}`, { timeoutMs: 60_000, intervalMs: 100, describe: () => describeTasks(c, arns) });

  test('kill -9 of the agent: restarted, it adopts its containers, reports the exit it missed, starts no duplicate', async () => {
    const c = await cluster('faults-kill9');
    const clusterArn = clusters[clusters.length - 1]!;
    let a: AgentProcess = await agent(c);
    const [sleeperA, sleeperB] = await runTask(c, 'faults-sleeper', 2);
    const [exiter] = await runTask(c, 'faults-exit-later');
    const before = await waitStatus(c, [sleeperA!, sleeperB!, exiter!], 'RUNNING');
    const ids = new Map(before.map((t) => [t.taskArn!, t.containers![0]!.runtimeId!]));

    await a.kill9();
    // While it is gone the exiter's container ends on its own (exit 5 after 4 s).
    await waitUntil(async () => !(await listClusterContainers(clusterArn)).some((x) => x.taskArn === exiter), 'the exiter container to exit', { timeoutMs: 30_000 });
    // The API has not heard of it yet.
    assert.equal((await describeTasks(c, [exiter!]))[0]!.lastStatus, 'RUNNING');

    a = await agent(c, a.dataDir);
    const [stopped] = await waitStatus(c, [exiter!], 'STOPPED');
    assert.equal(stopped!.containers![0]!.exitCode, 5);
    assert.equal(stopped!.stopCode, 'EssentialContainerExited');
    assert.equal(stopped!.stoppedReason, 'Essential container in task exited');
    // The sleepers were adopted: same containers, still RUNNING, nothing duplicated.
    await sleep(1500);
    const after = await describeTasks(c, [sleeperA!, sleeperB!]);
    for (const t of after) {
      assert.equal(t.lastStatus, 'RUNNING');
      assert.equal(t.containers![0]!.runtimeId, ids.get(t.taskArn!));
    }
    const all = await listClusterContainers(clusterArn, true);
    for (const arn of [sleeperA!, sleeperB!, exiter!]) assert.equal(all.filter((x) => x.taskArn === arn).length, 1, `one container for ${arn}`);
    assert.equal(all.length, 3);
    // The instance is connected again and its resources account for the two sleepers only.
    const inst = await instance(c, a.instanceArns[0]!);
    assert.equal(inst.agentConnected, true);
    assert.equal(inst.runningTasksCount, 2);
    await a.stop();
  });

  test('agent away longer than the heartbeat timeout: agentConnected=false, no placement, tasks keep running; consistent after', async () => {
    const c = await cluster('faults-away');
    const clusterArn = clusters[clusters.length - 1]!;
    const a = await agent(c);
    const instArn = a.instanceArns[0]!;
    const [t1] = await runTask(c, 'faults-sleeper');
    const [running] = await waitStatus(c, [t1!], 'RUNNING');
    const dockerId = running!.containers![0]!.runtimeId!;

    // A stopped process keeps its socket open but answers no ping: only the heartbeat notices.
    process.kill(a.pid, 'SIGSTOP');
    try {
      await waitUntil(async () => (await instance(c, instArn)).agentConnected === false, 'agentConnected=false', { timeoutMs: 60_000, intervalMs: 250 });
      const refused = await ecs.send(new RunTaskCommand({ cluster: c, taskDefinition: 'faults-sleeper' }));
      assert.equal(refused.tasks!.length, 0);
      assert.equal(refused.failures![0]!.reason, 'AGENT');
      // The task keeps running in Docker and in the API.
      assert.ok((await listClusterContainers(clusterArn)).some((x) => x.id === dockerId && x.running));
      assert.equal((await describeTasks(c, [t1!]))[0]!.lastStatus, 'RUNNING');
    } finally {
      process.kill(a.pid, 'SIGCONT');
    }
    await waitUntil(async () => (await instance(c, instArn)).agentConnected === true, 'agentConnected=true again', { timeoutMs: 60_000, intervalMs: 250 });
    const [t2] = await runTask(c, 'faults-sleeper');
    const both = await waitStatus(c, [t1!, t2!], 'RUNNING');
    assert.equal(both[0]!.containers![0]!.runtimeId, dockerId, 'the first task kept its container');
    const all = await listClusterContainers(clusterArn, true);
    assert.equal(all.length, 2);
    assert.equal((await instance(c, instArn)).runningTasksCount, 2);
    await a.stop();
  });

  test("agent restarted within the agent timeout (kill -9, then a clean stop): its service's tasks are neither stopped nor replaced", async () => {
    // A timeout an agent restart fits in on a busy machine (the suite's server has 3 s).
    const own = await spawnServer({ agentTimeoutMs: 20_000, healthyAfterRunningMs: 500 });
    dirs.push(own.dataDir);
    const e = own.ecs();
    const c = `faults-restart-${process.pid}`;
    clusters.push((await e.send(new CreateClusterCommand({ clusterName: c }))).cluster!.clusterArn!);
    await e.send(
      new RegisterTaskDefinitionCommand({
        family: 'faults-restart',
        containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: ['sleep', '3600'] }],
      }),
    );
    const start = (dataDir?: string) => spawnAgent({ server: own, cluster: c, dataDir, extraArgs: ['--image-pull-behavior', 'prefer-cached'] });
    let a = await start();
    dirs.push(a.dataDir);
    const instArn = a.instanceArns[0]!;
    await e.send(new CreateServiceCommand({ cluster: c, serviceName: 'web', taskDefinition: 'faults-restart', desiredCount: 2 }));
    const service = async () => (await e.send(new DescribeServicesCommand({ cluster: c, services: ['web'] }))).services![0]!;
    const tasks = async (desiredStatus: 'RUNNING' | 'STOPPED') => ((await e.send(new ListTasksCommand({ cluster: c, serviceName: 'web', desiredStatus }))).taskArns ?? []).sort();
    await waitUntil(async () => (await service()).runningCount === 2, 'two service tasks running', { timeoutMs: 60_000, intervalMs: 200 });
    const before = await tasks('RUNNING');
    assert.equal(before.length, 2);

    await a.kill9();
    a = await start(a.dataDir);
    await a.stop();
    a = await start(a.dataDir);
    assert.equal(a.instanceArns[0], instArn, 'the same container instance');
    // A replacement would follow the close within a second; give it time to show.
    await sleep(2000);
    const ci = (await e.send(new DescribeContainerInstancesCommand({ cluster: c, containerInstances: [instArn] }))).containerInstances![0]!;
    assert.equal(ci.agentConnected, true);
    assert.deepEqual(await tasks('RUNNING'), before, 'the same tasks run');
    assert.deepEqual(await tasks('STOPPED'), [], 'no task was stopped');
    const s = await service();
    assert.equal(s.runningCount, 2);
    assert.ok(!s.events!.some((ev) => /has stopped/.test(ev.message!)), JSON.stringify(s.events!.map((ev) => ev.message)));
    const running = (await e.send(new DescribeTasksCommand({ cluster: c, tasks: before }))).tasks!.map((t) => t.lastStatus);
    assert.deepEqual(running, ['RUNNING', 'RUNNING']);
    await a.stop();
    await own.stop();
  });
});
