import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import { WebSocket } from 'ws';
import { AGENT_CONNECT_PATH, DesiredStateReceiver, type DesiredStateDeltaMessage, type DesiredStateMessage, type ServerToAgentMessage } from '../api/agent/protocol';
import { keys, type ClusterRecord, type ContainerInstanceRecord, type TaskDefinitionRecord, type TaskRecord } from '../core/resources';
import { createLogger, signRequest, systemClock } from '../lib';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import { casUpdate } from '../store/store';
import { InstanceLivenessController } from '../controllers/instance-liveness-controller';
import { CLOSE_INACTIVE, CLOSE_REPLACED, createAgentGateway, desiredStateFor, type AgentGateway } from './agent-gateway';
import { RegionPolicy } from '../core/regions';
import { createHttpServer } from './http-server';

const ACCT = '000000000000';
const CLUSTER = 'c1';
const CLUSTER_ARN = `arn:aws:ecs:us-east-1:${ACCT}:cluster/${CLUSTER}`;
const KEY = { accessKeyId: 'AKIAWAGENTTEST000001', secretAccessKey: 'agent-secret' };
const I1 = '1'.repeat(32);
const I2 = '2'.repeat(32);
const instArn = (id: string) => `arn:aws:ecs:us-east-1:${ACCT}:container-instance/${CLUSTER}/${id}`;
const TD_ARN = `arn:aws:ecs:us-east-1:${ACCT}:task-definition/web:1`;

function taskDef(): TaskDefinitionRecord {
  return {
    taskDefinitionArn: TD_ARN,
    family: 'web',
    revision: 1,
    status: 'ACTIVE',
    containerDefinitions: [{ name: 'app', image: 'nginx:alpine', memory: 64 }],
    tags: [],
  };
}

function task(id: string, instanceId: string | undefined, desiredStatus: string, lastStatus: string, extra: Partial<TaskRecord['wharf']> = {}): TaskRecord {
  return {
    taskArn: `arn:aws:ecs:us-east-1:${ACCT}:task/${CLUSTER}/${id}`,
    clusterArn: CLUSTER_ARN,
    taskDefinitionArn: TD_ARN,
    lastStatus,
    desiredStatus,
    version: 1,
    overrides: { containerOverrides: [{ name: 'app', command: ['echo', id.slice(0, 4)] }] },
    wharf: { id, cluster: CLUSTER, instanceId, reservation: { cpu: 0, memory: 64, ports: [], portsUdp: [], gpuIds: [] }, ...extra },
  };
}

function instance(id: string): ContainerInstanceRecord {
  return { containerInstanceArn: instArn(id), status: 'ACTIVE', agentConnected: false, version: 1, wharf: { id, cluster: CLUSTER } };
}

async function fixture() {
  const store = new MemoryStore();
  const cluster: ClusterRecord = { clusterArn: CLUSTER_ARN, clusterName: CLUSTER, status: 'ACTIVE', tags: [], wharf: { createdAt: 0 } };
  await store.create(keys.cluster(CLUSTER), cluster);
  await store.create(keys.taskDefinition('web', 1), taskDef());
  await store.create(keys.instance(CLUSTER, I1), instance(I1));
  await store.create(keys.instance(CLUSTER, I2), instance(I2));
  const state = new State(store);
  await state.start();
  return { store, state };
}

const tid = (n: number) => n.toString(16).padStart(32, '0');

test('desired state: tasks to run, and tasks to stop until they report STOPPED, in ARN order', async () => {
  const { store, state } = await fixture();
  const put = (t: TaskRecord) => store.create(keys.task(CLUSTER, t.wharf.id), t);
  await put(task(tid(3), I1, 'RUNNING', 'PENDING'));
  await put(task(tid(1), I1, 'STOPPED', 'RUNNING'));
  await put(task(tid(2), I1, 'STOPPED', 'STOPPED'));
  await put(task(tid(4), I2, 'RUNNING', 'RUNNING'));
  await put(task(tid(5), undefined, 'RUNNING', 'PROVISIONING'));
  await put(task(tid(6), I1, 'STOPPED', 'STOPPED', { released: true }));
  await new Promise((r) => setImmediate(r));

  const desired = desiredStateFor(state, CLUSTER, I1);
  assert.deepEqual(desired.map((t) => [t.taskArn.slice(-1), t.desiredStatus]), [['1', 'STOPPED'], ['3', 'RUNNING']]);
  assert.deepEqual(desired[1]!.taskDefinition, taskDef(), 'the full task definition record travels with the task');
  assert.deepEqual(desired[1]!.overrides, { containerOverrides: [{ name: 'app', command: ['echo', '0000'] }] });
  assert.equal(desired[1]!.version, 1);
  assert.deepEqual(desiredStateFor(state, CLUSTER, I2).map((t) => t.taskArn.slice(-1)), ['4']);
  assert.deepEqual(desiredStateFor(state, CLUSTER, 'f'.repeat(32)), [], 'an instance without tasks gets an empty list');
  state.stop();
});

// ------------------------------------------------------------------------------------------------
// The gateway over a real loopback socket.

interface Agent {
  ws: WebSocket;
  next(timeoutMs?: number): Promise<ServerToAgentMessage>;
  /** Resolves with no message if none arrives within ms. */
  quiet(ms: number): Promise<ServerToAgentMessage | undefined>;
  closed: Promise<{ code: number }>;
}

function connect(port: number, instanceRef: string, creds = KEY): Promise<Agent> {
  const url = `http://127.0.0.1:${port}${AGENT_CONNECT_PATH}?cluster=${CLUSTER}&containerInstance=${encodeURIComponent(instanceRef)}`;
  const signed = signRequest({ method: 'GET', url, headers: {}, body: '' }, { ...creds, region: 'us-east-1', service: 'ecs' });
  const { host: _host, ...headers } = signed;
  const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers });
  const inbox: ServerToAgentMessage[] = [];
  const waiters: ((m: ServerToAgentMessage) => void)[] = [];
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as ServerToAgentMessage;
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  const closed = new Promise<{ code: number }>((resolve) => ws.on('close', (code) => resolve({ code })));
  const take = (ms: number) =>
    new Promise<ServerToAgentMessage | undefined>((resolve) => {
      const m = inbox.shift();
      if (m) return resolve(m);
      const w = (x: ServerToAgentMessage) => {
        clearTimeout(t);
        resolve(x);
      };
      const t = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        resolve(undefined);
      }, ms);
      waiters.push(w);
    });
  return new Promise((resolve, reject) => {
    ws.once('open', () =>
      resolve({
        ws,
        closed,
        quiet: take,
        next: async (ms = 2000) => {
          const m = await take(ms);
          if (!m) throw new Error('no message from the gateway');
          return m;
        },
      }),
    );
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += String(c)));
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
}

async function waitUntil(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function withGateway(fn: (g: { port: number; gateway: AgentGateway; store: MemoryStore; state: State }) => Promise<void>, opts: { pingIntervalMs?: number; debounceMs?: number } = {}) {
  const { store, state } = await fixture();
  const gateway = createAgentGateway({
    ctx: { state, clock: systemClock, log: createLogger('test', 'silent') },
    credentials: { lookup: (id) => (id === KEY.accessKeyId ? { secret: KEY.secretAccessKey, principal: { kind: 'user', iamResource: 'root' } } : undefined) },
    pingIntervalMs: opts.pingIntervalMs ?? 200,
    debounceMs: opts.debounceMs,
  });
  const server: Server = createServer((_req, res) => res.end());
  server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  // agentConnected is written by the liveness controller alone, from the gateway's events.
  // A closed socket gets the --agent-timeout grace before agentConnected goes false: keep it short here.
  const liveness = new InstanceLivenessController({ state, store, clock: systemClock, log: createLogger('test', 'silent'), connections: gateway.connections, timeoutMs: 300 });
  liveness.start();
  try {
    await fn({ port, gateway, store, state });
  } finally {
    liveness.stop();
    await gateway.close();
    await new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    state.stop();
  }
}

const suffix = (arn: string) => arn.slice(-1);

test('an agent gets its full desired state at once, then deltas of only what changed', async () => {
  await withGateway(async ({ port, store, state, gateway }) => {
    await store.create(keys.task(CLUSTER, tid(1)), task(tid(1), I1, 'RUNNING', 'PENDING'));
    const agent = await connect(port, instArn(I1));
    const first = (await agent.next()) as DesiredStateMessage;
    assert.equal(first.type, 'desiredState');
    assert.equal(first.seq, 1);
    assert.equal(first.containerInstanceArn, instArn(I1));
    assert.deepEqual(first.tasks.map((t) => suffix(t.taskArn)), ['1']);
    assert.deepEqual(first.tasks[0]!.taskDefinition, taskDef(), 'the first use of a definition carries it in full');
    assert.equal(gateway.connectionCount(), 1);
    assert.equal(gateway.connections.isOpen(I1), true);
    assert.equal(gateway.connections.lastEvent(I1)?.kind, 'opened');
    // The gateway reported the open; the liveness controller (the flag's only writer) wrote it.
    await waitUntil(() => state.instances.get(CLUSTER, I1)!.value.agentConnected === true, 'agentConnected=true');

    // Three tasks placed in a burst arrive as one delta naming only them.
    for (const n of [2, 3, 4]) await store.create(keys.task(CLUSTER, tid(n)), task(tid(n), I1, 'RUNNING', 'PENDING'));
    const second = (await agent.next()) as DesiredStateDeltaMessage;
    assert.equal(second.type, 'desiredStateDelta');
    assert.equal(second.seq, 2);
    assert.equal(second.baseSeq, 1);
    assert.deepEqual(second.upsert.map((t) => suffix(t.taskArn)).sort(), ['2', '3', '4']);
    assert.deepEqual(second.remove, []);
    assert.ok(second.upsert.every((t) => t.taskDefinitionElided === true && t.taskDefinition.containerDefinitions === undefined), 'the definition is not sent twice');
    assert.deepEqual(second.upsert[0]!.overrides, { containerOverrides: [{ name: 'app', command: ['echo', '0000'] }] });
    assert.equal(await agent.quiet(100), undefined, 'the burst produced a single message');

    // A task on another instance, and a change that leaves the desired state as it was: silence.
    await store.create(keys.task(CLUSTER, tid(9)), task(tid(9), I2, 'RUNNING', 'PENDING'));
    await casUpdate<TaskRecord>(store, keys.task(CLUSTER, tid(1)), (cur) => ({ ...cur!.value, startedBy: 'someone' }));
    await casUpdate<TaskRecord>(store, keys.task(CLUSTER, tid(2)), (cur) => ({ ...cur!.value, lastStatus: 'RUNNING', version: 2 }));
    assert.equal(await agent.quiet(100), undefined);

    // StopTask: the task stays listed, desired STOPPED, until it reports STOPPED; then it is removed.
    await casUpdate<TaskRecord>(store, keys.task(CLUSTER, tid(1)), (cur) => ({ ...cur!.value, desiredStatus: 'STOPPED', version: 2 }));
    const third = (await agent.next()) as DesiredStateDeltaMessage;
    assert.equal(third.type, 'desiredStateDelta');
    assert.deepEqual(third.upsert.map((t) => [suffix(t.taskArn), t.desiredStatus]), [['1', 'STOPPED']]);
    assert.deepEqual(third.remove, []);
    await casUpdate<TaskRecord>(store, keys.task(CLUSTER, tid(1)), (cur) => ({ ...cur!.value, lastStatus: 'STOPPED', version: 3, wharf: { ...cur!.value.wharf, released: true } }));
    const fourth = (await agent.next()) as DesiredStateDeltaMessage;
    assert.equal(fourth.type, 'desiredStateDelta');
    assert.deepEqual(fourth.upsert, []);
    assert.deepEqual(fourth.remove, [task(tid(1), I1, 'STOPPED', 'STOPPED').taskArn]);
    assert.equal(fourth.seq, 4);
    assert.equal(fourth.baseSeq, 3);

    agent.ws.close();
    await waitUntil(() => state.instances.get(CLUSTER, I1)!.value.agentConnected === false, 'agentConnected=false after close');
    assert.equal(gateway.connections.lastEvent(I1)?.kind, 'closed');
    assert.equal(gateway.connectionCount(), 0);
    assert.equal(gateway.connections.isOpen(I1), false);
  });
});

test('a full list goes instead of a delta when it is no larger: an empty instance gaining tasks, or losing its last', async () => {
  await withGateway(async ({ port, store }) => {
    const agent = await connect(port, instArn(I1));
    assert.deepEqual(((await agent.next()) as DesiredStateMessage).tasks, []);
    await store.create(keys.task(CLUSTER, tid(1)), task(tid(1), I1, 'RUNNING', 'PENDING'));
    const gained = (await agent.next()) as DesiredStateMessage;
    assert.equal(gained.type, 'desiredState');
    assert.equal(gained.seq, 2);
    assert.deepEqual(gained.tasks.map((t) => suffix(t.taskArn)), ['1']);
    assert.equal(gained.tasks[0]!.taskDefinition.family, 'web', 'the definition in full');
    await store.delete(keys.task(CLUSTER, tid(1)));
    const emptied = (await agent.next()) as DesiredStateMessage;
    assert.equal(emptied.type, 'desiredState');
    assert.deepEqual(emptied.tasks, []);
    agent.ws.close();
  });
});

test('a reconnect starts again with the full list and the definition in full', async () => {
  await withGateway(async ({ port, store }) => {
    for (const n of [1, 2]) await store.create(keys.task(CLUSTER, tid(n)), task(tid(n), I1, 'RUNNING', 'PENDING'));
    const before = await connect(port, instArn(I1));
    await before.next();
    await store.create(keys.task(CLUSTER, tid(3)), task(tid(3), I1, 'RUNNING', 'PENDING'));
    assert.equal((await before.next()).type, 'desiredStateDelta');
    before.ws.close();
    await before.closed;
    await store.create(keys.task(CLUSTER, tid(4)), task(tid(4), I1, 'RUNNING', 'PENDING'));

    const after = await connect(port, instArn(I1));
    const full = (await after.next()) as DesiredStateMessage;
    assert.equal(full.type, 'desiredState');
    assert.equal(full.seq, 1, 'numbering starts again');
    assert.deepEqual(full.tasks.map((t) => suffix(t.taskArn)), ['1', '2', '3', '4']);
    assert.deepEqual(full.tasks[0]!.taskDefinition, taskDef());
    assert.ok(full.tasks.slice(1).every((t) => t.taskDefinitionElided));
    after.ws.close();
  });
});

test('a changed task definition is sent again in full with the tasks that use it', async () => {
  await withGateway(async ({ port, store }) => {
    for (const n of [1, 2]) await store.create(keys.task(CLUSTER, tid(n)), task(tid(n), I1, 'RUNNING', 'PENDING'));
    // A task of another definition, untouched by the change.
    const other = { ...taskDef(), taskDefinitionArn: TD_ARN.replace(/:1$/, ':2'), revision: 2 };
    await store.create(keys.taskDefinition('web', 2), other);
    await store.create(keys.task(CLUSTER, tid(3)), { ...task(tid(3), I1, 'RUNNING', 'PENDING'), taskDefinitionArn: other.taskDefinitionArn });
    const agent = await connect(port, instArn(I1));
    await agent.next();
    await casUpdate<TaskDefinitionRecord>(store, keys.taskDefinition('web', 1), (cur) => ({ ...cur!.value, status: 'INACTIVE' }));
    const m = (await agent.next()) as DesiredStateDeltaMessage;
    assert.equal(m.type, 'desiredStateDelta');
    assert.deepEqual(m.upsert.map((t) => suffix(t.taskArn)).sort(), ['1', '2']);
    const carried = m.upsert.filter((t) => !t.taskDefinitionElided);
    assert.equal(carried.length, 1, 'the definition travels once');
    assert.equal(carried[0]!.taskDefinition.status, 'INACTIVE');
    agent.ws.close();
  });
});

test('a task moving to another instance is removed from one agent and added to the other', async () => {
  await withGateway(async ({ port, store }) => {
    for (const n of [1, 2]) await store.create(keys.task(CLUSTER, tid(n)), task(tid(n), I1, 'RUNNING', 'PENDING'));
    await store.create(keys.task(CLUSTER, tid(3)), task(tid(3), I2, 'RUNNING', 'PENDING'));
    const a1 = await connect(port, instArn(I1));
    const a2 = await connect(port, instArn(I2));
    await a1.next();
    await a2.next();
    await casUpdate<TaskRecord>(store, keys.task(CLUSTER, tid(2)), (cur) => ({ ...cur!.value, wharf: { ...cur!.value.wharf, instanceId: I2 } }));
    const left = (await a1.next()) as DesiredStateDeltaMessage;
    assert.equal(left.type, 'desiredStateDelta');
    assert.deepEqual(left.remove.map(suffix), ['2']);
    const arrived = (await a2.next()) as DesiredStateDeltaMessage;
    assert.equal(arrived.type, 'desiredStateDelta');
    assert.deepEqual(arrived.upsert.map((t) => suffix(t.taskArn)), ['2']);
    assert.equal(arrived.upsert[0]!.taskDefinitionElided, true, 'I2 carried the definition already');
    a1.ws.close();
    a2.ws.close();
  });
});

/** An agent's view of the channel: the DesiredStateReceiver over a socket, reconnecting on a broken chain. */
async function reconstructingAgent(port: number, instanceArn: string, opts: { drop?: (m: ServerToAgentMessage) => boolean } = {}) {
  const receiver = new DesiredStateReceiver();
  const log: { type: string; seq: number }[] = [];
  let resyncs = 0;
  let current = await connect(port, instanceArn);
  let stopped = false;
  const pump = async (): Promise<void> => {
    while (!stopped) {
      const m = await current.quiet(50);
      if (!m || m.type === 'error') continue;
      if (opts.drop?.(m)) continue;
      log.push({ type: m.type, seq: m.seq });
      const u = receiver.receive(m);
      if (u.kind === 'resync') {
        resyncs++;
        current.ws.close();
        await current.closed;
        receiver.reset();
        current = await connect(port, instanceArn);
      }
    }
  };
  const running = pump();
  return {
    receiver,
    log,
    get resyncs() {
      return resyncs;
    },
    async stop() {
      stopped = true;
      await running;
      current.ws.close();
    },
  };
}

/** What the agent should know of each task: the same for the reconstruction and desiredStateFor. */
function summary(tasks: { taskArn: string; desiredStatus: string; taskDefinition: { taskDefinitionArn?: string; containerDefinitions?: unknown[] } }[]): string[] {
  return tasks.map((t) => `${t.taskArn} ${t.desiredStatus} ${t.taskDefinition.taskDefinitionArn} ${t.taskDefinition.containerDefinitions?.length}`).sort();
}

test('a delta that does not follow the last applied message makes the agent reconnect, and it gets the full list', async () => {
  await withGateway(async ({ port, store, state }) => {
    for (const n of [1, 2]) await store.create(keys.task(CLUSTER, tid(n)), task(tid(n), I1, 'RUNNING', 'PENDING'));
    // Lose the first delta, as a broken relay might.
    let dropped = 0;
    const agent = await reconstructingAgent(port, instArn(I1), { drop: (m) => m.type === 'desiredStateDelta' && dropped++ === 0 });
    await waitUntil(() => agent.log.length === 1, 'the first full list');
    await store.create(keys.task(CLUSTER, tid(3)), task(tid(3), I1, 'RUNNING', 'PENDING'));
    await waitUntil(() => dropped === 1, 'the lost delta');
    await store.create(keys.task(CLUSTER, tid(4)), task(tid(4), I1, 'RUNNING', 'PENDING'));
    await waitUntil(() => agent.resyncs === 1 && agent.log.length === 3, 'the gap noticed and a new connection');
    assert.deepEqual(agent.log.map((m) => [m.type, m.seq]), [
      ['desiredState', 1],
      ['desiredStateDelta', 3],
      ['desiredState', 1],
    ]);
    assert.deepEqual(summary(agent.receiver.current()), summary(desiredStateFor(state, CLUSTER, I1)));
    assert.equal(agent.receiver.current().length, 4);
    await agent.stop();
  });
});

test('deltas rebuild exactly the desired state through random placements, stops, reports, moves and deletions', async (t) => {
  await withGateway(
    async ({ port, store, state }) => {
      const agents = { [I1]: await reconstructingAgent(port, instArn(I1)), [I2]: await reconstructingAgent(port, instArn(I2)) };
      // mulberry32: a small seeded generator, so a failure replays.
      let seed = 7;
      const rnd = (n: number) => {
        seed = (seed + 0x6d2b79f5) | 0;
        let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
        return ((x ^ (x >>> 14)) >>> 0) % n;
      };
      const live: string[] = [];
      let next = 1;
      for (let round = 0; round < 6; round++) {
        for (let step = 0; step < 15; step++) {
          const op = live.length === 0 ? 0 : Math.max(0, rnd(7) - 2); // creates weigh three times
          const id = live[rnd(live.length)]!;
          const key = keys.task(CLUSTER, id ?? '');
          if (op === 0) {
            const nid = tid(next++);
            await store.create(keys.task(CLUSTER, nid), task(nid, rnd(2) ? I1 : I2, 'RUNNING', 'PENDING'));
            live.push(nid);
          } else if (op === 1) {
            await casUpdate<TaskRecord>(store, key, (cur) => ({ ...cur!.value, desiredStatus: 'STOPPED', version: cur!.value.version + 1 }));
          } else if (op === 2) {
            await casUpdate<TaskRecord>(store, key, (cur) => ({ ...cur!.value, lastStatus: 'STOPPED', version: cur!.value.version + 1, wharf: { ...cur!.value.wharf, released: true } }));
          } else if (op === 3) {
            await casUpdate<TaskRecord>(store, key, (cur) => ({ ...cur!.value, wharf: { ...cur!.value.wharf, instanceId: cur!.value.wharf.instanceId === I1 ? I2 : I1 } }));
          } else {
            await store.delete(key);
            live.splice(live.indexOf(id), 1);
          }
          if (rnd(3) === 0) await new Promise((r) => setTimeout(r, rnd(8)));
        }
        for (const id of [I1, I2]) {
          await waitUntil(() => JSON.stringify(summary(agents[id]!.receiver.current())) === JSON.stringify(summary(desiredStateFor(state, CLUSTER, id))), `instance ${id.slice(0, 1)} in step after round ${round}`);
        }
      }
      for (const a of Object.values(agents)) {
        assert.equal(a.resyncs, 0, 'an unbroken chain never needs a full list again');
        const deltas = a.log.filter((m) => m.type === 'desiredStateDelta').length;
        assert.ok(deltas > 0, 'deltas were sent');
        t.diagnostic(`${a.log.length} messages, ${deltas} of them deltas`);
        await a.stop();
      }
    },
    { debounceMs: 3 },
  );
});

test('100 tasks added one at a time cost one small delta each: message size does not grow with the list', async (t) => {
  await withGateway(
    async ({ port, store }) => {
      const agent = await connect(port, instArn(I1));
      await agent.next();
      const sizes: number[] = [];
      agent.ws.on('message', (data) => sizes.push(String(data).length));
      const tasks = 100;
      for (let n = 1; n <= tasks; n++) {
        await store.create(keys.task(CLUSTER, tid(n)), task(tid(n), I1, 'RUNNING', 'PENDING'));
        await agent.next();
      }
      assert.equal(sizes.length, tasks);
      const deltas = sizes.slice(1);
      // The second and later messages each name one task with its definition elided.
      assert.ok(Math.max(...deltas) <= Math.min(...deltas) * 1.05, `delta sizes ${Math.min(...deltas)}..${Math.max(...deltas)}`);
      const total = sizes.reduce((a, b) => a + b, 0);
      assert.ok(total < sizes[0]! + tasks * deltas[0]! * 1.05, 'total bytes grow linearly with the tasks');
      t.diagnostic(`${tasks} tasks one at a time: ${sizes.length} messages, ${total} bytes in total (first ${sizes[0]}, then ~${deltas[0]} each)`);
      agent.ws.close();
    },
    { debounceMs: 1 },
  );
});

test('a slow agent builds no backlog: while its socket is full, changes gather into one delta', async () => {
  await withGateway(
    async ({ port, store, state }) => {
      const agent = await connect(port, instArn(I1));
      await agent.next(60_000);
      // Stop reading, and place tasks whose records are large (big overrides) one flush at a time,
      // until far more than the socket buffers hold has changed.
      (agent.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
      const big = 'x'.repeat(256 * 1024);
      const tasks = 60;
      for (let n = 1; n <= tasks; n++) {
        const rec = task(tid(n), I1, 'RUNNING', 'PENDING');
        rec.overrides = { containerOverrides: [{ name: 'app', environment: [{ name: 'PAD', value: big }] }] };
        await store.create(keys.task(CLUSTER, tid(n)), rec);
        await new Promise((r) => setTimeout(r, 4));
      }
      (agent.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      const receiver = new DesiredStateReceiver();
      receiver.receive({ type: 'desiredState', seq: 1, containerInstanceArn: instArn(I1), tasks: [] });
      // Read until the agent's reconstructed list is the instance's desired state, not until a
      // quiet spell: on a loaded machine this process can be descheduled for longer than any
      // gap, which ended the reading halfway. The bound is a count (fewer messages than changes),
      // and a message is waited for as long as the machine needs.
      const want = summary(desiredStateFor(state, CLUSTER, I1));
      assert.equal(want.length, tasks);
      const got: ServerToAgentMessage[] = [];
      while (got.length < tasks && JSON.stringify(summary(receiver.current())) !== JSON.stringify(want)) {
        const m = await agent.next(60_000);
        got.push(m);
        assert.notEqual(receiver.receive(m as DesiredStateDeltaMessage).kind, 'resync');
      }
      assert.deepEqual(summary(receiver.current()), want);
      assert.ok(got.length < tasks, `${got.length} messages for ${tasks} changes`);
      assert.ok(got.some((m) => m.type === 'desiredStateDelta' && m.upsert.length > 1), 'a delta gathered several changes');
      agent.ws.close();
    },
    { pingIntervalMs: 60_000, debounceMs: 1 },
  );
});

test('a second connection for the same instance replaces the first, and the instance stays connected', async () => {
  await withGateway(async ({ port, state, gateway }) => {
    const old = await connect(port, I1); // a short id works too
    await old.next();
    const fresh = await connect(port, instArn(I1));
    const seen = await fresh.next();
    assert.equal(seen.type, 'desiredState');
    assert.equal((await old.closed).code, CLOSE_REPLACED);
    assert.equal(gateway.connectionCount(), 1);
    await waitUntil(() => state.instances.get(CLUSTER, I1)!.value.agentConnected === true, 'agentConnected=true');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(state.instances.get(CLUSTER, I1)!.value.agentConnected, true, 'the old socket closing does not mark it disconnected');
    fresh.ws.close();
  });
});

test('upgrades that are unsigned, badly signed or for unknown instances are refused before any socket opens', async () => {
  await withGateway(async ({ port, gateway }) => {
    await assert.rejects(connect(port, I1, { accessKeyId: KEY.accessKeyId, secretAccessKey: 'wrong' }), (e: { status: number; body: string }) => {
      assert.equal(e.status, 403);
      assert.equal(JSON.parse(e.body).__type, 'InvalidSignatureException');
      return true;
    });
    await assert.rejects(connect(port, I1, { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'x' }), (e: { status: number }) => e.status === 403);
    await assert.rejects(connect(port, 'e'.repeat(32)), (e: { status: number; body: string }) => {
      assert.equal(e.status, 404);
      assert.equal(JSON.parse(e.body).__type, 'InactiveInstanceException');
      return true;
    });
    const unsigned = new WebSocket(`ws://127.0.0.1:${port}${AGENT_CONNECT_PATH}?cluster=${CLUSTER}&containerInstance=${I1}`);
    unsigned.on('error', () => {}); // terminate() below aborts the refused handshake
    const status = await new Promise<number | undefined>((resolve) => {
      unsigned.once('unexpected-response', (_q, res) => resolve(res.statusCode));
      unsigned.once('open', () => resolve(undefined));
    });
    assert.equal(status, 403);
    unsigned.terminate();
    assert.equal(gateway.connectionCount(), 0);
  });
});

test('deregistering an instance closes its agent socket with an error message', async () => {
  await withGateway(async ({ port, store }) => {
    const agent = await connect(port, instArn(I2));
    await agent.next();
    await casUpdate<ContainerInstanceRecord>(store, keys.instance(CLUSTER, I2), (cur) => ({ ...cur!.value, status: 'INACTIVE', version: cur!.value.version + 1 }));
    const msg = await agent.next();
    assert.equal(msg.type, 'error');
    assert.equal(msg.type === 'error' && msg.code, 'InactiveInstanceException');
    assert.equal((await agent.closed).code, CLOSE_INACTIVE);
  });
});

test('an agent that stops answering pings is dropped and its instance marked disconnected', async () => {
  await withGateway(async ({ port, state }) => {
    const agent = await connect(port, instArn(I1));
    await agent.next();
    await waitUntil(() => state.instances.get(CLUSTER, I1)!.value.agentConnected === true, 'agentConnected=true');
    // Stop the client's automatic pong replies by pausing its socket reads.
    (agent.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await waitUntil(() => state.instances.get(CLUSTER, I1)!.value.agentConnected === false, 'agentConnected=false after missed pongs', 3000);
    agent.ws.terminate();
  });
});

test("the API server's request timeouts do not cut the agent channel: an upgraded socket outlives them many times over", async () => {
  const { store, state } = await fixture();
  const gateway = createAgentGateway({
    ctx: { state, clock: systemClock, log: createLogger('test', 'silent') },
    credentials: { lookup: (id) => (id === KEY.accessKeyId ? { secret: KEY.secretAccessKey, principal: { kind: 'user', iamResource: 'root' } } : undefined) },
    pingIntervalMs: 200,
  });
  // The real API server with timeouts a hundred times shorter than in production.
  const timeouts = { headersMs: 300, requestMs: 500, bodyIdleMs: 300 };
  const http = createHttpServer({
    apis: [],
    credentials: { lookup: () => undefined },
    accountId: ACCT,
    regions: new RegionPolicy('us-east-1', ['us-east-1']),
    log: createLogger('test', 'silent'),
    timeouts,
    onUpgrade: (req, socket, head) => gateway.handleUpgrade(req, socket, head),
  });
  const { port } = await http.listen(0, '127.0.0.1');
  try {
    const agent = await connect(port, instArn(I1));
    assert.equal(((await agent.next()) as DesiredStateMessage).type, 'desiredState');
    // Six times the whole-request timeout, with Node checking for expired requests all along.
    await new Promise((r) => setTimeout(r, 6 * timeouts.requestMs));
    assert.equal(agent.ws.readyState, WebSocket.OPEN, 'the agent channel is still open');
    await store.create(keys.task(CLUSTER, tid(7)), task(tid(7), I1, 'RUNNING', 'PENDING'));
    // (An empty instance gaining a task gets the full list rather than a delta.)
    const next = await agent.next();
    const sent = next.type === 'desiredState' ? next.tasks : (next as DesiredStateDeltaMessage).upsert;
    assert.deepEqual(sent.map((t) => suffix(t.taskArn)), ['7'], 'and it still carries desired state');
    // While a plain request that stalls is cut by the same server.
    const stalled = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += String(d)));
      s.on('close', () => resolve(got));
    });
    assert.match(stalled, /^HTTP\/1\.1 408 /);
    agent.ws.close();
    await agent.closed;
  } finally {
    await gateway.close();
    await http.close();
    state.stop();
  }
});
