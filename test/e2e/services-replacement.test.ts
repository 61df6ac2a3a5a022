/**
 * Service tasks replaced for what happens to them after they run, end to end with a real
 * `wharf server`, real `wharf agent`s and the Docker Engine, driven through the AWS SDK v3 and
 * the AWS CLI v2 (ECS-REFERENCE 6.7, 7.5):
 *  (a) a task whose container health check starts failing is stopped ("Task failed container
 *      health checks", stopCode ServiceSchedulerInitiated) and replaced, desiredCount kept; an
 *      UNHEALTHY task inside healthCheckGracePeriodSeconds is left alone until the period ends;
 *  (b) `aws ecs deregister-container-instance --force` on one of two instances: its tasks are
 *      orphaned (no longer counted; their containers keep running, as ECS documents) and the
 *      service replaces them on the other instance, back to desiredCount.
 * What runs is read from Docker by the ECS labels as well as through the API.
 *
 * Run: npx tsx --test test/e2e/services-replacement.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteServiceCommand,
  DescribeClustersCommand,
  DescribeContainerInstancesCommand,
  DescribeServicesCommand,
  DescribeTasksCommand,
  ListContainerInstancesCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  type ContainerDefinition,
  type ECSClient,
  type Service,
  type Task,
} from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { awsCli } from './helpers/wharf-server';
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
const PULL = ['--image-pull-behavior', 'prefer-cached'];
const HEALTH_STOP_REASON = 'Task failed container health checks';

let srv: ServerProcess;
let ecs: ECSClient;
const dirs: string[] = [];
const clusterArns: string[] = [];

before(async () => {
  if (skip) return;
  srv = await spawnServer({ healthyAfterRunningMs: 1000 });
  dirs.push(srv.dataDir);
  ecs = srv.ecs();
});

after(async () => {
  await killAllSpawned();
  for (const c of clusterArns) await removeClusterContainers(c);
  for (const d of dirs) removeDir(d);
});

async function createCluster(name: string): Promise<string> {
  const arn = (await ecs.send(new CreateClusterCommand({ clusterName: name }))).cluster!.clusterArn!;
  clusterArns.push(arn);
  return arn;
}

async function register(family: string, container: Omit<ContainerDefinition, 'name' | 'image'>): Promise<string> {
  const out = await ecs.send(
    new RegisterTaskDefinitionCommand({
      family,
      networkMode: 'bridge',
      // A shell or sleep as PID 1 ignores SIGTERM: a short stopTimeout keeps each stop quick.
      containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', essential: true, memory: 16, stopTimeout: 1, ...container }],
    }),
  );
  return out.taskDefinition!.taskDefinitionArn!;
}

async function describeService(cluster: string, name: string): Promise<Service> {
  return (await ecs.send(new DescribeServicesCommand({ cluster, services: [name] }))).services![0]!;
}

async function describeTasks(cluster: string, arns: string[]): Promise<Task[]> {
  if (arns.length === 0) return [];
  return (await ecs.send(new DescribeTasksCommand({ cluster, tasks: arns }))).tasks ?? [];
}

async function describeTask(cluster: string, arn: string): Promise<Task> {
  const [t] = await describeTasks(cluster, [arn]);
  assert.ok(t, `task ${arn} is described`);
  return t;
}

/** The service's tasks whose desired status is RUNNING. */
async function liveTasks(cluster: string, service: string): Promise<Task[]> {
  const arns = (await ecs.send(new ListTasksCommand({ cluster, serviceName: service, desiredStatus: 'RUNNING' }))).taskArns ?? [];
  return describeTasks(cluster, arns);
}

const taskId = (arn: string) => arn.split('/').pop()!;
const messages = (s: Service) => (s.events ?? []).map((e) => e.message ?? '');

const settled = (s: Service, desired: number) =>
  s.deployments?.length === 1 && s.deployments[0]!.rolloutState === 'COMPLETED' && s.runningCount === desired && s.pendingCount === 0;

describe('unhealthy service tasks', { skip, timeout: 240_000 }, () => {
  const cluster = `svc-health-${process.pid}`;
  let clusterArn: string;

  before(async () => {
    clusterArn = await createCluster(cluster);
    const agent = await spawnAgent({ server: srv, cluster, extraArgs: PULL });
    dirs.push(agent.dataDir);
  });

  test('a task whose health check starts failing is stopped and replaced; desiredCount is kept', async () => {
    // Healthy for its first check (5 s), UNHEALTHY from the second one (10 s): the file is gone.
    const td = await register('turns-unhealthy', {
      command: ['sh', '-c', 'touch /tmp/ok; sleep 8; rm /tmp/ok; exec sleep 3600'],
      healthCheck: { command: ['CMD-SHELL', 'test -f /tmp/ok'], interval: 5, timeout: 2, retries: 1 },
    });
    const created = await ecs.send(new CreateServiceCommand({ cluster, serviceName: 'flaky', taskDefinition: td, desiredCount: 1 }));
    const deploymentId = created.service!.deployments![0]!.id!;

    const [first] = await waitUntil(async () => {
      const ts = await liveTasks(cluster, 'flaky');
      return ts.length === 1 && ts[0]!.lastStatus === 'RUNNING' ? ts : undefined;
    }, 'the first task RUNNING', { timeoutMs: 60_000 });
    const firstArn = first!.taskArn!;
    const health: string[] = [];
    const stopped = await waitUntil(
      async () => {
        const t = await describeTask(cluster, firstArn);
        if (health[health.length - 1] !== t.healthStatus) health.push(t.healthStatus!);
        return t.lastStatus === 'STOPPED' ? t : undefined;
      },
      'the first task stopped by the service',
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    // It was HEALTHY first (the service counted it), then failed: the stop is the scheduler's.
    assert.ok(health.includes('HEALTHY'), `health seen: ${health.join(' -> ')}`);
    assert.equal(stopped.healthStatus, 'UNHEALTHY');
    assert.equal(stopped.containers![0]!.healthStatus, 'UNHEALTHY');
    assert.equal(stopped.stopCode, 'ServiceSchedulerInitiated');
    assert.equal(stopped.stoppedReason, HEALTH_STOP_REASON);
    assert.equal(stopped.desiredStatus, 'STOPPED');

    // A replacement of the same deployment runs; it was started no later than the stop
    // (maximumPercent 200 lets the service start it first).
    const replacement = await waitUntil(async () => {
      const ts = (await liveTasks(cluster, 'flaky')).filter((t) => t.taskArn !== firstArn);
      return ts.find((t) => t.lastStatus === 'RUNNING');
    }, 'a replacement task RUNNING', { timeoutMs: 60_000 });
    assert.equal(replacement.startedBy, deploymentId, 'no new deployment: the same one replaces its task');
    assert.equal(replacement.group, 'service:flaky');
    assert.ok(replacement.createdAt!.getTime() <= stopped.stoppingAt!.getTime(), 'the replacement was launched before the unhealthy task was stopped');

    const s = await describeService(cluster, 'flaky');
    assert.equal(s.desiredCount, 1, 'desiredCount is kept');
    assert.equal(s.deployments!.length, 1);
    const events = messages(s);
    const id = taskId(firstArn);
    assert.ok(events.includes(`(service flaky) (task ${id}) failed container health checks.`), events.join('\n'));
    assert.ok(events.includes(`(service flaky) has stopped 1 running tasks: (task ${id}).`), events.join('\n'));
    assert.ok(events.some((m) => /^\(service flaky\) has started 1 tasks: \(task [0-9a-f]+\)\.$/.test(m) && !m.includes(id)), events.join('\n'));

    // Docker agrees: the unhealthy task's container is gone from the running ones, the
    // replacement's runs.
    await waitUntil(async () => {
      const cs = await listClusterContainers(clusterArn);
      return !cs.some((c) => c.taskArn === firstArn) && cs.some((c) => c.taskArn === replacement.taskArn) ? cs : undefined;
    }, 'Docker runs the replacement and not the unhealthy task', { timeoutMs: 20_000 });

    await ecs.send(new DeleteServiceCommand({ cluster, service: 'flaky', force: true }));
    await waitUntil(async () => (await liveTasks(cluster, 'flaky')).length === 0, 'the deleted service has no tasks left');
  });

  test('an UNHEALTHY task inside healthCheckGracePeriodSeconds is kept; it is replaced once the period is over', async () => {
    const GRACE_S = 15;
    // UNHEALTHY from its first check, 5 s after it starts.
    const td = await register('never-healthy', {
      command: ['sleep', '3600'],
      healthCheck: { command: ['CMD-SHELL', 'exit 1'], interval: 5, timeout: 2, retries: 1 },
    });
    await ecs.send(new CreateServiceCommand({ cluster, serviceName: 'slow-start', taskDefinition: td, desiredCount: 1, healthCheckGracePeriodSeconds: GRACE_S }));
    assert.equal((await describeService(cluster, 'slow-start')).healthCheckGracePeriodSeconds, GRACE_S);

    const first = await waitUntil(async () => {
      const ts = await liveTasks(cluster, 'slow-start');
      return ts.length === 1 && ts[0]!.lastStatus === 'RUNNING' ? ts[0] : undefined;
    }, 'the first task RUNNING', { timeoutMs: 60_000 });
    const firstArn = first.taskArn!;
    const graceEnds = first.startedAt!.getTime() + GRACE_S * 1000;
    await waitUntil(async () => (await describeTask(cluster, firstArn)).healthStatus === 'UNHEALTHY', 'the task UNHEALTHY', { timeoutMs: 20_000 });
    assert.ok(Date.now() < graceEnds - 3000, 'UNHEALTHY well inside the grace period (else the test proves nothing)');

    // Inside the period the service neither stops it nor starts another.
    let looks = 0;
    while (Date.now() < graceEnds - 1500) {
      const t = await describeTask(cluster, firstArn);
      assert.equal(t.healthStatus, 'UNHEALTHY');
      assert.equal(t.lastStatus, 'RUNNING', 'kept running inside the grace period');
      assert.equal(t.desiredStatus, 'RUNNING');
      assert.deepEqual((await liveTasks(cluster, 'slow-start')).map((x) => x.taskArn), [firstArn], 'no replacement inside the grace period');
      looks++;
      await sleep(500);
    }
    assert.ok(looks >= 3, `looked ${looks} times inside the grace period`);

    // Once the period is over the failure counts: stopped and replaced.
    const stopped = await waitUntil(
      async () => {
        const t = await describeTask(cluster, firstArn);
        return t.desiredStatus === 'STOPPED' ? t : undefined;
      },
      'the task stopped after the grace period',
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    assert.equal(stopped.stopCode, 'ServiceSchedulerInitiated');
    assert.equal(stopped.stoppedReason, HEALTH_STOP_REASON);
    assert.ok(stopped.stoppingAt!.getTime() >= graceEnds, `stopped ${stopped.stoppingAt!.getTime() - graceEnds} ms after the grace period ended`);
    const replacement = await waitUntil(async () => {
      const ts = (await liveTasks(cluster, 'slow-start')).filter((t) => t.taskArn !== firstArn);
      return ts.find((t) => t.lastStatus === 'RUNNING');
    }, 'a replacement task RUNNING', { timeoutMs: 60_000 });
    const s = await describeService(cluster, 'slow-start');
    assert.equal(s.desiredCount, 1);
    assert.ok(messages(s).includes(`(service slow-start) (task ${taskId(firstArn)}) failed container health checks.`), messages(s).join('\n'));
    // The replacement gets a grace period of its own.
    assert.equal((await describeTask(cluster, replacement.taskArn!)).desiredStatus, 'RUNNING');

    await ecs.send(new DeleteServiceCommand({ cluster, service: 'slow-start', force: true }));
    await waitUntil(async () => (await liveTasks(cluster, 'slow-start')).length === 0, 'the deleted service has no tasks left');
  });
});

describe('container instance deregistration', { skip, timeout: 240_000 }, () => {
  const cluster = `svc-dereg-${process.pid}`;
  let clusterArn: string;
  let b: AgentProcess;
  let arnB: string;

  test('deregister-container-instance --force: the service replaces the orphaned tasks on the other instance', async () => {
    const desired = 4;
    clusterArn = await createCluster(cluster);
    const a = await spawnAgent({ server: srv, cluster, availabilityZone: 'us-east-1a', extraArgs: PULL });
    b = await spawnAgent({ server: srv, cluster, availabilityZone: 'us-east-1b', extraArgs: PULL });
    dirs.push(a.dataDir, b.dataDir);
    const arnA = a.instanceArns[0]!;
    arnB = b.instanceArns[0]!;
    assert.ok(arnA && arnB && arnA !== arnB, 'two container instances');

    const td = await register('dereg-app', { command: ['sleep', '3600'] });
    await ecs.send(
      new CreateServiceCommand({
        cluster,
        serviceName: 'spread',
        taskDefinition: td,
        desiredCount: desired,
        placementStrategy: [{ type: 'spread', field: 'attribute:ecs.availability-zone' }],
      }),
    );
    await waitUntil(async () => settled(await describeService(cluster, 'spread'), desired), 'the service settled on two instances', { timeoutMs: 90_000 });
    const before = await listClusterContainers(clusterArn);
    const onB = before.filter((c) => c.instanceArn === arnB);
    assert.equal(before.filter((c) => c.instanceArn === arnA).length, 2, 'spread: two on instance A');
    assert.equal(onB.length, 2, 'spread: two on instance B');

    // Without --force an instance with tasks is refused.
    const refused = await awsCli(srv, ['deregister-container-instance', '--cluster', cluster, '--container-instance', arnB]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /InvalidParameterException.*Found running tasks on the instance\./);

    const out = await awsCli(srv, ['deregister-container-instance', '--cluster', cluster, '--container-instance', arnB, '--force']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.json.containerInstance.containerInstanceArn, arnB);
    assert.equal(out.json.containerInstance.status, 'INACTIVE');
    assert.equal(out.json.containerInstance.agentConnected, false);

    // B leaves the cluster's list (still described, INACTIVE) and its count.
    assert.deepEqual((await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns, [arnA]);
    const ciB = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [arnB] }))).containerInstances![0]!;
    assert.equal(ciB.status, 'INACTIVE');
    const c = (await ecs.send(new DescribeClustersCommand({ clusters: [cluster] }))).clusters![0]!;
    assert.equal(c.registeredContainerInstancesCount, 1);

    // B's tasks are no longer tracked: they read as STOPPED and say why.
    for (const t of await describeTasks(cluster, onB.map((x) => x.taskArn))) {
      assert.equal(t.lastStatus, 'STOPPED', t.taskArn);
      assert.equal(t.desiredStatus, 'STOPPED');
      assert.match(t.stoppedReason ?? '', /deregistered/);
    }

    // The service starts two replacements on A and settles at desiredCount.
    const s = await waitUntil(
      async () => {
        const x = await describeService(cluster, 'spread');
        return settled(x, desired) ? x : undefined;
      },
      'the service steady at 4 after the deregistration',
      { timeoutMs: 60_000 },
    );
    assert.equal(s.desiredCount, desired);
    const live = await liveTasks(cluster, 'spread');
    assert.equal(live.length, desired);
    assert.ok(live.every((t) => t.lastStatus === 'RUNNING' && t.containerInstanceArn === arnA), 'all four RUNNING on A');
    assert.ok(messages(s).some((m) => /^\(service spread\) has started 2 tasks: /.test(m)), messages(s).join('\n'));

    // Docker: four containers of tracked tasks on A. B's two are orphaned as ECS documents
    // ("these tasks remain running until you terminate the instance or the tasks stop through
    // some other means"): still running, counted nowhere.
    const after = await waitUntil(async () => {
      const cs = await listClusterContainers(clusterArn);
      return cs.filter((x) => x.instanceArn === arnA).length === desired ? cs : undefined;
    }, 'four containers on A', { timeoutMs: 20_000 });
    assert.deepEqual(new Set(after.filter((x) => x.instanceArn === arnA).map((x) => x.taskArn)), new Set(live.map((t) => t.taskArn!)));
    assert.deepEqual(new Set(after.filter((x) => x.instanceArn === arnB).map((x) => x.id)), new Set(onB.map((x) => x.id)), 'the orphaned containers keep running');

    // It stays that way: the deregistered instance gets nothing new.
    await sleep(2000);
    const final = await liveTasks(cluster, 'spread');
    assert.equal(final.length, desired);
    assert.ok(final.every((t) => t.containerInstanceArn === arnA));
  });

  // What the deregistered host's agent does: as the ECS agent, it stops for good once the
  // control plane says its instance is INACTIVE (the containers stay, orphaned). Started again,
  // it removes them (a restart leaves no orphan container) and forgets the old identity; only the
  // start after that joins the cluster again, as a new instance: a host removed on purpose does
  // not come back by itself.
  test("the deregistered instance's agent stops; restarted, it removes the orphaned containers; the next start joins anew", async () => {
    assert.ok(b && arnB, 'the deregistration test ran');
    await waitUntil(() => b.exited, 'the agent of the deregistered instance stops', { timeoutMs: 30_000 });
    assert.equal(b.child.exitCode, 5, b.output());
    assert.match(b.output(), /was deregistered/);
    const orphans = (await listClusterContainers(clusterArn)).filter((c) => c.instanceArn === arnB);
    assert.equal(orphans.length, 2, 'the orphaned containers kept running until the agent starts again');

    await assert.rejects(
      spawnAgent({ server: srv, cluster, dataDir: b.dataDir, availabilityZone: 'us-east-1b', extraArgs: PULL, startTimeoutMs: 60_000 }),
      (e: Error) => /exited \(1\) first/.test(e.message) && /was deregistered from cluster/.test(e.message) && /removed its 2 orphaned container/.test(e.message),
    );
    assert.deepEqual((await listClusterContainers(clusterArn)).filter((c) => c.instanceArn === arnB), [], 'no container of the deregistered instance is left');

    const again = await spawnAgent({ server: srv, cluster, dataDir: b.dataDir, availabilityZone: 'us-east-1b', extraArgs: PULL, startTimeoutMs: 60_000 });
    try {
      const arnNew = again.instanceArns[0]!;
      assert.ok(arnNew && arnNew !== arnB, 'a new container instance');
      const listed = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns ?? [];
      assert.equal(listed.length, 2);
      assert.ok(listed.includes(arnNew));
    } finally {
      await again.stop();
    }
  });
});
