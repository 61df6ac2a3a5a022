import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keys, type ContainerInstanceRecord } from '../core/resources';
import { FakeClock, createLogger } from '../lib';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import { InstanceLivenessController, planLiveness, type AgentConnections } from './instance-liveness-controller';

const TIMEOUT = 30_000;

test('plan: the stored flag follows the socket, with a grace period before going false', () => {
  const cases: [string, Parameters<typeof planLiveness>[0], Parameters<typeof planLiveness>[1], ReturnType<typeof planLiveness>][] = [
    ['open socket, stored true: nothing', { socketOpen: true, disconnectedForMs: 0 }, { status: 'ACTIVE', agentConnected: true }, {}],
    ['open socket, stored false: set true', { socketOpen: true, disconnectedForMs: 0 }, { status: 'ACTIVE', agentConnected: false }, { setAgentConnected: true }],
    ['open socket on a draining instance still counts', { socketOpen: true, disconnectedForMs: 0 }, { status: 'DRAINING', agentConnected: false }, { setAgentConnected: true }],
    ['no socket for 10 s of 30: look again in 20 s', { socketOpen: false, disconnectedForMs: 10_000 }, { status: 'ACTIVE', agentConnected: true }, { recheckAfterMs: 20_000 }],
    ['no socket for exactly the timeout: set false', { socketOpen: false, disconnectedForMs: TIMEOUT }, { status: 'ACTIVE', agentConnected: true }, { setAgentConnected: false }],
    ['no socket, already false: nothing', { socketOpen: false, disconnectedForMs: 99_000 }, { status: 'ACTIVE', agentConnected: false }, {}],
    ['deregistered instance: false even with a socket', { socketOpen: true, disconnectedForMs: 0 }, { status: 'INACTIVE', agentConnected: true }, { setAgentConnected: false }],
    ['deregistered and false: nothing', { socketOpen: true, disconnectedForMs: 0 }, { status: 'INACTIVE', agentConnected: false }, {}],
  ];
  for (const [name, observed, stored, want] of cases) assert.deepEqual(planLiveness(observed, stored, TIMEOUT), want, name);
});

class FakeConnections implements AgentConnections {
  open = new Set<string>();
  changedAt = new Map<string, number>();
  private listeners = new Set<(cluster: string, id: string) => void>();
  isOpen(id: string) {
    return this.open.has(id);
  }
  lastChangeAt(id: string) {
    return this.changedAt.get(id);
  }
  onChange(l: (cluster: string, id: string) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(cluster: string, id: string, open: boolean, now: number) {
    open ? this.open.add(id) : this.open.delete(id);
    this.changedAt.set(id, now);
    for (const l of this.listeners) l(cluster, id);
  }
}

function instance(id: string, agentConnected: boolean, status = 'ACTIVE'): ContainerInstanceRecord {
  return {
    containerInstanceArn: `arn:aws:ecs:us-east-1:000000000000:container-instance/c1/${id}`,
    status,
    agentConnected,
    version: 1,
    wharf: { id, cluster: 'c1' },
  };
}

async function setup(records: ContainerInstanceRecord[]) {
  const store = new MemoryStore();
  for (const r of records) await store.create(keys.instance(r.wharf.cluster, r.wharf.id), r);
  const state = new State(store);
  await state.start();
  const clock = new FakeClock();
  const connections = new FakeConnections();
  const controller = new InstanceLivenessController({ state, store, clock, log: createLogger('test', 'silent'), connections, timeoutMs: TIMEOUT });
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
  s.clock.advance(10_000);
  s.connections.set('c1', a, true, s.clock.now());
  s.clock.advance(TIMEOUT);
  await s.controller.idle();
  assert.equal(s.connected(a), true);
  // It drops again: the grace period runs from the close.
  s.connections.set('c1', a, false, s.clock.now());
  s.clock.advance(TIMEOUT - 1000);
  await s.controller.idle();
  assert.equal(s.connected(a), true);
  s.clock.advance(1000);
  await s.controller.idle();
  assert.equal(s.connected(a), false);
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
