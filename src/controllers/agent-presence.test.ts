import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keys, type AgentPresenceRecord } from '../core/resources';
import { createLogger, systemClock } from '../lib';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import { ClusterAgentConnections, PresencePublisher } from './agent-presence';
import type { AgentConnectionEvent, AgentConnections } from './instance-liveness-controller';

/** A gateway's view whose sockets the test opens and closes. */
function fakeGateway() {
  const open = new Set<string>();
  const last = new Map<string, AgentConnectionEvent>();
  const listeners = new Set<(e: AgentConnectionEvent) => void>();
  const conns: AgentConnections = {
    isOpen: (id) => open.has(id),
    lastEvent: (id) => last.get(id),
    onEvent: (l) => (listeners.add(l), () => listeners.delete(l)),
  };
  const fire = (kind: 'opened' | 'closed', id: string) => {
    if (kind === 'opened') open.add(id);
    else open.delete(id);
    const e = { kind, cluster: 'c', instanceId: id, at: Date.now() };
    last.set(id, e);
    for (const l of listeners) l(e);
  };
  return { conns, fire };
}

const log = createLogger('test', 'silent');

test('a replica publishes its sockets and removes only its own records', async () => {
  const store = new MemoryStore();
  const gw = fakeGateway();
  const pub = new PresencePublisher({ replica: 'a', store, connections: gw.conns, clock: systemClock, log });
  gw.fire('opened', 'i1');
  await pub.idle();
  assert.equal((await store.get<AgentPresenceRecord>(keys.agentPresence('i1')))?.value.replica, 'a');
  // The agent moved: replica b wrote its record; a's late close must not remove it.
  const cur = (await store.get(keys.agentPresence('i1')))!;
  await store.update(keys.agentPresence('i1'), { replica: 'b', cluster: 'c', openedAt: 1 }, cur.modRevision);
  gw.fire('closed', 'i1');
  await pub.idle();
  assert.equal((await store.get<AgentPresenceRecord>(keys.agentPresence('i1')))?.value.replica, 'b');
  // Its own record goes when its socket closes.
  gw.fire('opened', 'i2');
  await pub.idle();
  gw.fire('closed', 'i2');
  await pub.idle();
  assert.equal(await store.get(keys.agentPresence('i2')), undefined);
  pub.stop();
});

test("the leader counts another replica's socket while that replica is alive, and hears when it dies", async () => {
  const store = new MemoryStore();
  const state = new State(store);
  await state.start();
  const gw = fakeGateway();
  let bAlive = true;
  const conns = new ClusterAgentConnections({ replica: 'a', local: gw.conns, state, replicaAlive: (r) => r === 'a' || (r === 'b' && bAlive), clock: systemClock, sweepMs: 20 });
  const events: AgentConnectionEvent[] = [];
  conns.onEvent((e) => events.push(e));
  assert.equal(conns.isOpen('i1'), false);
  await state.waitFor(await store.create(keys.agentPresence('i1'), { replica: 'b', cluster: 'c', openedAt: Date.now() }));
  assert.equal(conns.isOpen('i1'), true);
  assert.deepEqual(events.map((e) => [e.kind, e.instanceId]), [['opened', 'i1']]);
  await new Promise((r) => setTimeout(r, 60));
  bAlive = false;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(conns.isOpen('i1'), false, 'a dead replica holds no socket');
  assert.deepEqual(events.map((e) => [e.kind, e.instanceId]), [['opened', 'i1'], ['closed', 'i1']]);
  // Its own sockets count as ever.
  gw.fire('opened', 'i3');
  assert.equal(conns.isOpen('i3'), true);
  conns.stop();
  state.stop();
});
