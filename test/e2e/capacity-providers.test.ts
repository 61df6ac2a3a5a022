/**
 * Capacity providers through the unmodified AWS CLI against real Docker: FARGATE and
 * FARGATE_SPOT built in, strategies split tasks by base and weight (visible as each task's
 * capacityProviderName), an on-demand Fargate task that finds the pool full interrupts a Spot
 * task (SIGTERM, stopCode SpotInterruption) and the Spot service replaces it once room returns,
 * and an Auto Scaling group provider whose tasks run only on agents started with
 * `wharf agent --capacity-provider NAME`.
 *
 * Run: npx tsx --test test/e2e/capacity-providers.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dockerSkipReason } from '../images/docker-test-env';
import { killAllSpawned, removeClusterContainers, removeDir, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';
import { awsCli, defaultSubnetsNetwork } from './helpers/wharf-server';

const skip = dockerSkipReason();
const FG = `cp-fg-${process.pid}`;
const EC2 = `cp-ec2-${process.pid}`;
/** The region's default subnets (set once the server runs). */
let NETWORK: string[] = [];
const CAPACITY = 'Capacity is unavailable at this time. Please try again later or in a different availability zone';
const ASG = 'arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0:autoScalingGroupName/workers';

describe('capacity providers', { skip, timeout: 300_000 }, () => {
  let srv: ServerProcess;
  const agents: AgentProcess[] = [];
  const clusterArns: string[] = [];
  const cli = (args: string[]) => awsCli(srv, args, {}, args[0] === 'wait' ? 180_000 : undefined);
  const describeTasks = async (cluster: string, arns: string[]) => (await cli(['describe-tasks', '--cluster', cluster, '--tasks', ...arns])).json.tasks;
  const serviceTasks = async (cluster: string, service: string) => {
    const arns = (await cli(['list-tasks', '--cluster', cluster, '--service-name', service])).json.taskArns;
    return arns.length ? describeTasks(cluster, arns) : [];
  };

  // What `--scale-command` was asked: "<provider> <desired count>" lines.
  const scaleLog = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-scale-')), 'asked');

  before(async () => {
    srv = await spawnServer({ extraArgs: ['--scale-command', `printf '%s %s\\n' >> ${scaleLog}`] });
    NETWORK = await defaultSubnetsNetwork(srv);
    // One pool host with room for three 256 CPU / 512 MiB tasks.
    agents.push(await spawnAgent({ server: srv, fargate: true, resources: 'cpu=1024,memory=1536' }));
    for (const [name, providers] of [[FG, ['FARGATE', 'FARGATE_SPOT']], [EC2, []]] as const) {
      const made = await cli(['create-cluster', '--cluster-name', name, ...(providers.length ? ['--capacity-providers', ...providers] : [])]);
      assert.equal(made.code, 0, made.stderr);
      clusterArns.push(made.json.cluster.clusterArn);
    }
    // SIGTERM ends it at once with exit code 0; SIGKILL would give 137.
    const fg = await cli([
      'register-task-definition', '--family', 'cp-fg', '--requires-compatibilities', 'FARGATE', '--network-mode', 'awsvpc', '--cpu', '256', '--memory', '512',
      '--container-definitions', JSON.stringify([{ name: 'app', image: 'wharf-test/busybox', essential: true, stopTimeout: 20, command: ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"] }]),
    ]);
    assert.equal(fg.code, 0, fg.stderr);
    const ec2 = await cli(['register-task-definition', '--family', 'cp-ec2', '--container-definitions', JSON.stringify([{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, command: ['sleep', '3600'] }])]);
    assert.equal(ec2.code, 0, ec2.stderr);
  });
  after(async () => {
    await killAllSpawned();
    for (const a of clusterArns) await removeClusterContainers(a);
    if (srv) removeDir(srv.dataDir);
    for (const a of agents) removeDir(a.dataDir);
  });

  test('FARGATE and FARGATE_SPOT are built in; run-task splits by base and weight', async () => {
    const all = (await cli(['describe-capacity-providers'])).json.capacityProviders;
    assert.deepEqual(all.map((p: { name: string; status: string }) => [p.name, p.status]), [['FARGATE', 'ACTIVE'], ['FARGATE_SPOT', 'ACTIVE']]);
    const del = await cli(['delete-capacity-provider', '--capacity-provider', 'FARGATE']);
    assert.match(del.stderr, /ClientException/);

    const out = await cli(['run-task', '--cluster', FG, '--task-definition', 'cp-fg', '--count', '3', ...NETWORK,
      '--capacity-provider-strategy', 'capacityProvider=FARGATE,base=1,weight=1', 'capacityProvider=FARGATE_SPOT,weight=2']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(out.json.failures, []);
    const arns = out.json.tasks.map((t: { taskArn: string }) => t.taskArn);
    // Base 1 on FARGATE, the other two split 1:2 -> one more FARGATE, one FARGATE_SPOT.
    const tasks = await describeTasks(FG, arns);
    assert.deepEqual(tasks.map((t: { capacityProviderName: string }) => t.capacityProviderName).sort(), ['FARGATE', 'FARGATE', 'FARGATE_SPOT']);
    assert.ok(tasks.every((t: { launchType: string }) => t.launchType === 'FARGATE'));
    assert.equal((await cli(['wait', 'tasks-running', '--cluster', FG, '--tasks', ...arns])).code, 0);
    for (const a of arns) await cli(['stop-task', '--cluster', FG, '--task', a]);
    assert.equal((await cli(['wait', 'tasks-stopped', '--cluster', FG, '--tasks', ...arns])).code, 0);
  });

  test('an on-demand task interrupts a Spot task of a full pool; the Spot service replaces it when room returns', async () => {
    const made = await cli(['create-service', '--cluster', FG, '--service-name', 'spot', '--task-definition', 'cp-fg', '--desired-count', '3', ...NETWORK,
      '--capacity-provider-strategy', 'capacityProvider=FARGATE_SPOT,weight=1']);
    assert.equal(made.code, 0, made.stderr);
    assert.deepEqual(made.json.service.capacityProviderStrategy, [{ capacityProvider: 'FARGATE_SPOT', weight: 1, base: 0 }]);
    assert.equal(made.json.service.launchType, undefined);
    assert.equal((await cli(['wait', 'services-stable', '--cluster', FG, '--services', 'spot'])).code, 0);
    const before = await serviceTasks(FG, 'spot');
    assert.deepEqual(before.map((t: { capacityProviderName: string }) => t.capacityProviderName), ['FARGATE_SPOT', 'FARGATE_SPOT', 'FARGATE_SPOT']);

    // The pool is full: the on-demand task is refused now, and one Spot task is interrupted.
    const refused = await cli(['run-task', '--cluster', FG, '--launch-type', 'FARGATE', '--task-definition', 'cp-fg', ...NETWORK]);
    assert.deepEqual(refused.json.failures, [{ reason: CAPACITY }]);
    const interrupted = await waitUntil(async () => (await describeTasks(FG, before.map((t: { taskArn: string }) => t.taskArn))).find((t: { lastStatus: string }) => t.lastStatus === 'STOPPED'), 'the interrupted Spot task stops', { timeoutMs: 60_000, intervalMs: 500 });
    assert.equal(interrupted.stopCode, 'SpotInterruption');
    assert.equal(interrupted.stoppedReason, 'Your Spot Task was interrupted.');
    assert.equal(interrupted.containers[0].exitCode, 0, 'the container got SIGTERM (its trap exits 0), not SIGKILL');

    // Its room goes to the on-demand task, not back to Spot.
    const placed = await waitUntil(async () => {
      const r = await cli(['run-task', '--cluster', FG, '--launch-type', 'FARGATE', '--task-definition', 'cp-fg', ...NETWORK]);
      return r.json?.tasks?.length === 1 ? r.json.tasks[0] : undefined;
    }, 'the on-demand task is placed', { timeoutMs: 30_000, intervalMs: 1000 });
    assert.equal(placed.capacityProviderName, undefined);
    const running = await serviceTasks(FG, 'spot');
    assert.equal(running.filter((t: { desiredStatus: string }) => t.desiredStatus === 'RUNNING').length, 2, 'the pool holds two Spot tasks and the on-demand one');

    // Room returns: the service replaces its interrupted task, on FARGATE_SPOT again.
    await cli(['stop-task', '--cluster', FG, '--task', placed.taskArn]);
    await waitUntil(async () => (await cli(['describe-services', '--cluster', FG, '--services', 'spot'])).json.services[0].runningCount === 3, 'the Spot service has three tasks again', { timeoutMs: 90_000, intervalMs: 1000 });
    const replaced = (await serviceTasks(FG, 'spot')).filter((t: { desiredStatus: string }) => t.desiredStatus === 'RUNNING');
    assert.equal(replaced.length, 3);
    assert.ok(replaced.every((t: { capacityProviderName: string }) => t.capacityProviderName === 'FARGATE_SPOT'));
    assert.equal((await cli(['delete-service', '--cluster', FG, '--service', 'spot', '--force'])).code, 0);
  });

  test('an Auto Scaling group provider runs its tasks on the agents started with --capacity-provider', async () => {
    const made = await cli(['create-capacity-provider', '--name', 'workers', '--auto-scaling-group-provider', `autoScalingGroupArn=${ASG},managedScaling={status=ENABLED,targetCapacity=100,instanceWarmupPeriod=0},managedTerminationProtection=DISABLED`]);
    // (No warm-up period: whether the controller first sees one waiting task or both depends on
    // timing, and with ECS's default 300 s it would not ask for the second until the first joined.)
    assert.equal(made.code, 0, made.stderr);
    assert.equal(made.json.capacityProvider.status, 'ACTIVE');
    assert.equal(made.json.capacityProvider.autoScalingGroupProvider.managedScaling.status, 'ENABLED');
    const put = await cli(['put-cluster-capacity-providers', '--cluster', EC2, '--capacity-providers', 'workers', '--default-capacity-provider-strategy', 'capacityProvider=workers,weight=1']);
    assert.equal(put.code, 0, put.stderr);

    // A plain instance of the cluster is not in the group: the service's task waits.
    agents.push(await spawnAgent({ server: srv, cluster: EC2 }));
    const svc = await cli(['create-service', '--cluster', EC2, '--service-name', 'w', '--task-definition', 'cp-ec2', '--desired-count', '1']);
    assert.equal(svc.code, 0, svc.stderr);
    assert.deepEqual(svc.json.service.capacityProviderStrategy, [{ capacityProvider: 'workers', weight: 1, base: 0 }], 'the cluster default strategy');
    await waitUntil(async () => (await cli(['describe-services', '--cluster', EC2, '--services', 'w'])).json.services[0].events.some((e: { message: string }) => /unable to place a task/.test(e.message)), 'the service reports it cannot place', { timeoutMs: 30_000, intervalMs: 1000 });
    assert.deepEqual(await serviceTasks(EC2, 'w'), []);
    // A standalone task waits in PROVISIONING for an instance of the group, as on ECS.
    const waiting = await cli(['run-task', '--cluster', EC2, '--task-definition', 'cp-ec2']);
    assert.equal(waiting.code, 0, waiting.stderr);
    assert.deepEqual(waiting.json.failures, []);
    const waitingTask = waiting.json.tasks[0];
    assert.equal(waitingTask.lastStatus, 'PROVISIONING');
    assert.equal(waitingTask.capacityProviderName, 'workers');
    assert.equal(waitingTask.containerInstanceArn, undefined);
    // Managed scaling: no instance in the group and two tasks waiting (the service's and the
    // standalone one) -> reservation 200; with no instance to size them by, one instance each.
    const metric = await waitUntil(async () => {
      const text = await (await fetch(`${srv.endpoint}/metrics`)).text();
      return /^wharf_capacity_provider_reservation\{[^}]*capacity_provider="workers"[^}]*\} 200$/m.test(text) ? text : undefined;
    }, 'the reservation metric', { timeoutMs: 30_000, intervalMs: 1000 });
    assert.match(metric, /^wharf_capacity_provider_desired_instances\{[^}]*capacity_provider="workers"[^}]*\} 2$/m);
    // (An empty group with nothing waiting may have been asked for 0 first, as ECS would.)
    await waitUntil(() => fs.existsSync(scaleLog) && fs.readFileSync(scaleLog, 'utf8').trim().split('\n').at(-1) === 'workers 2', 'the scale command is run with the desired count', {
      timeoutMs: 30_000,
      intervalMs: 500,
      describe: () => fs.existsSync(scaleLog) && fs.readFileSync(scaleLog, 'utf8'),
    });

    const member = await spawnAgent({ server: srv, cluster: EC2, extraArgs: ['--capacity-provider', 'workers'] });
    agents.push(member);
    await waitUntil(async () => (await cli(['describe-services', '--cluster', EC2, '--services', 'w'])).json.services[0].runningCount === 1, 'the task runs once a group instance joins', { timeoutMs: 90_000, intervalMs: 1000 });
    const [t] = await serviceTasks(EC2, 'w');
    assert.equal(t.containerInstanceArn, member.instanceArns[0]);
    assert.equal(t.capacityProviderName, 'workers');
    assert.equal(t.launchType, 'EC2');
    assert.equal((await cli(['wait', 'tasks-running', '--cluster', EC2, '--tasks', waitingTask.taskArn])).code, 0);
    const [ran] = await describeTasks(EC2, [waitingTask.taskArn]);
    assert.equal(ran.containerInstanceArn, member.instanceArns[0], 'the waiting task runs on the instance that joined the group');
    await cli(['stop-task', '--cluster', EC2, '--task', waitingTask.taskArn]);
    assert.equal((await cli(['wait', 'tasks-stopped', '--cluster', EC2, '--tasks', waitingTask.taskArn])).code, 0);

    const inUse = await cli(['put-cluster-capacity-providers', '--cluster', EC2, '--capacity-providers', '--default-capacity-provider-strategy', '[]']);
    assert.match(inUse.stderr, /ResourceInUseException/);
    const del = await cli(['delete-capacity-provider', '--capacity-provider', 'workers']);
    assert.equal(del.json.capacityProvider.updateStatus, 'DELETE_FAILED');
    assert.match(del.json.capacityProvider.updateStatusReason, new RegExp(`associated with cluster: ${EC2}`));
    assert.equal((await cli(['delete-service', '--cluster', EC2, '--service', 'w', '--force'])).code, 0);
  });
});
