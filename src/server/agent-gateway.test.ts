import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { WebSocket } from 'ws';
import { AGENT_CONNECT_PATH, type DesiredStateMessage, type ServerToAgentMessage } from '../api/agent/protocol';
import { keys, type ClusterRecord, type ContainerInstanceRecord, type TaskDefinitionRecord, type TaskRecord } from '../core/resources';
import { createLogger, signRequest, systemClock } from '../lib';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import { casUpdate } from '../store/store';
import { CLOSE_INACTIVE, CLOSE_REPLACED, createAgentGateway, desiredStateFor, type AgentGateway } from './agent-gateway';

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

async function withGateway(fn: (g: { port: number; gateway: AgentGateway; store: MemoryStore; state: State }) => Promise<void>) {
  const { store, state } = await fixture();
  const gateway = createAgentGateway({
    ctx: { store, state, clock: systemClock, log: createLogger('test', 'silent') },
    credentials: { lookup: (id) => (id === KEY.accessKeyId ? { secret: KEY.secretAccessKey, isAgent: true } : undefined) },
    pingIntervalMs: 200,
  });
  const server: Server = createServer((_req, res) => res.end());
  server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    await fn({ port, gateway, store, state });
  } finally {
    await gateway.close();
    await new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    state.stop();
  }
}

test('an agent gets its desired state at once and again on every change that concerns it', async () => {
  await withGateway(async ({ port, store, state, gateway }) => {
    await store.create(keys.task(CLUSTER, tid(1)), task(tid(1), I1, 'RUNNING', 'PENDING'));
    const agent = await connect(port, instArn(I1));
    const first = (await agent.next()) as DesiredStateMessage;
    assert.equal(first.type, 'desiredState');
    assert.equal(first.seq, 1);
    assert.equal(first.containerInstanceArn, instArn(I1));
    assert.deepEqual(first.tasks.map((t) => t.taskArn.slice(-1)), ['1']);
    await waitUntil(() => state.instances.get(CLUSTER, I1)!.value.agentConnected === true, 'agentConnected=true');
    assert.equal(gateway.connectionCount(), 1);

    // Three tasks placed in a burst arrive as one message.
    for (const n of [2, 3, 4]) await store.create(keys.task(CLUSTER, tid(n)), task(tid(n), I1, 'RUNNING', 'PENDING'));
    const second = (await agent.next()) as DesiredStateMessage;
    assert.equal(second.seq, 2);
    assert.deepEqual(second.tasks.map((t) => t.taskArn.slice(-1)), ['1', '2', '3', '4']);
    assert.equal(await agent.quiet(100), undefined, 'the burst produced a single message');

    // A task on another instance, and a change that leaves the desired state as it was: silence.
    await store.create(keys.task(CLUSTER, tid(9)), task(tid(9), I2, 'RUNNING', 'PENDING'));
    await casUpdate<TaskRecord>(store, keys.task(CLUSTER, tid(1)), (cur) => ({ ...cur!.value, startedBy: 'someone' }));
    assert.equal(await agent.quiet(100), undefined);

    // StopTask: the task stays in the list, desired STOPPED, until it reports STOPPED.
    await casUpdate<TaskRecord>(store, keys.task(CLUSTER, tid(1)), (cur) => ({ ...cur!.value, desiredStatus: 'STOPPED', version: 2 }));
    const third = (await agent.next()) as DesiredStateMessage;
    assert.deepEqual(third.tasks.find((t) => t.taskArn.endsWith('1'))?.desiredStatus, 'STOPPED');
    await casUpdate<TaskRecord>(store, keys.task(CLUSTER, tid(1)), (cur) => ({ ...cur!.value, lastStatus: 'STOPPED', version: 3, wharf: { ...cur!.value.wharf, released: true } }));
    const fourth = (await agent.next()) as DesiredStateMessage;
    assert.deepEqual(fourth.tasks.map((t) => t.taskArn.slice(-1)), ['2', '3', '4']);
    assert.equal(fourth.seq, 4);

    agent.ws.close();
    await waitUntil(() => state.instances.get(CLUSTER, I1)!.value.agentConnected === false, 'agentConnected=false after close');
    assert.equal(gateway.connectionCount(), 0);
    assert.equal(gateway.connections.isOpen(I1), false);
    assert.ok(gateway.connections.lastChangeAt(I1) !== undefined);
  });
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
