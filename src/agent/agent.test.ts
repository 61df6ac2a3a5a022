import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RegisterContainerInstanceRequest } from '../core/shapes/ecs';
import type { AgentTask, ServerToAgentMessage, WharfSubmitContainerStateChange, WharfTaskStateChange } from '../api/agent/protocol';
import type { Clock } from '../lib/clock';
import { Agent } from './agent';
import { ControlPlaneError, type ChannelHandlers, type ControlPlaneClient } from './control-plane-client';
import { SimulatedRuntime } from './runtime/simulated-runtime';
import { SimulatedFleet } from './simulated-fleet';

const clock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

class FakeControlPlane implements ControlPlaneClient {
  registrations: RegisterContainerInstanceRequest[] = [];
  tasks: WharfTaskStateChange[] = [];
  containers: WharfSubmitContainerStateChange[] = [];
  handlers?: ChannelHandlers;
  /** Fail this many submissions as if the control plane were down. */
  down = 0;
  attempts = 0;
  constructor(private arn = `arn:aws:ecs:us-east-1:123456789012:container-instance/default/${Math.random().toString(16).slice(2)}`) {}
  async registerContainerInstance(req: RegisterContainerInstanceRequest) {
    this.registrations.push(req);
    return { containerInstanceArn: req.containerInstanceArn ?? this.arn };
  }
  async submitTaskStateChange(req: WharfTaskStateChange) {
    this.attempts++;
    if (this.down > 0) {
      this.down--;
      throw new ControlPlaneError('NetworkError', 'connect ECONNREFUSED');
    }
    this.tasks.push(req);
  }
  async submitContainerStateChange(req: WharfSubmitContainerStateChange) {
    this.containers.push(req);
  }
  connect(_p: { cluster: string; containerInstanceArn: string }, handlers: ChannelHandlers) {
    this.handlers = handlers;
    return { connected: true, close: () => (this.handlers = undefined) };
  }
  send(tasks: AgentTask[], seq: number) {
    const m: ServerToAgentMessage = { type: 'desiredState', seq, containerInstanceArn: this.arn, tasks };
    this.handlers!.onMessage(m);
  }
}

function task(id: string, desiredStatus: 'RUNNING' | 'STOPPED' = 'RUNNING'): AgentTask {
  return {
    taskArn: `arn:aws:ecs:us-east-1:123456789012:task/default/${id.padStart(32, '0')}`,
    clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/default',
    desiredStatus,
    version: 1,
    taskDefinition: { family: 'web', revision: 3, containerDefinitions: [{ name: 'app', image: 'app', memory: 64 }] },
  };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const runnerOpts = { pollIntervalMs: 20, clock };

test('registration sends resources, attributes and overrides; the ARN is kept in the data dir', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-agent-'));
  try {
    const cp = new FakeControlPlane();
    const rt = new SimulatedRuntime({ cpus: 2, memoryBytes: 4096 * 1024 * 1024 });
    const agent = new Agent({ client: cp, runtime: rt, region: 'eu-west-1', dataDir: dir, clock, runner: runnerOpts, instanceType: 'm5.large', attributes: { stack: 'blue' }, reservedPorts: [8125] });
    await agent.start();
    const reg = cp.registrations[0]!;
    const res = Object.fromEntries(reg.totalResources!.map((r) => [r.name, r]));
    assert.equal(res.CPU!.integerValue, 2048);
    assert.equal(res.MEMORY!.integerValue, 4096 - 256);
    assert.deepEqual(res.PORTS!.stringSetValue, ['22', '2375', '2376', '8125', '51678', '51679']);
    const attrs = new Map(reg.attributes!.map((a) => [a.name, a.value]));
    assert.equal(attrs.get('ecs.availability-zone'), 'eu-west-1a');
    assert.equal(attrs.get('ecs.instance-type'), 'm5.large');
    assert.equal(attrs.get('ecs.os-type'), 'linux');
    assert.equal(attrs.get('ecs.cpu-architecture'), 'x86_64');
    assert.equal(attrs.get('stack'), 'blue');
    for (const cap of ['com.amazonaws.ecs.capability.docker-remote-api.1.17', 'com.amazonaws.ecs.capability.docker-remote-api.1.41', 'ecs.capability.task-eni', 'ecs.capability.container-health-check', 'com.amazonaws.ecs.capability.logging-driver.json-file']) {
      assert.ok(attrs.has(cap), cap);
    }
    assert.equal(reg.containerInstanceArn, undefined, 'first registration has no ARN');
    await agent.stop();

    const cp2 = new FakeControlPlane();
    const again = new Agent({ client: cp2, runtime: rt, region: 'eu-west-1', dataDir: dir, clock, runner: runnerOpts, resources: { cpu: 1024, memory: 2000 } });
    await again.start();
    assert.equal(cp2.registrations[0]!.containerInstanceArn, agent.containerInstanceArn, 'restart keeps its identity');
    const res2 = Object.fromEntries(cp2.registrations[0]!.totalResources!.map((r) => [r.name, r.integerValue]));
    assert.equal(res2.CPU, 1024);
    assert.equal(res2.MEMORY, 2000);
    await again.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('desired state is reconciled: tasks start, a task missing from the list is stopped, a never-run STOPPED task is confirmed', async () => {
  const cp = new FakeControlPlane();
  const rt = new SimulatedRuntime({ clock });
  const agent = new Agent({ client: cp, runtime: rt, region: 'us-east-1', clock, runner: runnerOpts, taskCleanupWaitMs: 0 });
  await agent.start();
  const a = task('a');
  const b = task('b');
  cp.send([a, b], 1);
  await until(() => cp.tasks.filter((t) => t.status === 'RUNNING').length === 2, 'both RUNNING');
  cp.send([a], 2); // b vanished
  await until(() => cp.tasks.some((t) => t.task === b.taskArn && t.status === 'STOPPED'), 'b STOPPED');
  cp.send([{ ...a, desiredStatus: 'STOPPED', version: 2 }, task('c', 'STOPPED')], 3);
  await until(() => cp.tasks.some((t) => t.task === a.taskArn && t.status === 'STOPPED'), 'a STOPPED');
  await until(() => cp.tasks.some((t) => t.task === task('c').taskArn && t.status === 'STOPPED'), 'c confirmed');
  assert.equal(rt.calls.filter((c) => c.op === 'create').length, 2, 'c was never started');
  cp.send([a], 1); // stale seq: ignored
  await agent.flushReports();
  await until(() => agent.tasks().length === 0, 'stopped tasks cleaned up');
  assert.equal((await rt.listContainers({})).length, 0, 'containers removed after the cleanup wait');
  await agent.stop();
});

test('reports survive a control-plane outage: retried with backoff, delivered in order', async () => {
  const cp = new FakeControlPlane();
  const rt = new SimulatedRuntime({ clock });
  const agent = new Agent({ client: cp, runtime: rt, region: 'us-east-1', clock, runner: runnerOpts, reporter: { baseRetryMs: 10, maxRetryMs: 50 } });
  await agent.start();
  cp.down = 4;
  const a = task('d');
  cp.send([a], 1);
  await until(() => cp.tasks.some((t) => t.status === 'RUNNING'), 'RUNNING delivered');
  assert.ok(cp.attempts >= 6, 'failed attempts were retried');
  assert.deepEqual(cp.tasks.map((t) => t.status), ['PENDING', 'RUNNING']);
  await agent.stop();
});

test('restart adopts existing containers (no duplicates) and removes orphans after the first desired state', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-agent-'));
  try {
    const rt = new SimulatedRuntime({ clock });
    const cp = new FakeControlPlane();
    const first = new Agent({ client: cp, runtime: rt, region: 'us-east-1', dataDir: dir, clock, runner: runnerOpts });
    await first.start();
    const a = task('e');
    cp.send([a], 1);
    await until(() => cp.tasks.some((t) => t.status === 'RUNNING'), 'RUNNING');
    await first.stop(); // like a crash: containers stay
    // An orphan: labelled as ours, but no task record for it.
    await rt.createContainer({ name: 'orphan', image: 'x', labels: { 'io.wharf.container-instance': first.containerInstanceArn!, 'com.amazonaws.ecs.task-arn': task('f').taskArn }, host: { networkMode: 'bridge' } });

    const cp2 = new FakeControlPlane();
    const second = new Agent({ client: cp2, runtime: rt, region: 'us-east-1', dataDir: dir, clock, runner: runnerOpts });
    await second.start();
    await until(() => cp2.tasks.some((t) => t.status === 'RUNNING'), 'RUNNING re-reported');
    assert.equal(rt.calls.filter((c) => c.op === 'create' && c.name !== 'orphan').length, 1, 'no duplicate container');
    cp2.send([a], 1);
    await until(() => rt.idOf('orphan') === undefined, 'orphan removed');
    assert.equal(second.tasks().length, 1);
    await second.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('simulated fleet: each hollow instance registers separately and runs tasks', async () => {
  const clients: FakeControlPlane[] = [];
  const fleet = new SimulatedFleet({
    count: 20,
    region: 'us-east-1',
    makeClient: () => {
      const c = new FakeControlPlane();
      clients.push(c);
      return c;
    },
    runtime: { clock, startLatencyMs: 1 },
    agent: { clock, runner: runnerOpts },
  });
  await fleet.start();
  assert.equal(clients.length, 20);
  assert.equal(new Set(fleet.agents.map((a) => a.containerInstanceArn)).size, 20);
  const zones = new Set(clients.map((c) => c.registrations[0]!.attributes!.find((a) => a.name === 'ecs.availability-zone')!.value));
  assert.equal(zones.size, 3);
  clients[7]!.send([task('f1')], 1);
  await until(() => clients[7]!.tasks.some((t) => t.status === 'RUNNING'), 'RUNNING on instance 7');
  await fleet.stop();
});
