import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FARGATE_POOL } from '../core/fargate-pool';
import { keys, type ContainerInstanceRecord, type TaskRecord } from '../core/resources';
import { FakeClock, createLogger } from '../lib';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import { InstanceLivenessController, planLiveness, type AgentConnectionEvent, type AgentConnections } from './instance-liveness-controller';

const TIMEOUT = 30_000;

test('plan: the stored flag follows the socket, with a grace period before going false', () => {
  const cases: [string, Parameters<typeof planLiveness>[0], Parameters<typeof planLiveness>[1], ReturnType<typeof planLiveness>][] = [
    ['open socket, stored true: nothing', { socketOpen: true, disconnectedForMs: 0 }, { status: 'ACTIVE', agentConnected: true }, {}],
    ['open socket, stored false: set true', { socketOpen: true, disconnectedForMs: 0 }, { status: 'ACTIVE', agentConnected: false }, { setAgentConnected: true }],
    ['open socket on a draining instance still counts', { socketOpen: true, disconnectedForMs: 0 }, { status: 'DRAINING', agentConnected: false }, { setAgentConnected: true }],
    ['no socket for 10 s of 30: look again in 20 s', { socketOpen: false, disconnectedForMs: 10_000 }, { status: 'ACTIVE', agentConnected: true }, { recheckAfterMs: 20_000 }],
    ['its socket just closed: the same grace, look again in 30 s', { socketOpen: false, disconnectedForMs: 0 }, { status: 'ACTIVE', agentConnected: true }, { recheckAfterMs: TIMEOUT }],
    ['no socket for exactly the timeout: set false', { socketOpen: false, disconnectedForMs: TIMEOUT }, { status: 'ACTIVE', agentConnected: true }, { setAgentConnected: false }],
    ['no socket, already false: nothing', { socketOpen: false, disconnectedForMs: 99_000 }, { status: 'ACTIVE', agentConnected: false }, {}],
    ['deregistered instance: false even with a socket', { socketOpen: true, disconnectedForMs: 0 }, { status: 'INACTIVE', agentConnected: true }, { setAgentConnected: false }],
    ['deregistered and false: nothing', { socketOpen: true, disconnectedForMs: 0 }, { status: 'INACTIVE', agentConnected: false }, {}],
  ];
  for (const [name, observed, stored, want] of cases) assert.deepEqual(planLiveness(observed, stored, TIMEOUT), want, name);
});

/** The gateway's side as the controller sees it: which sockets are open, and their events. */
class FakeConnections implements AgentConnections {
  open = new Set<string>();
  events = new Map<string, AgentConnectionEvent>();
  private listeners = new Set<(e: AgentConnectionEvent) => void>();
  isOpen(id: string) {
    return this.open.has(id);
  }
  lastEvent(id: string) {
    return this.events.get(id);
  }
  onEvent(l: (e: AgentConnectionEvent) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(cluster: string, id: string, open: boolean, now: number) {
    open ? this.open.add(id) : this.open.delete(id);
    const e: AgentConnectionEvent = { kind: open ? 'opened' : 'closed', cluster, instanceId: id, at: now };
    this.events.set(id, e);
    for (const l of this.listeners) l(e);
  }
}

function instance(id: string, agentConnected: boolean, status = 'ACTIVE', cluster = 'c1'): ContainerInstanceRecord {
  return {
    containerInstanceArn: `arn:aws:ecs:us-east-1:000000000000:container-instance/${cluster}/${id}`,
    status,
    agentConnected,
    version: 1,
    remainingResources: [
      { name: 'CPU', type: 'INTEGER', integerValue: 768 },
      { name: 'MEMORY', type: 'INTEGER', integerValue: 1536 },
    ],
    wharf: { id, cluster },
  };
}

/** A RUNNING task of cluster `app` holding 256 CPU / 512 MiB of `instanceId` in `instanceCluster`. */
function runningTask(id: string, instanceId: string, instanceCluster: string): TaskRecord {
  return {
    taskArn: `arn:aws:ecs:us-east-1:000000000000:task/app/${id}`,
    clusterArn: 'arn:aws:ecs:us-east-1:000000000000:cluster/app',
    lastStatus: 'RUNNING',
    desiredStatus: 'RUNNING',
    containers: [{ name: 'web', lastStatus: 'RUNNING' }],
    attachments: [{ id: 'eni-1', type: 'ElasticNetworkInterface', status: 'ATTACHED' }],
    version: 3,
    wharf: {
      id,
      cluster: 'app',
      instanceId,
      instanceCluster: instanceCluster === 'app' ? undefined : instanceCluster,
      reservation: { cpu: 256, memory: 512, ports: [], portsUdp: [], gpuIds: [] },
    },
  };
}

async function setup(records: ContainerInstanceRecord[], tasks: TaskRecord[] = [], poolHostLostMs?: number) {
  const store = new MemoryStore();
  for (const r of records) await store.create(keys.instance(r.wharf.cluster, r.wharf.id), r);
  for (const t of tasks) await store.create(keys.task(t.wharf.cluster, t.wharf.id), t);
  const state = new State(store);
  await state.start();
  const clock = new FakeClock();
  const connections = new FakeConnections();
  const controller = new InstanceLivenessController({ state, store, clock, log: createLogger('test', 'silent'), connections, timeoutMs: TIMEOUT, poolHostLostMs });
  const connected = (id: string) => state.instances.get('c1', id)!.value.agentConnected;
  return { store, state, clock, connections, controller, connected };
}

test('after a control-plane restart, a stored "connected" with no socket turns false once the timeout passes', async () => {
  const a = 'a'.repeat(32);
  const s = await setup([instance(a, true)]);
  s.controller.start();
  await s.controller.idle();
  assert.equal(s.connected(a), true, 'still within the grace period');
  s.clock.advance(TIMEOUT - 1);
  await s.controller.idle();
  assert.equal(s.connected(a), true, 'one millisecond before the timeout');
  s.clock.advance(1);
  await s.controller.idle();
  assert.equal(s.connected(a), false);
  assert.equal(s.state.instances.get('c1', a)!.value.version, 2, 'the write bumps the instance version');
  s.controller.stop();
});

test('an agent that reconnects within the grace period keeps its instance connected', async () => {
  const a = 'b'.repeat(32);
  const s = await setup([instance(a, true)]);
  s.controller.start();
  await s.controller.idle();
  s.clock.advance(10_000);
  s.connections.set('c1', a, true, s.clock.now());
  await s.controller.idle();
  s.clock.advance(TIMEOUT);
  await s.controller.idle();
  assert.equal(s.connected(a), true);
  // It drops and stays away: disconnected once the timeout has passed since the close (the
  // controller is the only writer; the gateway only reported the event).
  s.connections.set('c1', a, false, s.clock.now());
  await s.controller.idle();
  assert.equal(s.connected(a), true, 'a closed socket gets the grace too');
  s.clock.advance(TIMEOUT);
  await s.controller.idle();
  assert.equal(s.connected(a), false);
  s.controller.stop();
});

test('an agent restarted within the grace period (its socket closed here, then reopened) stays connected throughout', async () => {
  const a = 'b1'.repeat(16);
  const s = await setup([instance(a, true)]);
  s.connections.set('c1', a, true, s.clock.now());
  s.controller.start();
  await s.controller.idle();
  const version = s.state.instances.get('c1', a)!.value.version;
  // kill -9 or a clean stop of the agent: the socket closes here.
  s.connections.set('c1', a, false, s.clock.now());
  await s.controller.idle();
  assert.equal(s.connected(a), true, 'not disconnected at the close');
  s.clock.advance(TIMEOUT - 1);
  await s.controller.idle();
  assert.equal(s.connected(a), true, 'one millisecond before the timeout');
  // The restarted agent is back.
  s.connections.set('c1', a, true, s.clock.now());
  s.clock.advance(TIMEOUT * 2);
  await s.controller.idle();
  assert.equal(s.connected(a), true);
  assert.equal(s.state.instances.get('c1', a)!.value.version, version, 'agentConnected was never written (nothing for services to react to)');
  s.controller.stop();
});

test('an open socket whose "connected" write was lost is corrected to true', async () => {
  const a = 'c'.repeat(32);
  const s = await setup([instance(a, false)]);
  s.connections.set('c1', a, true, s.clock.now());
  s.controller.start();
  await s.controller.idle();
  assert.equal(s.connected(a), true);
  s.controller.stop();
});

test('a deregistered instance is never marked connected', async () => {
  const a = 'd'.repeat(32);
  const s = await setup([instance(a, false, 'INACTIVE')]);
  s.connections.set('c1', a, true, s.clock.now());
  s.controller.start();
  await s.controller.idle();
  assert.equal(s.connected(a), false);
  s.controller.stop();
});

test('a Fargate pool host gone past its grace period loses its tasks: STOPPED (TerminationNotice), resources given back; an EC2 instance keeps its tasks', async () => {
  const pool = 'e'.repeat(32);
  const ec2 = 'f'.repeat(32);
  const LOST = 90_000;
  const s = await setup(
    [instance(pool, true, 'ACTIVE', FARGATE_POOL), instance(ec2, true, 'ACTIVE', 'app')],
    [runningTask('1'.repeat(32), pool, FARGATE_POOL), runningTask('2'.repeat(32), ec2, 'app')],
    LOST,
  );
  const task = (id: string) => s.state.tasks.get('app', id.repeat(32))!.value;
  s.controller.start();
  s.connections.set(FARGATE_POOL, pool, false, s.clock.now());
  s.connections.set('app', ec2, false, s.clock.now());
  await s.controller.idle();
  s.clock.advance(TIMEOUT);
  await s.controller.idle();
  assert.equal(s.state.instances.get(FARGATE_POOL, pool)!.value.agentConnected, false);
  assert.equal(task('1').lastStatus, 'RUNNING', 'disconnected is not yet lost');
  s.clock.advance(LOST - TIMEOUT - 1);
  await s.controller.idle();
  assert.equal(task('1').lastStatus, 'RUNNING', 'one millisecond before the grace period ends');
  s.clock.advance(1);
  await s.controller.idle();

  const lost = task('1');
  assert.equal(lost.lastStatus, 'STOPPED');
  assert.equal(lost.desiredStatus, 'STOPPED');
  assert.equal(lost.stopCode, 'TerminationNotice');
  assert.match(lost.stoppedReason!, /underlying Fargate host was lost/);
  assert.deepEqual(lost.containers!.map((c) => c.lastStatus), ['STOPPED']);
  assert.deepEqual(lost.attachments!.map((a) => a.status), ['DELETED']);
  assert.equal(lost.stoppedAt, s.clock.now() / 1000);
  assert.equal(lost.wharf.released, true);
  const cpu = s.state.instances.get(FARGATE_POOL, pool)!.value.remainingResources!.find((r) => r.name === 'CPU')!.integerValue;
  assert.equal(cpu, 1024, "the task's 256 CPU units are the host's again");
  assert.equal(s.state.tasksByInstance.get(pool)?.size ?? 0, 0);

  assert.equal(task('2').lastStatus, 'RUNNING', "an EC2 instance's tasks are the user's to judge");
  assert.equal(task('2').stopCode, undefined);
  s.controller.stop();
});

test('a Fargate pool host back within its grace period keeps its tasks', async () => {
  const pool = 'a1'.repeat(16);
  const s = await setup([instance(pool, true, 'ACTIVE', FARGATE_POOL)], [runningTask('3'.repeat(32), pool, FARGATE_POOL)], 60_000);
  s.controller.start();
  s.connections.set(FARGATE_POOL, pool, false, s.clock.now());
  await s.controller.idle();
  s.clock.advance(59_000);
  await s.controller.idle();
  s.connections.set(FARGATE_POOL, pool, true, s.clock.now());
  s.clock.advance(120_000);
  await s.controller.idle();
  const t = s.state.tasks.get('app', '3'.repeat(32))!.value;
  assert.equal(t.lastStatus, 'RUNNING');
  assert.equal(t.desiredStatus, 'RUNNING');
  assert.equal(s.state.instances.get(FARGATE_POOL, pool)!.value.agentConnected, true);
  s.controller.stop();
});
