import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keys, type AgentPresenceRecord, type ContainerInstanceRecord } from '../core/resources';
import { createLogger, systemClock } from '../lib';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import { ClusterAgentConnections, PresencePublisher } from './agent-presence';
import { InstanceLivenessController, type AgentConnectionEvent, type AgentConnections } from './instance-liveness-controller';

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

const instanceRecord = (id: string, agentConnected: boolean): ContainerInstanceRecord => ({
  containerInstanceArn: `arn:aws:ecs:us-east-1:000000000000:container-instance/c/${id}`,
  status: 'ACTIVE',
  agentConnected,
  version: 1,
  wharf: { id, cluster: 'c' },
});

/** The leader 'a' with its liveness controller; replicas in `alive` count as alive. */
async function leaderWith(records: ContainerInstanceRecord[], alive: Set<string>) {
  const store = new MemoryStore();
  for (const r of records) await store.create(keys.instance('c', r.wharf.id), r);
  const state = new State(store);
  await state.start();
  const conns = new ClusterAgentConnections({ replica: 'a', local: fakeGateway().conns, state, replicaAlive: (r) => r === 'a' || alive.has(r), clock: systemClock, sweepMs: 20 });
  const liveness = new InstanceLivenessController({ state, store, clock: systemClock, log, connections: conns, timeoutMs: 30_000 });
  liveness.start();
  await liveness.idle();
  const connected = (id: string) => state.instances.get('c', id)!.value.agentConnected;
  const setPresence = async (id: string, replica: string) => {
    const cur = await store.get(keys.agentPresence(id));
    const rec: AgentPresenceRecord = { replica, cluster: 'c', openedAt: Date.now() };
    await state.waitFor(cur ? await store.update(keys.agentPresence(id), rec, cur.modRevision) : await store.create(keys.agentPresence(id), rec));
  };
  const done = () => {
    liveness.stop();
    conns.stop();
    state.stop();
  };
  return { store, state, conns, liveness, connected, setPresence, done };
}

test("an agent that reconnects to a replica the leader has not heard from yet counts as connected once its heartbeat is read", async () => {
  const i = 'a'.repeat(32);
  const alive = new Set<string>();
  // Away past the timeout: stored false. It reconnects to replica n, which has just started.
  const l = await leaderWith([instanceRecord(i, false)], alive);
  await l.setPresence(i, 'n');
  await new Promise((r) => setTimeout(r, 60));
  await l.liveness.idle();
  assert.equal(l.connected(i), false, "n's heartbeat has not been read: its record does not count yet");
  // The leader's registry reads n's first heartbeat.
  alive.add('n');
  await waitFor(() => l.connected(i) === true, 'agentConnected=true after n is known');
  l.done();
});

test('a channel that moves to a replica not yet alive here, or goes, is a close now: the instance keeps its grace', async () => {
  const i = 'b'.repeat(32);
  const j = 'c'.repeat(32);
  const alive = new Set(['b']);
  const l = await leaderWith([instanceRecord(i, true), instanceRecord(j, true)], alive);
  // Both agents connected through b for long (openedAt is old: their records say since when).
  await l.setPresence(i, 'b');
  await l.setPresence(j, 'b');
  const old = Date.now() - 3_600_000;
  for (const id of [i, j]) {
    const cur = (await l.store.get<AgentPresenceRecord>(keys.agentPresence(id)))!;
    await l.state.waitFor(await l.store.update(keys.agentPresence(id), { ...cur.value, openedAt: old }, cur.modRevision));
  }
  await l.liveness.idle();
  const t0 = Date.now();
  // i moves to n (not read yet); j's agent stops (b removes its record).
  await l.setPresence(i, 'n');
  const cur = (await l.store.get(keys.agentPresence(j)))!;
  await l.state.waitFor(await l.store.delete(keys.agentPresence(j), cur.modRevision));
  await new Promise((r) => setTimeout(r, 60));
  await l.liveness.idle();
  for (const id of [i, j]) {
    const e = l.conns.lastEvent(id);
    assert.equal(e?.kind, 'closed', `${id}: the leader remembers the close`);
    assert.ok(e.at >= t0, `${id}: closed when it was noticed, not when the channel opened`);
    assert.equal(l.connected(id), true, `${id}: within the grace`);
  }
  l.done();
});

async function waitFor(probe: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
