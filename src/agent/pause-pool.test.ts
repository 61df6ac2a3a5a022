/**
 * The pause container pool: a task that finds a ready pause container on its subnet creates its
 * containers in it, has the firewall rebuilt with its groups, then starts them, and makes no pause
 * container of its own; the pool refills once no start is in progress; what the pool still holds
 * goes at close; the firewall reads a pooled pause container's groups from its task's containers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LABELS, type AgentTask, type WharfTaskStateChange } from '../api/agent/protocol';
import type { Clock } from '../lib/clock';
import { SimulatedRuntime } from './runtime/simulated-runtime';
import { TaskRunner } from './task-runner';
import { PausePool } from './pause-pool';
import { TaskFirewall } from './firewall';

const clock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

const NETWORK = 'wharf-subnet-a';
const IPAM = { subnet: '10.100.0.0/20', gateway: '10.100.0.1' };

function fargateTask(id: string, publishPorts = false): AgentTask {
  return {
    taskArn: `arn:aws:ecs:us-east-1:123456789012:task/default/${id.padStart(32, '0')}`,
    clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/default',
    desiredStatus: 'RUNNING',
    version: 1,
    launchType: 'FARGATE',
    network: { name: NETWORK, ...IPAM, securityGroups: ['sg-1'], ingress: [{ protocol: 'tcp', fromPort: 80, toPort: 80, group: 'sg-1' }], ...(publishPorts ? { publishPorts: true } : {}) },
    taskDefinition: {
      family: 'web',
      revision: 1,
      networkMode: 'awsvpc',
      cpu: '256',
      memory: '512',
      containerDefinitions: [{ name: 'app', image: 'app', essential: true, portMappings: [{ containerPort: 80 }] }],
    },
  };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A runtime that logs creates and starts by container name, and task cgroups as they are made. */
function loggingRuntime() {
  const rt = new SimulatedRuntime({ clock });
  const log: string[] = [];
  const cgroups: { id: string; limits: { cpuUnits?: number; memoryMiB?: number } }[] = [];
  const name = (id: string) => (rt.calls.find((c) => c.op === 'create' && c.id === id)?.name ?? id).replace(/^ecs-web-1-/, '').replace(/-[0-9a-f]+$/, '');
  const create = rt.createContainer.bind(rt);
  const start = rt.startContainer.bind(rt);
  rt.createContainer = async (spec) => {
    const id = await create(spec);
    log.push(`create ${name(id)}`);
    return id;
  };
  rt.startContainer = async (id) => {
    await start(id);
    log.push(`start ${name(id)}`);
  };
  rt.createTaskCgroup = async (id, limits) => {
    cgroups.push({ id, limits: limits ?? {} });
    return { cgroupParent: `/wharf/${id}` };
  };
  return { rt, log, cgroups };
}

function runner(task: AgentTask, rt: SimulatedRuntime, pool: PausePool, log: string[]) {
  const tasks: WharfTaskStateChange[] = [];
  const firewall = { sync: async () => void log.push('firewall synced') };
  const r = new TaskRunner(task, { runtime: rt, containerInstanceArn: 'ci', onTaskStateChange: (c) => tasks.push(c), onContainerStateChange: () => {}, pollIntervalMs: 20, clock, firewall, pausePool: pool });
  r.start();
  return { r, tasks };
}

test('the first task makes its own pause container; the pool then fills, and the next task starts in a pooled one', async () => {
  const { rt, log, cgroups } = loggingRuntime();
  const pool = new PausePool(rt, { size: 1, image: 'wharf/pause:latest', containerInstanceArn: 'ci' });
  const first = runner(fargateTask('a1'), rt, pool, log);
  await until(() => first.r.knownStatus === 'RUNNING', 'the first task RUNNING');
  await until(() => pool.readyCount(NETWORK, IPAM) === 1, 'the pool filled');
  // The refill began only once the first task's start was over.
  const firstStart = log.indexOf('start app');
  assert.ok(log.indexOf('create wharf-pause-pool') > firstStart, log.join(', '));
  const pooled = rt.calls.find((c) => c.op === 'create' && c.name?.startsWith('wharf-pause-pool'))!;
  const pooledSpec = (await rt.inspectContainer(pooled.id!))!;
  assert.equal(pooledSpec.labels[LABELS.pause], 'true');
  assert.equal(pooledSpec.labels[LABELS.containerInstance], 'ci');
  assert.equal(pooledSpec.labels[LABELS.taskArn], undefined, 'it names no task');
  const pooledIp = Object.values(pooledSpec.ipAddresses)[0];

  log.length = 0;
  const second = runner(fargateTask('a2'), rt, pool, log);
  await until(() => second.r.knownStatus === 'RUNNING', 'the second task RUNNING');
  // No pause container of its own: created in the pooled one, firewall, then started.
  assert.deepEqual(log.slice(0, 3), ['create app', 'firewall synced', 'start app']);
  const app = (await rt.listContainers({ [LABELS.taskArn]: fargateTask('a2').taskArn }))[0]!;
  assert.equal(app.labels[LABELS.pauseId], pooled.id, "the task's container names the pause container it took");
  assert.deepEqual(JSON.parse(app.labels[LABELS.securityGroups]!).groups, ['sg-1']);
  const spec = rt.calls.find((c) => c.op === 'create' && c.id === app.id)!;
  assert.ok(spec, 'created through the runtime');
  const running = second.tasks.find((t) => t.status === 'RUNNING')!;
  assert.equal(running.privateIpv4Address, pooledIp, "the task's address is the pooled pause container's");
  // The task's limits went to the pool's cgroup.
  const poolCgroup = pooledSpec.labels[LABELS.pausePool]!;
  assert.deepEqual(cgroups.find((c) => c.id === poolCgroup && c.limits.memoryMiB !== undefined)?.limits, { cpuUnits: 256, memoryMiB: 512 });
  // And the pool refills.
  await until(() => pool.readyCount(NETWORK, IPAM) === 1, 'the pool refilled');
  assert.equal(second.r.snapshot().containers[0]!.status, 'RUNNING');

  // Stopped and cleaned up, the task removes the pause container it took.
  second.r.stop();
  await second.r.whenStopped();
  await second.r.cleanup();
  assert.equal(await rt.inspectContainer(pooled.id!), undefined);
  first.r.stop();
  await first.r.whenStopped();
  await pool.close();
  assert.equal(pool.readyCount(NETWORK, IPAM), 0);
  assert.deepEqual(await rt.listContainers({ [LABELS.pausePool]: poolCgroup }), []);
  const left = await rt.listContainers({}, [LABELS.pausePool]);
  assert.deepEqual(left.map((c) => c.status).filter((s) => s !== 'exited'), [], 'close() removed what the pool held');
});

test('a task that publishes ports never takes a pooled pause container', async () => {
  const { rt, log } = loggingRuntime();
  const pool = new PausePool(rt, { size: 1, image: 'wharf/pause:latest', containerInstanceArn: 'ci' });
  const warm = runner(fargateTask('b1'), rt, pool, log);
  await until(() => warm.r.knownStatus === 'RUNNING' && pool.readyCount(NETWORK, IPAM) === 1, 'the pool filled');
  log.length = 0;
  const pub = runner(fargateTask('b2', true), rt, pool, log);
  await until(() => pub.r.knownStatus === 'RUNNING', 'RUNNING');
  assert.equal(log[0], 'create internalecspause', 'its own pause container, which publishes its ports');
  assert.equal(pool.readyCount(NETWORK, IPAM), 1, 'the pooled one is left for another task');
  for (const x of [warm, pub]) {
    x.r.stop();
    await x.r.whenStopped();
  }
  await pool.close();
});

test("the firewall: a pooled pause container no task has admits nobody; one taken has its task's groups", async () => {
  const rt = new SimulatedRuntime({ clock });
  const pool = new PausePool(rt, { size: 2, image: 'wharf/pause:latest', containerInstanceArn: 'ci' });
  assert.equal(pool.take(NETWORK, IPAM), undefined, 'nothing ready yet: the network is now wanted');
  await until(() => pool.readyCount(NETWORK, IPAM) === 2, 'two ready');
  const taken = pool.take(NETWORK, IPAM)!;
  assert.ok(!pool.owns({ id: taken.id, labels: {} }), 'a taken one is the task’s, not the pool’s');
  const sg = JSON.stringify({ groups: ['sg-web'], ingress: [{ protocol: 'tcp', fromPort: 80, toPort: 80, cidr: '10.0.0.0/8' }] });
  // Created, not started: the rules must hold before the task's container starts.
  await rt.createContainer({ name: 'app', image: 'app', labels: { [LABELS.pauseId]: taken.id, [LABELS.securityGroups]: sg }, host: { networkMode: `container:${taken.id}` } });
  const fw = new TaskFirewall(rt, { exec: async () => {} });
  const members = await fw.members();
  assert.equal(members.length, 2);
  const mine = members.find((m) => m.ip === taken.ip)!;
  assert.deepEqual(mine.groups, ['sg-web']);
  const idle = members.find((m) => m.ip !== taken.ip)!;
  assert.deepEqual(idle, { ip: idle.ip, groups: [], ingress: [] }, 'an idle pooled one: only its DROP');
  await pool.close();
  await until(() => pool.readyCount(NETWORK, IPAM) === 0, 'emptied');
});
