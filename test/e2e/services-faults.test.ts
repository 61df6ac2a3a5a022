/**
 * Service faults end to end, with real processes and real containers:
 *  (a) kill -9 of the control plane in the middle of a rolling deployment, restart on the same
 *      data dir: the deployment finishes inside its bounds, no task lost or duplicated, no orphan;
 *  (b) one of two agents killed past the agent timeout: its service tasks are replaced on the
 *      other instance; when it comes back the surplus stops and the service settles at exactly
 *      desiredCount containers.
 * What runs is counted with `docker ps` by the ECS labels, never only through the API.
 *
 * Run: npx tsx --test test/e2e/services-faults.test.ts
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  DescribeTasksCommand,
  ListContainerInstancesCommand,
  UpdateContainerInstancesStateCommand,
  DescribeContainerInstancesCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
  type ECSClient,
  type Service,
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
  type ClusterContainer,
  type ServerProcess,
} from './helpers/processes';

const skip = dockerSkipReason();
const dirs: string[] = [];
const clusters: string[] = [];

after(async () => {
  await killAllSpawned();
  for (const c of clusters) await removeClusterContainers(c);
  for (const d of dirs) removeDir(d);
});

async function describeService(ecs: ECSClient, cluster: string, name: string): Promise<Service> {
  return (await ecs.send(new DescribeServicesCommand({ cluster, services: [name] }))).services![0]!;
}

async function runningTaskArns(ecs: ECSClient, cluster: string, name: string): Promise<string[]> {
  const arns = (await ecs.send(new ListTasksCommand({ cluster, serviceName: name, desiredStatus: 'RUNNING' }))).taskArns ?? [];
  if (arns.length === 0) return [];
  const tasks = (await ecs.send(new DescribeTasksCommand({ cluster, tasks: arns }))).tasks ?? [];
  return tasks.filter((t) => t.lastStatus === 'RUNNING').map((t) => t.taskArn!);
}

async function sleeper(ecs: ECSClient, family: string, version: string): Promise<string> {
  const out = await ecs.send(
    new RegisterTaskDefinitionCommand({
      family,
      containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', essential: true, memory: 16, stopTimeout: 1, command: ['sleep', '3600'], environment: [{ name: 'V', value: version }] }],
    }),
  );
  return out.taskDefinition!.taskDefinitionArn!;
}

function assertOneContainerPerTask(cs: readonly ClusterContainer[]): void {
  const byTask = new Map<string, number>();
  for (const c of cs) byTask.set(c.taskArn, (byTask.get(c.taskArn) ?? 0) + 1);
  for (const [arn, n] of byTask) assert.equal(n, 1, `task ${arn} has ${n} running containers (a duplicate)`);
}

const settled = (s: Service, desired: number) =>
  s.deployments?.length === 1 && s.deployments[0]!.rolloutState === 'COMPLETED' && s.runningCount === desired && s.pendingCount === 0;

describe('service faults', { skip, timeout: 600_000 }, () => {
  test('kill -9 of the control plane during a rolling deployment (4 tasks, 50/200)', async () => {
    const cluster = `svc-crash-${process.pid}`;
    const desired = 4;
    const L = Math.ceil((desired * 50) / 100);
    const U = Math.floor((desired * 200) / 100);
    // Tasks count as healthy 4 s after RUNNING, so the rollout spans a few seconds to crash into.
    let srv: ServerProcess = await spawnServer({ healthyAfterRunningMs: 4000 });
    dirs.push(srv.dataDir);
    let ecs = srv.ecs();
    const clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
    clusters.push(clusterArn);
    const agent = await spawnAgent({ server: srv, cluster, extraArgs: ['--image-pull-behavior', 'prefer-cached'] });
    dirs.push(agent.dataDir);

    const td1 = await sleeper(ecs, 'crash-app', 'one');
    await ecs.send(
      new CreateServiceCommand({
        cluster,
        serviceName: 'app',
        taskDefinition: td1,
        desiredCount: desired,
        deploymentConfiguration: { minimumHealthyPercent: 50, maximumPercent: 200 },
      }),
    );
    await waitUntil(async () => settled(await describeService(ecs, cluster, 'app'), desired), 'the first deployment settled', { timeoutMs: 90_000 });
    const td2 = await sleeper(ecs, 'crash-app', 'two');
    const newRev = td2.split(':').pop()!;

    // Docker is watched throughout, across the crash, by a poller of its own.
    const violations: string[] = [];
    let polls = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const cs = await listClusterContainers(clusterArn);
        polls++;
        if (cs.length > U || cs.length < L) violations.push(`${cs.length} running containers (bounds ${L}..${U})`);
        const seen = new Set<string>();
        for (const c of cs) {
          if (seen.has(c.taskArn)) violations.push(`duplicate container for ${c.taskArn}`);
          seen.add(c.taskArn);
        }
        await sleep(100);
      }
    })();

    await ecs.send(new UpdateServiceCommand({ cluster, service: 'app', taskDefinition: td2 }));
    // Crash once the new deployment has started containers but has not finished.
    await waitUntil(async () => (await listClusterContainers(clusterArn)).some((c) => c.revision === newRev), 'a container of the new revision', { intervalMs: 50 });
    const midway = await listClusterContainers(clusterArn);
    assert.ok(midway.some((c) => c.revision !== newRev), 'the crash lands while old tasks still run');
    await srv.kill9();
    await sleep(2000);
    srv = await spawnServer({ dataDir: srv.dataDir, port: srv.port, healthyAfterRunningMs: 4000 });
    ecs = srv.ecs();

    let last: Service | undefined;
    await waitUntil(
      async () => {
        last = await describeService(ecs, cluster, 'app');
        const cs = await listClusterContainers(clusterArn);
        return settled(last, desired) && cs.length === desired && cs.every((c) => c.revision === newRev);
      },
      'the deployment to finish after the restart',
      { timeoutMs: 120_000, describe: async () => ({ deployments: last?.deployments?.map((d) => [d.status, d.rolloutState, d.runningCount]), containers: (await listClusterContainers(clusterArn)).map((c) => c.revision) }) },
    );
    watching = false;
    await watcher;
    assert.deepEqual(violations, [], 'bounds and uniqueness held at every poll');
    assert.ok(polls > 10, `docker was polled (${polls} times)`);

    const cs = await listClusterContainers(clusterArn);
    assert.equal(cs.length, desired, 'exactly desiredCount containers run');
    assertOneContainerPerTask(cs);
    const apiRunning = await runningTaskArns(ecs, cluster, 'app');
    assert.deepEqual(new Set(cs.map((c) => c.taskArn)), new Set(apiRunning), 'every container is a RUNNING task and every RUNNING task has its container: nothing lost, no orphan');
    const s = await describeService(ecs, cluster, 'app');
    assert.equal(s.deployments![0]!.taskDefinition, td2);
    assert.ok(s.events!.some((e) => /deployment completed\.$/.test(e.message!)));
    // Containers of old tasks are stopped, none still runs outside the API's knowledge.
    const exited = (await listClusterContainers(clusterArn, true)).filter((c) => !c.running);
    assert.ok(exited.every((c) => c.revision !== newRev || !apiRunning.includes(c.taskArn)));
    await srv.stop();
    await agent.kill9();
  });

  test('an agent gone past the timeout: tasks replaced on the other instance, surplus stopped when it returns', async () => {
    const cluster = `svc-agents-${process.pid}`;
    const desired = 4;
    const srv = await spawnServer({ healthyAfterRunningMs: 1000, agentTimeoutMs: 3000 });
    dirs.push(srv.dataDir);
    const ecs = srv.ecs();
    const clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
    clusters.push(clusterArn);
    const pull = ['--image-pull-behavior', 'prefer-cached'];
    const a = await spawnAgent({ server: srv, cluster, availabilityZone: 'us-east-1a', extraArgs: pull });
    let b = await spawnAgent({ server: srv, cluster, availabilityZone: 'us-east-1b', extraArgs: pull });
    dirs.push(a.dataDir, b.dataDir);
    const arnA = a.instanceArns[0]!;
    const arnB = b.instanceArns[0]!;
    assert.ok(arnA && arnB && arnA !== arnB, 'two container instances');
    const listed = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns ?? [];
    assert.deepEqual(new Set(listed), new Set([arnA, arnB]));

    const td = await sleeper(ecs, 'spread-app', 'one');
    await ecs.send(
      new CreateServiceCommand({
        cluster,
        serviceName: 'spread',
        taskDefinition: td,
        desiredCount: desired,
        placementStrategy: [{ type: 'spread', field: 'attribute:ecs.availability-zone' }],
      }),
    );
    await waitUntil(async () => settled(await describeService(ecs, cluster, 'spread'), desired), 'the service settled on two instances', { timeoutMs: 90_000 });
    let cs = await listClusterContainers(clusterArn);
    assert.equal(cs.length, desired);
    assert.equal(cs.filter((c) => c.instanceArn === arnA).length, 2, 'spread: two on instance A');
    assert.equal(cs.filter((c) => c.instanceArn === arnB).length, 2, 'spread: two on instance B');
    const onB = cs.filter((c) => c.instanceArn === arnB);

    await b.kill9();
    // Past the timeout B counts as disconnected and its tasks are replaced on A.
    await waitUntil(
      async () => {
        const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [arnB] }))).containerInstances![0]!;
        return ci.agentConnected === false;
      },
      'instance B agentConnected=false',
      { timeoutMs: 30_000 },
    );
    await waitUntil(
      async () => (await listClusterContainers(clusterArn)).filter((c) => c.instanceArn === arnA).length === desired,
      'four containers on instance A',
      { timeoutMs: 60_000 },
    );
    const s = await waitUntil(async () => {
      const x = await describeService(ecs, cluster, 'spread');
      return x.runningCount === desired ? x : undefined;
    }, 'runningCount back to 4 (the lost tasks are not counted)');
    assert.equal(s.pendingCount, 0);
    // B's containers still run: nobody is there to stop them.
    cs = await listClusterContainers(clusterArn);
    assert.deepEqual(new Set(cs.filter((c) => c.instanceArn === arnB).map((c) => c.id)), new Set(onB.map((c) => c.id)));

    // B returns with the same identity: it adopts only its own containers and stops the surplus.
    b = await spawnAgent({ server: srv, cluster, dataDir: b.dataDir, availabilityZone: 'us-east-1b', extraArgs: pull });
    assert.equal(b.instanceArns[0], arnB, 'same container instance after the restart');
    await waitUntil(async () => (await listClusterContainers(clusterArn)).length === desired, 'exactly 4 running containers', {
      timeoutMs: 60_000,
      describe: async () => (await listClusterContainers(clusterArn)).map((c) => c.instanceArn.slice(-6)),
    });
    // It stays there: nothing is started on B again or stopped on A by mistake.
    await sleep(3000);
    cs = await listClusterContainers(clusterArn);
    assert.equal(cs.length, desired);
    assertOneContainerPerTask(cs);
    assert.ok(cs.every((c) => c.instanceArn === arnA), 'the replacements on A stay');
    const final = await waitUntil(async () => {
      const x = await describeService(ecs, cluster, 'spread');
      return settled(x, desired) ? x : undefined;
    }, 'service steady at 4');
    assert.equal(final.runningCount, desired);
    assert.deepEqual(new Set(cs.map((c) => c.taskArn)), new Set(await runningTaskArns(ecs, cluster, 'spread')));
    // B's old containers were stopped by B, not removed by A: A adopts only its own.
    const all = await listClusterContainers(clusterArn, true);
    for (const c of onB) assert.equal(all.find((x) => x.id === c.id)?.running, false, 'the old container on B is stopped');

    // Draining A moves the service to B (started there before A's tasks stop: minimum 100%).
    await ecs.send(new UpdateContainerInstancesStateCommand({ cluster, containerInstances: [arnA], status: 'DRAINING' }));
    await waitUntil(
      async () => {
        const now = await listClusterContainers(clusterArn);
        return now.length === desired && now.every((c) => c.instanceArn === arnB);
      },
      'all four containers on B after draining A',
      { timeoutMs: 60_000 },
    );
    await waitUntil(async () => settled(await describeService(ecs, cluster, 'spread'), desired), 'steady after the drain');
    await a.stop();
    await b.stop();
    await srv.stop();
  });
});
