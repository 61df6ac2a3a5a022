/**
 * A Fargate pool host that disappears has its tasks replaced elsewhere, as on Fargate: two pool
 * agents on this Docker Engine, a standalone FARGATE task and a FARGATE service task on the
 * first; `kill -9` of that agent. Once the host has been gone for the server's grace period
 * (`--fargate-host-lost`, short here), both tasks are STOPPED with stopCode TerminationNotice,
 * the service runs a replacement on the other host, and when the lost host's agent comes back it
 * stops and removes the containers of those tasks: no orphans, no duplicates.
 *
 * Run: npx tsx --test test/e2e/fargate-host-lost.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dockerSkipReason } from '../images/docker-test-env';
import { killAllSpawned, removeClusterContainers, removeDir, sleep, spawnAgent, spawnServer, type AgentProcess, type ServerProcess } from './helpers/processes';
import { awsCli, defaultSubnetsNetwork } from './helpers/wharf-server';

const skip = dockerSkipReason();
const CLUSTER = `fargate-lost-${process.pid}`;
/** The region's default subnets (set once the server runs). */
let NETWORK: string[] = [];
const AGENT_TIMEOUT_MS = 2000;
const HOST_LOST_MS = 6000;

/**
 * Container ids (all states) labelled with the task, and its pause container when it took one
 * the agent had started ahead (which names no task: the task's containers name it).
 */
function containersOf(taskArn: string): string[] {
  const out = execFileSync('docker', ['ps', '-a', '--no-trunc', '--filter', `label=com.amazonaws.ecs.task-arn=${taskArn}`, '--format', '{{.ID}} {{.Label "io.wharf.pause-id"}}'], { encoding: 'utf8' });
  const ids = new Set<string>();
  for (const [id, pause] of out.split('\n').filter(Boolean).map((l) => l.split(' '))) {
    ids.add(id!);
    if (pause) ids.add(pause);
  }
  return present([...ids]);
}

/** Which of these containers still exist (any state). */
function present(ids: string[]): string[] {
  if (ids.length === 0) return [];
  return execFileSync('docker', ['ps', '-aq', '--no-trunc', ...ids.flatMap((id) => ['--filter', `id=${id}`])], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

function running(id: string): boolean {
  return execFileSync('docker', ['inspect', '--format', '{{.State.Running}}', id], { encoding: 'utf8' }).trim() === 'true';
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

describe('a Fargate pool host that disappears', { skip, timeout: 300_000 }, () => {
  let srv: ServerProcess;
  let lost: AgentProcess;
  let healthy: AgentProcess | undefined;
  let back: AgentProcess | undefined;
  let clusterArn = '';
  const cli = (args: string[]) => awsCli(srv, args);
  const describe1 = async (arn: string) => (await cli(['describe-tasks', '--cluster', CLUSTER, '--tasks', arn])).json.tasks[0];

  before(async () => {
    srv = await spawnServer({ agentTimeoutMs: AGENT_TIMEOUT_MS, extraArgs: ['--fargate-host-lost', String(HOST_LOST_MS)] });
    NETWORK = await defaultSubnetsNetwork(srv);
    lost = await spawnAgent({ server: srv, fargate: true, availabilityZone: 'us-east-1a', resources: 'cpu=1024,memory=2048' });
    const made = await cli(['create-cluster', '--cluster-name', CLUSTER]);
    assert.equal(made.code, 0, made.stderr);
    clusterArn = made.json.cluster.clusterArn;
    const reg = await cli([
      'register-task-definition', '--family', 'lost-web', '--requires-compatibilities', 'FARGATE', '--network-mode', 'awsvpc',
      '--cpu', '256', '--memory', '512',
      '--container-definitions', JSON.stringify([{ name: 'web', image: 'wharf-test/busybox', command: ['httpd', '-f', '-p', '80', '-h', '/etc'], essential: true, stopTimeout: 2 }]),
    ]);
    assert.equal(reg.code, 0, reg.stderr);
  });
  after(async () => {
    await killAllSpawned();
    // The killed agent's containers, whatever the test got to.
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    for (const a of [lost, healthy, back]) if (a) removeDir(a.dataDir);
  });

  test('its tasks are STOPPED (TerminationNotice), the service replaces its task on the other host, and the host coming back removes their containers', async () => {
    // Both tasks on the first host: it is the only one yet.
    const standalone = await cli(['run-task', '--cluster', CLUSTER, '--launch-type', 'FARGATE', '--task-definition', 'lost-web', ...NETWORK]);
    assert.equal(standalone.code, 0, standalone.stderr);
    const taskArn: string = standalone.json.tasks[0].taskArn;
    const svc = await cli(['create-service', '--cluster', CLUSTER, '--service-name', 'web', '--launch-type', 'FARGATE', '--task-definition', 'lost-web', '--desired-count', '1', ...NETWORK]);
    assert.equal(svc.code, 0, svc.stderr);
    const serviceTaskArn = await until('the service task', 60_000, async () => (await cli(['list-tasks', '--cluster', CLUSTER, '--service-name', 'web'])).json.taskArns[0] as string | undefined);
    for (const arn of [taskArn, serviceTaskArn]) await until(`${arn} RUNNING`, 90_000, async () => ((await describe1(arn)).lastStatus === 'RUNNING' ? true : undefined));
    assert.equal((await describe1(serviceTaskArn)).availabilityZone, 'us-east-1a');
    const oldContainers = [...containersOf(taskArn), ...containersOf(serviceTaskArn)];
    assert.equal(oldContainers.length, 4, 'a pause and a task container each');

    healthy = await spawnAgent({ server: srv, fargate: true, availabilityZone: 'us-east-1b', resources: 'cpu=1024,memory=2048' });
    await lost.kill9();
    const killedAt = Date.now();
    assert.ok(oldContainers.every(running), "the tasks' containers outlive their agent");

    // Within the grace period the tasks stand: the host may come back.
    await sleep(AGENT_TIMEOUT_MS + 1000);
    assert.equal((await describe1(taskArn)).lastStatus, 'RUNNING');

    const stopped = await until('the standalone task STOPPED', 60_000, async () => {
      const t = await describe1(taskArn);
      return t.lastStatus === 'STOPPED' ? t : undefined;
    });
    assert.ok(Date.now() - killedAt >= HOST_LOST_MS - 500, 'not before the grace period ran out');
    assert.equal(stopped.desiredStatus, 'STOPPED');
    assert.equal(stopped.stopCode, 'TerminationNotice');
    assert.equal(stopped.stoppedReason, 'Task stopped because its underlying Fargate host was lost');
    assert.ok(stopped.stoppedAt, 'stoppedAt is set');
    assert.deepEqual(stopped.containers.map((c: { lastStatus: string }) => c.lastStatus), ['STOPPED']);

    const oldService = await until('the service task STOPPED', 60_000, async () => {
      const t = await describe1(serviceTaskArn);
      return t.lastStatus === 'STOPPED' ? t : undefined;
    });
    assert.equal(oldService.stopCode, 'TerminationNotice');

    // The replacement runs on the healthy host, and it is the service's only live task.
    const replacement = await until('a replacement RUNNING', 90_000, async () => {
      const arns: string[] = (await cli(['list-tasks', '--cluster', CLUSTER, '--service-name', 'web'])).json.taskArns;
      const live = arns.filter((a) => a !== serviceTaskArn);
      if (live.length !== 1) return undefined;
      const t = await describe1(live[0]!);
      return t.lastStatus === 'RUNNING' ? t : undefined;
    });
    assert.equal(replacement.availabilityZone, 'us-east-1b');
    const inspect = JSON.parse(execFileSync('docker', ['inspect', replacement.containers[0].runtimeId], { encoding: 'utf8' }))[0];
    assert.equal(inspect.Config.Labels['io.wharf.container-instance'], healthy.instanceArns[0]);
    const service = (await cli(['describe-services', '--cluster', CLUSTER, '--services', 'web'])).json.services[0];
    assert.equal(service.runningCount, 1);
    // The killed host's containers still run: nobody has told them otherwise yet.
    assert.ok(oldContainers.every(running));

    // The host comes back (same data dir: same container instance): it stops and removes the
    // containers of the tasks it lost, and runs nothing new of its own accord.
    back = await spawnAgent({ server: srv, fargate: true, availabilityZone: 'us-east-1a', resources: 'cpu=1024,memory=2048', dataDir: lost.dataDir });
    assert.deepEqual(back.instanceArns, lost.instanceArns, 'the same pool host');
    // Every one of them, pause containers included (taken from the pool or not).
    await until("the lost tasks' containers removed", 60_000, () => (present(oldContainers).length + containersOf(taskArn).length + containersOf(serviceTaskArn).length === 0 ? true : undefined));
    await sleep(1500); // room for a wrong implementation to start them again
    assert.deepEqual([...present(oldContainers), ...containersOf(taskArn), ...containersOf(serviceTaskArn)], []);
    assert.equal((await describe1(taskArn)).lastStatus, 'STOPPED', 'a lost task stays STOPPED');
    assert.equal((await describe1(taskArn)).stopCode, 'TerminationNotice');
    const after = (await cli(['list-tasks', '--cluster', CLUSTER, '--service-name', 'web'])).json.taskArns;
    assert.deepEqual(after, [replacement.taskArn], 'no duplicate of the service task');
    assert.equal((await cli(['describe-services', '--cluster', CLUSTER, '--services', 'web'])).json.services[0].runningCount, 1);

    assert.equal((await cli(['delete-service', '--cluster', CLUSTER, '--service', 'web', '--force'])).code, 0);
  });
});
