/**
 * The order of an awsvpc task's start: the containers are created while the pause container is
 * still starting (their network mode only needs its id), yet none starts before the pause
 * container runs and the firewall holds the task's rules; a pause container that cannot start
 * fails the task with the containers made meanwhile reported stopped, none of them started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentTask, WharfTaskStateChange } from '../api/agent/protocol';
import type { Clock } from '../lib/clock';
import { SimulatedRuntime } from './runtime/simulated-runtime';
import { TaskRunner } from './task-runner';

const clock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

function fargateTask(id: string): AgentTask {
  return {
    taskArn: `arn:aws:ecs:us-east-1:123456789012:task/default/${id.padStart(32, '0')}`,
    clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/default',
    desiredStatus: 'RUNNING',
    version: 1,
    launchType: 'FARGATE',
    network: { name: 'wharf-subnet-a', securityGroups: ['sg-1'], ingress: [] },
    taskDefinition: {
      family: 'web',
      revision: 1,
      networkMode: 'awsvpc',
      containerDefinitions: [
        { name: 'app', image: 'app', essential: true },
        { name: 'late', image: 'late', essential: false, dependsOn: [{ containerName: 'app', condition: 'START' }] },
      ],
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

/** A runtime whose pause container start waits for `gate`, logging creates and starts in order. */
function gatedRuntime(gate: Promise<void>, failPauseStart = false) {
  const rt = new SimulatedRuntime({ clock });
  const log: string[] = [];
  const name = (id: string) => (rt.calls.find((c) => c.op === 'create' && c.id === id)?.name ?? id).replace(/^ecs-web-1-/, '').replace(/-[0-9a-f]+$/, '');
  const create = rt.createContainer.bind(rt);
  const start = rt.startContainer.bind(rt);
  rt.createContainer = async (spec) => {
    const id = await create(spec);
    log.push(`create ${name(id)}`);
    return id;
  };
  rt.startContainer = async (id) => {
    const isPause = name(id) === 'internalecspause';
    if (isPause) {
      log.push('pause start begins');
      await gate;
      if (failPauseStart) throw new Error('failed to set up the network namespace');
    }
    await start(id);
    log.push(`start ${name(id)}`);
  };
  return { rt, log };
}

function runner(task: AgentTask, rt: SimulatedRuntime, firewall: { sync(): Promise<void> }) {
  const tasks: WharfTaskStateChange[] = [];
  const r = new TaskRunner(task, { runtime: rt, containerInstanceArn: 'ci', onTaskStateChange: (c) => tasks.push(c), onContainerStateChange: () => {}, pollIntervalMs: 20, clock, firewall });
  r.start();
  return { r, tasks };
}

test('awsvpc: the container that depends on nothing is created while the pause container starts; it starts after the firewall', async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const { rt, log } = gatedRuntime(gate);
  const firewall = { sync: async () => void log.push('firewall synced') };
  const { r, tasks } = runner(fargateTask('a1'), rt, firewall);
  // The pause container's start does not return until the app container exists.
  await until(() => log.includes('create app'), 'the app container created while the pause container starts');
  assert.deepEqual(log, ['create internalecspause', 'pause start begins', 'create app']);
  assert.ok(!log.some((l) => l.startsWith('start ')), 'nothing started yet');
  assert.deepEqual(tasks.map((t) => t.status), ['PROVISIONING'], 'PENDING waits for the pause container');
  open();
  await until(() => r.knownStatus === 'RUNNING', 'RUNNING');
  // A container with a dependency is created only once it may start.
  assert.deepEqual(log, ['create internalecspause', 'pause start begins', 'create app', 'start internalecspause', 'firewall synced', 'start app', 'create late', 'start late']);
  assert.deepEqual(tasks.map((t) => t.status), ['PROVISIONING', 'PENDING', 'RUNNING']);
  r.stop();
  await r.whenStopped();
});

test('awsvpc: a pause container that cannot start fails the task; the container created meanwhile never starts', async () => {
  const { rt, log } = gatedRuntime(Promise.resolve(), true);
  const { r, tasks } = runner(fargateTask('a2'), rt, { sync: async () => void log.push('firewall synced') });
  await r.whenStopped();
  const last = tasks.at(-1)!;
  assert.equal(last.status, 'STOPPED');
  assert.equal(last.stopCode, 'TaskFailedToStart');
  assert.match(last.reason!, /^ResourceInitializationError: failed to set up the network namespace/);
  const app = last.containers!.find((c) => c.containerName === 'app')!;
  assert.equal(app.status, 'STOPPED');
  assert.match(app.reason!, /^ResourceInitializationError/);
  assert.ok(log.includes('create app'));
  assert.ok(!log.some((l) => l.startsWith('start ')), `nothing started: ${log.join(', ')}`);
  assert.ok(!log.includes('firewall synced'));
});

test('an image removed between the pull and the create is pulled once more, and the task runs', async () => {
  const rt = new SimulatedRuntime({ clock });
  const create = rt.createContainer.bind(rt);
  const pull = rt.pullImage.bind(rt);
  let pulls = 0;
  let missing = true;
  rt.pullImage = async (image, o) => {
    pulls++;
    return pull(image, o);
  };
  rt.createContainer = async (spec) => {
    if (missing && spec.image === 'app') {
      missing = false;
      throw new Error('(HTTP code 404) no such container - No such image: app:latest');
    }
    return create(spec);
  };
  const { launchType: _fargate, network: _network, ...base } = fargateTask('b');
  const task: AgentTask = { ...base, taskDefinition: { family: 'web', revision: 1, networkMode: 'bridge', containerDefinitions: [{ name: 'app', image: 'app', essential: true }] } };
  const { r, tasks } = runner(task, rt, { sync: async () => {} });
  await until(() => r.knownStatus === 'RUNNING', 'RUNNING');
  assert.equal(pulls, 2, 'pulled again after the create found no image');
  assert.deepEqual(tasks.map((t) => t.status), ['PENDING', 'RUNNING']);
  r.stop();
  await r.whenStopped();
});

test('a task its host policy forbids stops with the reason before anything is created, pause container included', { timeout: 10_000 }, async () => {
  const rt = new SimulatedRuntime({ clock });
  const task = fargateTask('c');
  task.taskDefinition.containerDefinitions![0]!.privileged = true;
  const tasks: WharfTaskStateChange[] = [];
  const r = new TaskRunner(task, {
    runtime: rt, containerInstanceArn: 'ci', onTaskStateChange: (c) => tasks.push(c), onContainerStateChange: () => {}, pollIntervalMs: 20, clock,
    hostPolicy: { disablePrivileged: true },
  });
  r.start();
  await r.whenStopped();
  assert.deepEqual(rt.calls, [], 'no container created, no image pulled');
  assert.deepEqual(tasks.map((t) => t.status), ['STOPPED']);
  const last = tasks.at(-1)!;
  assert.equal(last.stopCode, 'TaskFailedToStart');
  assert.equal(last.reason, 'CannotStartContainerError: privileged containers are disabled on this container instance; container app is privileged (wharf agent --disable-privileged)');
  assert.deepEqual(last.containers!.map((c) => [c.containerName, c.status, c.reason]), [
    ['app', 'STOPPED', last.reason],
    ['late', 'STOPPED', last.reason],
  ]);
});
