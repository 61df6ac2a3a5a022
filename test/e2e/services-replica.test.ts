/**
 * REPLICA services end to end: a real `wharf server` and `wharf agent` (child processes) on this
 * host's Docker Engine, driven through the AWS SDK for JavaScript v3 and the AWS CLI v2. What a
 * user sees is checked against what Docker really runs (containers by their ECS labels).
 *
 * Run: npx tsx --test test/e2e/services-replica.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteServiceCommand,
  DescribeServicesCommand,
  DescribeTasksCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
  type ECSClient,
  type Service,
} from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { AWS_CLI, run } from './helpers/wharf-server';
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
const CLUSTER = `svc-replica-${process.pid}`;
const HEALTHY_AFTER_MS = 1000;

let srv: ServerProcess;
let agent: AgentProcess;
let ecs: ECSClient;
let clusterArn: string;

async function service(name: string): Promise<Service> {
  const out = await ecs.send(new DescribeServicesCommand({ cluster: CLUSTER, services: [name] }));
  return out.services![0]!;
}

/** Running containers of the `web` services (family svc-web; other services share the cluster). */
const running = async () => (await listClusterContainers(clusterArn)).filter((c) => c.running && c.family === 'svc-web');

async function serviceTasks(name: string, desiredStatus: 'RUNNING' | 'STOPPED') {
  const arns = (await ecs.send(new ListTasksCommand({ cluster: CLUSTER, serviceName: name, desiredStatus }))).taskArns ?? [];
  if (arns.length === 0) return [];
  return (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: arns }))).tasks ?? [];
}

async function registerHttpd(family: string, env: string): Promise<string> {
  const out = await ecs.send(
    new RegisterTaskDefinitionCommand({
      family,
      networkMode: 'bridge',
      containerDefinitions: [
        {
          name: 'web',
          image: 'wharf-test/busybox',
          essential: true,
          memory: 32,
          // httpd as PID 1 ignores SIGTERM; a short stopTimeout keeps each stop quick.
          stopTimeout: 2,
          command: ['httpd', '-f', '-p', '8080', '-h', '/var/www'],
          environment: [{ name: 'VERSION', value: env }],
        },
      ],
    }),
  );
  return out.taskDefinition!.taskDefinitionArn!;
}

const steady = (s: Service) => s.deployments?.length === 1 && s.runningCount === s.desiredCount && s.pendingCount === 0;

async function waitSteady(name: string, timeoutMs = 90_000): Promise<Service> {
  let last: Service | undefined;
  return waitUntil(
    async () => {
      last = await service(name);
      return steady(last) && last.deployments![0]!.rolloutState === 'COMPLETED' ? last : undefined;
    },
    `service ${name} steady`,
    { timeoutMs, describe: () => ({ running: last?.runningCount, pending: last?.pendingCount, deployments: last?.deployments?.length, events: last?.events?.slice(0, 5).map((e) => e.message) }) },
  );
}

describe('REPLICA services on a real agent', { skip, timeout: 600_000 }, () => {
  before(async () => {
    srv = await spawnServer({ healthyAfterRunningMs: HEALTHY_AFTER_MS });
    ecs = srv.ecs();
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }))).cluster!.clusterArn!;
    agent = await spawnAgent({ server: srv, cluster: CLUSTER, extraArgs: ['--image-pull-behavior', 'prefer-cached'] });
  });

  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    if (agent) removeDir(agent.dataDir);
  });

  test('3 httpd tasks: steady for `aws ecs wait services-stable`, a docker kill is replaced', async () => {
    const td = await registerHttpd('svc-web', 'one');
    await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: 'web', taskDefinition: td, desiredCount: 3 }));
    // The CLI waiter polls DescribeServices every 15 s until one deployment runs desiredCount.
    const wait = await run(AWS_CLI, ['ecs', 'wait', 'services-stable', '--cluster', CLUSTER, '--services', 'web', '--endpoint-url', srv.endpoint], srv.env(), undefined, 120_000);
    assert.equal(wait.code, 0, `aws ecs wait services-stable failed: ${wait.stderr}`);
    const s = await waitSteady('web');
    assert.equal(s.runningCount, 3);
    const containers = await running();
    assert.equal(containers.length, 3, 'Docker runs exactly 3 containers');
    const tasks = await serviceTasks('web', 'RUNNING');
    assert.deepEqual(new Set(containers.map((c) => c.taskArn)), new Set(tasks.map((t) => t.taskArn)), 'one container per RUNNING task, no other');
    // Each one really serves.
    const ids = containers.map((c) => c.id);
    for (const id of ids) {
      const body = execFileSync('docker', ['exec', id, 'wget', '-qO-', 'http://127.0.0.1:8080/']).toString();
      assert.match(body, /wharf test page/);
    }

    const victim = containers[0]!;
    execFileSync('docker', ['kill', victim.id]);
    const killedId = victim.taskArn.split('/').pop()!;
    const stopped = await waitUntil(async () => (await serviceTasks('web', 'STOPPED')).find((t) => t.taskArn === victim.taskArn && t.lastStatus === 'STOPPED'), 'the killed task STOPPED');
    assert.equal(stopped.stopCode, 'EssentialContainerExited');
    assert.equal(stopped.containers![0]!.exitCode, 137);
    const after = await waitSteady('web');
    assert.equal(after.runningCount, 3);
    assert.equal(after.pendingCount, 0);
    const now = await running();
    assert.equal(now.length, 3, 'back to exactly 3 containers');
    assert.ok(!now.some((c) => c.taskArn === victim.taskArn));
    const replacement = now.find((c) => !ids.includes(c.id))!;
    const replacementId = replacement.taskArn.split('/').pop()!;
    const messages = after.events!.map((e) => e.message!);
    assert.ok(messages.includes(`(service web) has started 1 tasks: (task ${replacementId}).`), `events: ${messages.slice(0, 5).join(' | ')}`);
    assert.ok(messages.includes('(service web) has reached a steady state.'));
    assert.notEqual(replacementId, killedId);
  });

  test('an essential container that exits or is OOM-killed is replaced; tasks that never start are throttled', async () => {
    const exits = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'svc-exit',
        containerDefinitions: [{ name: 'app', image: 'wharf-test/exit', essential: true, memory: 16, environment: [{ name: 'EXIT_CODE', value: '3' }, { name: 'SLEEP_SECONDS', value: '1' }] }],
      }),
    );
    await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: 'exits', taskDefinition: exits.taskDefinition!.taskDefinitionArn, desiredCount: 1 }));
    const gone = await waitUntil(async () => {
      const st = await serviceTasks('exits', 'STOPPED');
      return st.length >= 2 ? st : undefined;
    }, 'two exited tasks of service exits');
    for (const t of gone) {
      assert.equal(t.stopCode, 'EssentialContainerExited');
      assert.equal(t.containers![0]!.exitCode, 3);
    }
    // The service keeps one task wanted: every exit was followed by a new task.
    const live = await serviceTasks('exits', 'RUNNING');
    assert.ok(live.length <= 1);

    // OOM: the kernel kills the container under its 32 MiB limit; the task is replaced.
    const hog = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'svc-oom',
        containerDefinitions: [{ name: 'hog', image: 'wharf-test/memhog', essential: true, memory: 32, environment: [{ name: 'MEMHOG_MB', value: '96' }] }],
      }),
    );
    await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: 'oom', taskDefinition: hog.taskDefinition!.taskDefinitionArn, desiredCount: 1 }));
    const oomed = await waitUntil(async () => {
      const st = await serviceTasks('oom', 'STOPPED');
      return st.length >= 2 ? st : undefined;
    }, 'two OOM-killed tasks of service oom (the first replaced)');
    for (const t of oomed) {
      assert.match(`${t.containers![0]!.reason ?? ''} ${t.stoppedReason ?? ''}`, /OutOfMemoryError/);
      assert.equal(t.containers![0]!.exitCode, 137);
    }

    const bad = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'svc-bad-image',
        // A registry on a closed loopback port: every pull fails at once.
        containerDefinitions: [{ name: 'app', image: '127.0.0.1:9/wharf/none:nope', essential: true, memory: 16 }],
      }),
    );
    await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: 'bad', taskDefinition: bad.taskDefinition!.taskDefinitionArn, desiredCount: 1 }));
    const throttled = await waitUntil(
      async () => (await service('bad')).events?.find((e) => e.message === '(service bad) is unable to consistently start tasks successfully.'),
      'the throttling event',
      { timeoutMs: 90_000 },
    );
    assert.ok(throttled);
    const failed = await serviceTasks('bad', 'STOPPED');
    assert.ok(failed.length >= 3, `${failed.length} failed starts before throttling`);
    for (const t of failed) {
      assert.equal(t.stopCode, 'TaskFailedToStart');
      assert.match(t.stoppedReason ?? t.containers?.[0]?.reason ?? '', /CannotPullContainerError/);
    }
    // Throttled: no new attempt right away.
    const count = failed.length;
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok((await serviceTasks('bad', 'STOPPED')).length <= count + 1, 'launches slow down once throttled');
    for (const name of ['exits', 'oom', 'bad']) await ecs.send(new DeleteServiceCommand({ cluster: CLUSTER, service: name, force: true }));
  });

  test('a new revision rolls out within minimumHealthyPercent/maximumPercent, deployments collapse to one', async () => {
    const desired = 3;
    await ecs.send(
      new UpdateServiceCommand({ cluster: CLUSTER, service: 'web', deploymentConfiguration: { minimumHealthyPercent: 50, maximumPercent: 200 } }),
    );
    await waitSteady('web');
    const before = await running();
    const oldRev = before[0]!.revision;
    const td2 = await registerHttpd('svc-web', 'two');
    const newRev = td2.split(':').pop()!;
    assert.notEqual(newRev, oldRev);
    const L = Math.ceil((desired * 50) / 100);
    const U = Math.floor((desired * 200) / 100);
    await ecs.send(new UpdateServiceCommand({ cluster: CLUSTER, service: 'web', taskDefinition: td2 }));
    let sawTwoDeployments = false;
    let polls = 0;
    let maxSeen = 0;
    let minSeen = Infinity;
    const end = Date.now() + 120_000;
    for (;;) {
      const [s, cs] = await Promise.all([service('web'), running()]);
      polls++;
      maxSeen = Math.max(maxSeen, cs.length);
      minSeen = Math.min(minSeen, cs.length);
      const state = () => JSON.stringify({ deployments: s.deployments?.map((d) => [d.status, d.runningCount, d.pendingCount]), containers: cs.map((c) => c.revision) });
      assert.ok(cs.length <= U, `at most ${U} containers run (saw ${cs.length}): ${state()}`);
      assert.ok(cs.length >= L, `at least ${L} containers run (saw ${cs.length}): ${state()}`);
      assert.ok(s.runningCount! + s.pendingCount! <= U, `API: running ${s.runningCount} + pending ${s.pendingCount} <= ${U}`);
      if (s.deployments!.length > 1) sawTwoDeployments = true;
      if (steady(s) && s.deployments![0]!.rolloutState === 'COMPLETED' && cs.length === desired && cs.every((c) => c.revision === newRev)) break;
      assert.ok(Date.now() < end, `rollout finished in time; last: ${JSON.stringify({ deployments: s.deployments?.length, running: s.runningCount, containers: cs.map((c) => c.revision) })}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.ok(sawTwoDeployments, 'the old and new deployments coexisted during the rollout');
    assert.ok(maxSeen > desired, `the rollout used the room above desiredCount (max ${maxSeen} of ${U})`);
    const s = await service('web');
    assert.equal(s.deployments!.length, 1);
    assert.equal(s.deployments![0]!.status, 'PRIMARY');
    assert.equal(s.deployments![0]!.taskDefinition, td2);
    assert.equal(s.taskDefinition, td2);
    assert.ok(s.events!.some((e) => /^\(service web\) \(deployment ecs-svc\/\d+\) deployment completed\.$/.test(e.message!)));
    // The old tasks were stopped by the scheduler, and it said so.
    const stoppedEvents = s.events!.filter((e) => /^\(service web\) has stopped \d+ running tasks: (\(task [0-9a-f]{32}\) ?)+\.$/.test(e.message!));
    const stoppedIds = stoppedEvents.flatMap((e) => [...e.message!.matchAll(/\(task ([0-9a-f]{32})\)/g)].map((m) => m[1]));
    for (const c of before) assert.ok(stoppedIds.includes(c.taskArn.split('/').pop()!), `the stop of old task ${c.taskArn} is in the events`);
    assert.ok(polls > 3);
  });

  test('DeleteService refuses a scaled-up service without force; with force it stops everything', async () => {
    const refused = await run(AWS_CLI, ['ecs', 'delete-service', '--cluster', CLUSTER, '--service', 'web', '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env());
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /InvalidParameterException/);
    assert.match(refused.stderr, /The service cannot be stopped while it is scaled above 0\./);
    assert.equal((await running()).length, 3, 'nothing stopped');

    // Without force: scale to 0 first, then delete.
    const td = (await service('web')).taskDefinition!;
    await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: 'web2', taskDefinition: td, desiredCount: 2 }));
    await waitSteady('web2');
    await ecs.send(new UpdateServiceCommand({ cluster: CLUSTER, service: 'web2', desiredCount: 0 }));
    await waitUntil(async () => (await service('web2')).runningCount === 0, 'web2 scaled to 0');
    const del = await ecs.send(new DeleteServiceCommand({ cluster: CLUSTER, service: 'web2' }));
    assert.equal(del.service!.status, 'DRAINING');
    await waitUntil(async () => (await service('web2')).status === 'INACTIVE', 'web2 INACTIVE');

    // With force, through the CLI.
    const forced = await run(AWS_CLI, ['ecs', 'delete-service', '--cluster', CLUSTER, '--service', 'web', '--force', '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env());
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(JSON.parse(forced.stdout).service.status, 'DRAINING');
    const wait = await run(AWS_CLI, ['ecs', 'wait', 'services-inactive', '--cluster', CLUSTER, '--services', 'web', '--endpoint-url', srv.endpoint], srv.env(), undefined, 120_000);
    assert.equal(wait.code, 0, `aws ecs wait services-inactive failed: ${wait.stderr}`);
    await waitUntil(async () => (await listClusterContainers(clusterArn)).length === 0, 'no container of the cluster running');
    assert.deepEqual(await serviceTasks('web', 'RUNNING'), []);
    // Every container that ever ran belongs to a task the API knows as STOPPED: no orphan.
    const all = await listClusterContainers(clusterArn, true);
    assert.ok(all.every((c) => !c.running));
  });
});
