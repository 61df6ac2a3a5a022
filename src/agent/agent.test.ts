import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentTask, ServerToAgentMessage } from '../api/agent/protocol';
import type { Logger } from '../lib/logger';
import { FARGATE_POOL } from '../core/fargate-pool';
import type { ContainerSpec } from './runtime/container-runtime';
import { Agent } from './agent';
import { ControlPlaneError } from './control-plane-client';
import { FakeControlPlane, testClock as clock, until } from './testdata/fake-control-plane';
import { SimulatedRuntime } from './runtime/simulated-runtime';
import { SimulatedFleet } from './simulated-fleet';
import { HttpControlPlaneClient } from './control-plane-client';
import { WebSocketServer } from 'ws';

/** A simulated runtime that counts how often the agent lists its containers. */
class CountingRuntime extends SimulatedRuntime {
  lists = 0;
  override async listContainers(labels: Record<string, string>) {
    this.lists++;
    return super.listContainers(labels);
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

const runnerOpts = { pollIntervalMs: 20, clock };

test('registration sends resources, attributes and overrides; the ARN is kept in the data dir', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-agent-'));
  try {
    const cp = new FakeControlPlane(`arn:aws:ecs:eu-west-1:123456789012:container-instance/default/${'e'.repeat(32)}`);
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

    // Started for another region, the same data dir is refused before anything registers.
    const elsewhere = new FakeControlPlane();
    const wrong = new Agent({ client: elsewhere, runtime: rt, region: 'us-west-2', dataDir: dir, clock, runner: runnerOpts });
    await assert.rejects(wrong.start(), /belongs to container instance .* in region eu-west-1, not us-west-2: start the agent with --region eu-west-1/);
    assert.equal(elsewhere.registrations.length, 0);

    const cp2 = new FakeControlPlane(agent.containerInstanceArn);
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

const TD_ARN = 'arn:aws:ecs:us-east-1:123456789012:task-definition/web:3';
/** A task as the server sends it once the connection carried its definition. */
function elided(t: AgentTask): AgentTask {
  return { ...t, taskDefinition: { taskDefinitionArn: TD_ARN }, taskDefinitionElided: true };
}
const withArn = (t: AgentTask): AgentTask => ({ ...t, taskDefinition: { ...t.taskDefinition, taskDefinitionArn: TD_ARN } });
const reported = (cp: FakeControlPlane, t: AgentTask, status: string) => cp.tasks.some((r) => r.task === t.taskArn && r.status === status);

test('deltas touch only the tasks they name: new ones start, removed ones stop, the rest are left alone, no container listing', async () => {
  const cp = new FakeControlPlane();
  const rt = new CountingRuntime({ clock });
  const agent = new Agent({ client: cp, runtime: rt, region: 'us-east-1', clock, runner: runnerOpts });
  await agent.start();
  const [a, b, c, d] = ['a1', 'b1', 'c1', 'd1'].map((id) => withArn(task(id)));
  cp.send([a!, elided(b!)], 1);
  await until(() => reported(cp, a!, 'RUNNING') && reported(cp, b!, 'RUNNING'), 'a and b RUNNING');
  const runnerA = agent.runnerFor(a!.taskArn)!;
  let updatesOfA = 0;
  const update = runnerA.update.bind(runnerA);
  runnerA.update = (t) => {
    updatesOfA++;
    update(t);
  };
  const listsBefore = rt.lists;

  cp.delta(2, 1, [elided(c!)], [b!.taskArn]);
  await until(() => reported(cp, c!, 'RUNNING') && reported(cp, b!, 'STOPPED'), 'c RUNNING and b STOPPED');
  assert.deepEqual(agent.desiredTasks().map((t) => t.taskArn).sort(), [a!.taskArn, c!.taskArn].sort());
  assert.deepEqual(agent.desiredTasks().find((t) => t.taskArn === c!.taskArn)!.taskDefinition.containerDefinitions, a!.taskDefinition.containerDefinitions, 'the elided definition was filled in');
  assert.equal(agent.runnerFor(a!.taskArn), runnerA, 'a kept its runner');
  assert.equal(updatesOfA, 0, 'a was not even looked at');

  // A task desired STOPPED that never ran here is confirmed, not started; a stop reaches its runner.
  cp.delta(3, 2, [{ ...elided(a!), desiredStatus: 'STOPPED', version: 2 }, elided(task('d1', 'STOPPED'))]);
  await until(() => reported(cp, a!, 'STOPPED') && reported(cp, d!, 'STOPPED'), 'a stopped, d confirmed');
  assert.equal(updatesOfA, 1);
  assert.equal(rt.calls.filter((x) => x.op === 'create').length, 3, 'd was never created');
  assert.equal(rt.lists, listsBefore, 'deltas list no containers');

  // An old delta again (a stale seq) changes nothing and breaks nothing.
  cp.delta(2, 1, [elided(task('e1'))]);
  cp.delta(4, 3, [], [d!.taskArn]);
  await agent.flushReports();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(agent.runnerFor(task('e1').taskArn), undefined);
  assert.equal(cp.connects, 1);
  assert.deepEqual(agent.desiredTasks().map((t) => [t.taskArn, t.desiredStatus]).sort(), [[a!.taskArn, 'STOPPED'], [c!.taskArn, 'RUNNING']].sort());
  await agent.stop();
});

test('a delta that does not follow the last applied message is not applied: the agent reconnects and reconciles the new full list', async () => {
  const cp = new FakeControlPlane();
  const rt = new SimulatedRuntime({ clock });
  const agent = new Agent({ client: cp, runtime: rt, region: 'us-east-1', clock, runner: runnerOpts });
  await agent.start();
  const [a, b, c] = ['a2', 'b2', 'c2'].map((id) => withArn(task(id)));
  cp.send([a!], 1);
  await until(() => reported(cp, a!, 'RUNNING'), 'a RUNNING');
  cp.delta(3, 2, [elided(b!)]); // seq 2 never arrived
  assert.equal(cp.connects, 2, 'a new connection was opened');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(agent.runnerFor(b!.taskArn), undefined, 'nothing was guessed from the broken chain');

  // The new connection's numbering starts again; a delta before its full list is a gap too.
  cp.delta(2, 1, [elided(b!)]);
  assert.equal(cp.connects, 3);
  cp.send([a!, c!], 1);
  await until(() => reported(cp, c!, 'RUNNING'), 'c RUNNING');
  assert.equal(agent.runnerFor(b!.taskArn), undefined);
  assert.equal(agent.runnerFor(a!.taskArn)!.isStopped, false, 'a, listed again, kept running');
  cp.delta(2, 1, [elided(b!)]);
  await until(() => reported(cp, b!, 'RUNNING'), 'b RUNNING from a delta on the new connection');
  assert.equal(cp.connects, 3);
  await agent.stop();
});

test('over a real socket, a broken chain closes the connection and the next one starts with a full list', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const endpoint = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const a = withArn(task('a3'));
  const b = withArn(task('b3'));
  let upgrades = 0;
  wss.on('connection', (ws) => {
    upgrades++;
    const send = (m: ServerToAgentMessage) => ws.send(JSON.stringify(m));
    if (upgrades === 1) {
      send({ type: 'desiredState', seq: 1, containerInstanceArn: 'ci', tasks: [a] });
      send({ type: 'desiredStateDelta', seq: 3, baseSeq: 2, containerInstanceArn: 'ci', upsert: [elided(b)], remove: [] });
    } else {
      send({ type: 'desiredState', seq: 1, containerInstanceArn: 'ci', tasks: [a, elided(b)] });
    }
  });
  const cp = new FakeControlPlane();
  const http = new HttpControlPlaneClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
  cp.connect = (p, h) => {
    cp.connects++;
    return http.connect(p, h);
  };
  const rt = new SimulatedRuntime({ clock });
  const agent = new Agent({ client: cp, runtime: rt, region: 'us-east-1', clock, runner: runnerOpts });
  await agent.start();
  await until(() => reported(cp, a, 'RUNNING') && reported(cp, b, 'RUNNING'), 'a and b RUNNING after the resync');
  assert.equal(upgrades, 2);
  assert.equal(cp.connects, 2);
  assert.equal(rt.calls.filter((x) => x.op === 'create').length, 2, 'a was not started twice');
  await agent.stop();
  for (const c of wss.clients) c.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
});

test('deregistered while running: the agent stops for good and leaves the containers; the next start removes them and forgets the instance', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-agent-'));
  try {
    const rt = new SimulatedRuntime({ clock });
    const cp = new FakeControlPlane();
    const reasons: string[] = [];
    const first = new Agent({ client: cp, runtime: rt, region: 'us-east-1', dataDir: dir, clock, runner: runnerOpts, onDeregistered: (why) => reasons.push(why) });
    await first.start();
    const arn = first.containerInstanceArn!;
    cp.send([task('a1'), task('a2')], 1);
    await until(() => cp.tasks.filter((t) => t.status === 'RUNNING').length === 2, 'two tasks RUNNING');
    cp.handlers!.onDeregistered!('the control plane closed the channel: container instance deregistered');
    await until(() => reasons.length === 1, 'onDeregistered');
    assert.match(reasons[0]!, /deregistered/);
    assert.equal(cp.handlers, undefined, 'the channel is closed, not reopened');
    const labelled = await rt.listContainers({ 'io.wharf.container-instance': arn });
    assert.equal(labelled.length, 2, 'as on ECS, the orphaned containers keep running until the agent starts again');

    // The next start: the control plane refuses the stored ARN because the instance is INACTIVE.
    const refusing = new FakeControlPlane();
    refusing.registerContainerInstance = async (req) => {
      refusing.registrations.push(req);
      if (req.containerInstanceArn) {
        throw new ControlPlaneError('ClientException', `The container instance ${req.containerInstanceArn} was deregistered (INACTIVE); register without containerInstanceArn to join as a new instance.`);
      }
      return { containerInstanceArn: 'arn:aws:ecs:us-east-1:123456789012:container-instance/default/new' };
    };
    const second = new Agent({ client: refusing, runtime: rt, region: 'us-east-1', dataDir: dir, clock, runner: runnerOpts });
    await assert.rejects(second.start(), (e: Error) => e.name === 'AgentDeregisteredError' && /removed its 2 orphaned container/.test(e.message) && /Start the agent again/.test(e.message));
    assert.equal((await rt.listContainers({ 'io.wharf.container-instance': arn })).length, 0, 'no orphaned container is left');
    assert.equal(refusing.registrations.length, 1, 'it did not rejoin by itself');

    // One more start joins as a new instance, with nothing of the old one to adopt.
    const third = new Agent({ client: refusing, runtime: rt, region: 'us-east-1', dataDir: dir, clock, runner: runnerOpts });
    await third.start();
    assert.equal(third.containerInstanceArn, 'arn:aws:ecs:us-east-1:123456789012:container-instance/default/new');
    assert.equal(refusing.registrations[1]!.containerInstanceArn, undefined, 'registered without the old ARN');
    assert.equal(third.tasks().length, 0);
    await third.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ECS_AGENT_URI: each container gets its task's endpoint, which forwards for that task and survives a restart", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-agent-'));
  const envs: string[][] = [];
  const rt = new SimulatedRuntime({ clock, behaviour: (spec) => (envs.push(spec.env ?? []), {}) });
  const asked: { req: unknown; instance: string }[] = [];
  const api = {
    updateTaskProtection: async () => ({}),
    getTaskProtection: async (req: { tasks?: string[] }, instance: string) => {
      asked.push({ req, instance });
      return { protectedTasks: [{ taskArn: req.tasks![0], protectionEnabled: false }], failures: [] };
    },
  };
  try {
    const cp = new FakeControlPlane();
    const first = new Agent({ client: cp, runtime: rt, region: 'us-east-1', dataDir: dir, clock, runner: runnerOpts, taskEndpoint: { host: '127.0.0.1', port: 0, api } });
    await first.start();
    const a = task('a1');
    cp.send([a], 1);
    await until(() => envs.length > 0, 'container started');
    const uri = envs[0]!.find((e) => e.startsWith('ECS_AGENT_URI='))!.slice('ECS_AGENT_URI='.length);
    assert.equal(uri, first.agentUriOf(a.taskArn));
    assert.match(uri, /^http:\/\/127\.0\.0\.1:\d+\/api\/[0-9a-f]{32}$/);
    const r = await fetch(`${uri}/task-protection/v1/state`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { protection: { ExpirationDate: null, ProtectionEnabled: false, TaskArn: a.taskArn } });
    assert.deepEqual(asked, [{ req: { cluster: a.clusterArn, tasks: [a.taskArn] }, instance: first.containerInstanceArn }]);
    // Another task's id is not this one's.
    assert.notEqual(first.endpointIdOf(task('a2').taskArn), first.endpointIdOf(a.taskArn));
    const id = first.endpointIdOf(a.taskArn);
    await first.stop();
    // A restart keeps the key: the adopted container's id still names its task.
    const second = new Agent({ client: new FakeControlPlane(), runtime: rt, region: 'us-east-1', dataDir: dir, clock, runner: runnerOpts, taskEndpoint: { host: '127.0.0.1', port: 0, api } });
    await second.start();
    assert.equal(second.endpointIdOf(a.taskArn), id);
    const again = await fetch(`${second.agentUriOf(a.taskArn)}/task-protection/v1/state`);
    assert.equal(again.status, 200);
    await second.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Remembers the spec of every container the agent creates. */
class SpecRuntime extends SimulatedRuntime {
  specs: ContainerSpec[] = [];
  override async createContainer(spec: ContainerSpec) {
    this.specs.push(spec);
    return super.createContainer(spec);
  }
}

function fargateTask(id: string): AgentTask {
  const t = task(id);
  return {
    ...t,
    launchType: 'FARGATE',
    taskDefinition: { ...t.taskDefinition, networkMode: 'awsvpc', cpu: '256', memory: '512', containerDefinitions: [{ name: 'app', image: 'app' }] },
  };
}

test('a Fargate pool host runs its tasks under gVisor where the engine has runsc, and says plainly when it falls back to runc', async () => {
  for (const engine of [['runc', 'runsc'], ['runc']]) {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-agent-'));
    try {
      const warnings: string[] = [];
      const logger = { warn: (...a: unknown[]) => warnings.push(String(a.find((x) => typeof x === 'string'))), info() {}, debug() {}, error() {} } as unknown as Logger;
      const cp = new FakeControlPlane(`arn:aws:ecs:us-east-1:123456789012:container-instance/${FARGATE_POOL}/${'f'.repeat(32)}`);
      const rt = new SpecRuntime({ runtimes: engine });
      const agent = new Agent({ client: cp, runtime: rt, region: 'us-east-1', cluster: FARGATE_POOL, dataDir: dir, clock, logger, runner: runnerOpts });
      await agent.start();
      const gvisor = engine.includes('runsc');
      const attrs = new Map(cp.registrations[0]!.attributes!.map((a) => [a.name, a.value]));
      assert.equal(attrs.get('wharf.fargate-sandbox'), gvisor ? 'gvisor' : 'runc');
      const fallback = warnings.filter((w) => /Fargate tasks here run under runc, sharing the host's kernel/.test(w));
      assert.equal(fallback.length, gvisor ? 0 : 1, 'the fallback is said once, at start');
      cp.send([fargateTask('1')], 1);
      await until(() => agent.tasks()[0]?.knownStatus === 'RUNNING', 'the Fargate task running');
      const app = rt.specs.find((s) => s.labels['com.amazonaws.ecs.container-name'] === 'app')!;
      const pause = rt.specs.find((s) => s !== app)!;
      assert.equal(app.host.runtime, gvisor ? 'runsc' : undefined);
      assert.equal(pause.host.runtime, undefined, 'the pause container owns the namespace under runc');
      assert.equal(app.host.pidsLimit, 4096);
      assert.ok(app.env!.includes('AWS_EXECUTION_ENV=AWS_ECS_FARGATE'));
      await agent.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
