/**
 * The agent channel's server end (api/agent/protocol.ts): a WebSocket per connected agent at
 * `GET /v1/agent/connect?cluster=<name>&containerInstance=<arn>`, SigV4-signed like an API call.
 *
 * The channel is level-triggered. On connect, and whenever anything in an instance's desired
 * state changes, the agent gets the FULL list of tasks it should run or stop
 * (`desiredStateFor`), never a delta, so a lost message, a reconnect or an agent restart needs
 * no special handling. Changes are noticed through the state cache's listener, debounced per
 * instance (a RunTask of ten tasks becomes one message), and a message identical to the last one
 * sent on that socket is not sent again.
 *
 * What makes a message different is only what the agent acts on: which tasks are listed, their
 * desiredStatus, definition and overrides. A task's own progress (the agent's RUNNING report,
 * container statuses) changes none of that, so it sends nothing; otherwise every report would
 * re-send the instance's whole list, O(tasks^2) bytes per instance. A task definition travels in
 * full the first time a socket needs it and afterwards as `{ taskDefinitionArn }` with
 * `taskDefinitionElided` set (the agent keeps the ones received on the connection,
 * ReceivedTaskDefinitions in api/agent/protocol.ts), so a list of a hundred tasks of one
 * definition stays small.
 *
 * While a socket is open its instance is `agentConnected`; the flag is written (compare-and-swap,
 * serialised per instance) on open and close, and the liveness controller corrects it when a
 * write was lost. WebSocket ping/pong is the heartbeat: a socket that misses a pong for one ping
 * interval is terminated. A second socket for the same instance replaces the first.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { AGENT_CONNECT_PATH, type AgentTask, type DesiredStateMessage, type ServerToAgentMessage } from '../api/agent/protocol';
import { clusterNameOf, taskDefinitionRefOf } from '../core/arn';
import { keys, type ContainerInstanceRecord, type TaskDefinitionRecord, type TaskRecord } from '../core/resources';
import { isTerminal } from '../core/task-status';
import { findInstance, tasksOnInstance } from '../control/container-instances';
import { registryCredentialsFrom } from '../control/secrets';
import type { ControlContext } from '../control/context';
import type { AgentConnections } from '../controllers/instance-liveness-controller';
import type { Clock, Logger } from '../lib';
import type { State, StateChange } from '../state/state';
import { casUpdate } from '../store/store';
import { authenticateUpgrade, type Credentials } from './http-server';

export const DEFAULT_PING_INTERVAL_MS = 10_000;
export const DEFAULT_DESIRED_STATE_DEBOUNCE_MS = 15;
/** WebSocket close codes (4000-4999 are the application's). */
export const CLOSE_REPLACED = 4000;
export const CLOSE_INACTIVE = 4001;
const CLOSE_GOING_AWAY = 1001;
/** Agents send nothing but pongs; anything large is a mistake or an attack. */
const MAX_INBOUND_BYTES = 64 * 1024;

function taskDefinitionOf(state: State, arn: string | undefined): TaskDefinitionRecord | undefined {
  const ref = arn ? taskDefinitionRefOf(arn) : undefined;
  if (!ref || ref.revision === undefined) return undefined;
  return state.taskDefinitions.get(ref.family, String(ref.revision).padStart(10, '0'))?.value;
}

/** Whether the agent must still act on a task: run it, or stop it (until it reports STOPPED). */
function wanted(t: TaskRecord): boolean {
  if (t.desiredStatus === 'RUNNING') return true;
  return t.desiredStatus === 'STOPPED' && !isTerminal(t.lastStatus);
}

/**
 * The full desired state of one instance, in taskArn order: the tasks placed on it that are
 * desired RUNNING, and those desired STOPPED that have not reported STOPPED yet. Pure over the
 * cache: the same state gives the same list.
 */
export function desiredStateFor(state: State, cluster: string, instanceId: string): AgentTask[] {
  const out: AgentTask[] = [];
  for (const t of tasksOnInstance(state, cluster, instanceId)) {
    const a = agentTaskOf(state, t);
    if (a) out.push(a);
  }
  return out.sort((x, y) => (x.taskArn < y.taskArn ? -1 : x.taskArn > y.taskArn ? 1 : 0));
}

/** One task as the agent gets it, or undefined when the agent need not hear of it. */
function agentTaskOf(state: State, t: TaskRecord): AgentTask | undefined {
  if (!wanted(t)) return undefined;
  let td: AgentTask['taskDefinition'] | undefined = taskDefinitionOf(state, t.taskDefinitionArn);
  if (!td) {
    // The definition is gone (deleted after the task was stopped). A task to run cannot be
    // described without it; one to stop still must reach the agent, which stops by ARN.
    if (t.desiredStatus === 'RUNNING') return undefined;
    td = { taskDefinitionArn: t.taskDefinitionArn, containerDefinitions: [] };
  }
  const a: AgentTask = {
    taskArn: t.taskArn,
    clusterArn: t.clusterArn,
    desiredStatus: t.desiredStatus as AgentTask['desiredStatus'],
    taskDefinition: td,
    version: t.version,
  };
  if (t.overrides) a.overrides = t.overrides;
  addNetworkAndRegistryAuth(state, t, a);
  return a;
}

/**
 * awsvpc tasks join the Wharf-managed Docker network of their subnet (the ENI attachment's
 * `subnetId`, from RunTask's networkConfiguration); containers with `repositoryCredentials` get
 * the secret it names resolved into registry credentials, so the agent never reads secrets.
 */
function addNetworkAndRegistryAuth(state: State, t: TaskRecord, a: AgentTask): void {
  const subnet = t.attachments?.find((x) => x.type === 'ElasticNetworkInterface')?.details?.find((d) => d.name === 'subnetId')?.value;
  if (subnet) a.network = { name: subnetNetworkName(subnet) };
  for (const c of a.taskDefinition.containerDefinitions ?? []) {
    const secretId = c.repositoryCredentials?.credentialsParameter;
    if (!secretId || !c.name) continue;
    const creds = registryCredentialsFrom({ state }, secretId);
    if (creds) (a.registryAuth ??= {})[c.name] = creds;
  }
}

/** The Docker network that stands for a subnet on every host. */
export function subnetNetworkName(subnetId: string): string {
  return `wharf-subnet-${subnetId}`;
}

/**
 * A task's entry, prepared once per task record (records are replaced, never changed, so a
 * WeakMap keyed by the record is exact): what it contributes to the signature, and its JSON with
 * the definition elided. Flushing an instance of a hundred tasks then joins strings.
 */
interface WireEntry {
  taskArn: string;
  taskDefinitionArn?: string;
  signature: string;
  /** JSON with `taskDefinition` elided; undefined when it must always go in full (no definition). */
  elided?: string;
}

/** Whether a task change can change what some agent is told (overrides never change after RunTask). */
function concernsAgent(prev: TaskRecord | undefined, cur: TaskRecord | undefined): boolean {
  if (!prev || !cur) return true;
  return (
    prev.wharf.instanceId !== cur.wharf.instanceId ||
    prev.desiredStatus !== cur.desiredStatus ||
    wanted(prev) !== wanted(cur) ||
    prev.taskDefinitionArn !== cur.taskDefinitionArn
  );
}

/**
 * The part of a desired-state list the agent acts on (not `version`, which moves with reports;
 * overrides are fixed when the task is created, so its ARN stands for them).
 */
function signatureOf(tasks: AgentTask[]): string {
  let s = '';
  for (const t of tasks) s += `${t.taskArn} ${t.desiredStatus} ${t.taskDefinition.taskDefinitionArn ?? ''} ${t.taskDefinition.containerDefinitions?.length ?? 0}\n`;
  return s;
}

export interface AgentGatewayOptions {
  ctx: Pick<ControlContext, 'state' | 'store' | 'clock' | 'log'>;
  credentials: Credentials;
  /** How often to ping each agent; a socket that missed the previous pong is dropped. */
  pingIntervalMs?: number;
  /** How long to gather state changes before sending an instance its desired state. */
  debounceMs?: number;
}

export interface AgentGateway {
  /** Hand `server.on('upgrade')` requests here. Answers anything not for the agent path with 404. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** For the instance liveness controller. */
  readonly connections: AgentConnections;
  /** Open agent sockets. */
  connectionCount(): number;
  /** Closes every socket (code 1001) without marking instances disconnected, and stops. */
  close(): Promise<void>;
}

interface Connection {
  ws: WebSocket;
  cluster: string;
  id: string;
  arn: string;
  seq: number;
  /** What the agent acts on in the list last sent (signatureOf), to skip identical messages. */
  lastSent?: string;
  /** Task definitions this socket has received in full (their changes concern it). */
  sentDefinitions: Set<string>;
  alive: boolean;
  timer?: { cancel(): void };
}

class Gateway implements AgentGateway {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_INBOUND_BYTES });
  private readonly conns = new Map<string, Connection>();
  private readonly lastChange = new Map<string, number>();
  private readonly listeners = new Set<(cluster: string, id: string) => void>();
  private readonly writes = new Map<string, Promise<void>>();
  /** Prepared wire entries by task record (null: the agent need not hear of that task). */
  private entries = new WeakMap<TaskRecord, WireEntry | null>();
  private readonly state: State;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private readonly pinger: NodeJS.Timeout;
  private readonly pingIntervalMs: number;
  /** When the heartbeat last ran (wall clock, like the interval timer). */
  private lastBeat: number;
  private readonly unsubscribe: () => void;
  private closed = false;

  readonly connections: AgentConnections = {
    isOpen: (id) => this.conns.has(id),
    lastChangeAt: (id) => this.lastChange.get(id),
    onChange: (l) => {
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    },
  };

  constructor(private readonly opts: AgentGatewayOptions) {
    this.state = opts.ctx.state;
    this.clock = opts.ctx.clock;
    this.log = opts.ctx.log.child({ component: 'agent-gateway' });
    this.debounceMs = opts.debounceMs ?? DEFAULT_DESIRED_STATE_DEBOUNCE_MS;
    this.unsubscribe = this.state.subscribe((c) => this.onStateChange(c));
    this.pingIntervalMs = opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.lastBeat = Date.now();
    this.pinger = setInterval(() => this.heartbeat(), this.pingIntervalMs);
    this.pinger.unref();
  }

  connectionCount(): number {
    return this.conns.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closed) return refuse(socket, 503, 'ServerException', 'The server is shutting down.');
    const url = new URL(req.url ?? '/', 'http://wharf.invalid');
    if (req.method !== 'GET' || url.pathname !== AGENT_CONNECT_PATH) {
      return refuse(socket, 404, 'UnknownOperationException', `No WebSocket endpoint at ${url.pathname}.`);
    }
    // Authenticate before looking anything up, so an unsigned caller learns nothing.
    const auth = authenticateUpgrade(req, this.opts.credentials);
    if (!auth.ok) return refuse(socket, 403, auth.code, auth.message);
    const ref = url.searchParams.get('containerInstance');
    if (!ref) return refuse(socket, 400, 'InvalidParameterException', 'The containerInstance query parameter is required.');
    const clusterName = clusterNameOf(url.searchParams.get('cluster') ?? undefined);
    const cluster = this.state.clusters.get('', clusterName)?.value;
    if (!cluster || cluster.status !== 'ACTIVE') return refuse(socket, 404, 'ClusterNotFoundException', 'Cluster not found.');
    const inst = findInstance({ state: this.state }, clusterName, ref)?.value;
    if (!inst || inst.status === 'INACTIVE') {
      // The agent's cue to register again without its old ARN.
      return refuse(socket, 404, 'InactiveInstanceException', `Container instance ${ref} is not registered (or was deregistered) in cluster ${clusterName}.`);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onOpen(ws, inst));
  }

  private onOpen(ws: WebSocket, inst: ContainerInstanceRecord): void {
    const { cluster, id } = inst.wharf;
    const conn: Connection = { ws, cluster, id, arn: inst.containerInstanceArn, seq: 0, sentDefinitions: new Set(), alive: true };
    const previous = this.conns.get(id);
    this.conns.set(id, conn);
    if (previous) previous.ws.close(CLOSE_REPLACED, 'replaced by a newer connection');
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('message', () => {
      // The agent reports over the ECS API; nothing is expected here.
    });
    ws.on('error', (err) => this.log.warn({ err, containerInstanceArn: conn.arn }, 'agent socket error'));
    ws.on('close', () => this.onClose(conn));
    this.log.info({ containerInstanceArn: conn.arn, replaced: previous !== undefined }, 'agent connected');
    this.changed(conn);
    this.flush(conn);
  }

  private onClose(conn: Connection): void {
    conn.timer?.cancel();
    conn.timer = undefined;
    if (this.conns.get(conn.id) !== conn) return; // replaced: the newer socket owns the instance
    this.conns.delete(conn.id);
    this.log.info({ containerInstanceArn: conn.arn }, 'agent disconnected');
    this.changed(conn);
  }

  /** Records an open/close, tells the liveness controller, and writes the flag. */
  private changed(conn: Connection): void {
    this.lastChange.set(conn.id, this.clock.now());
    for (const l of this.listeners) l(conn.cluster, conn.id);
    if (!this.closed) void this.syncConnected(conn.cluster, conn.id);
  }

  /**
   * Writes agentConnected = "a socket is open now", one write per instance at a time, so an
   * open racing a close always ends with the value that is true when the last write runs.
   */
  private syncConnected(cluster: string, id: string): Promise<void> {
    const prev = this.writes.get(id) ?? Promise.resolve();
    const next = prev.then(() => this.writeConnected(cluster, id)).catch((err) => {
      this.log.warn({ err, containerInstance: id }, 'writing agentConnected failed (the liveness controller will retry)');
    });
    this.writes.set(id, next);
    void next.then(() => {
      if (this.writes.get(id) === next) this.writes.delete(id);
    });
    return next;
  }

  private async writeConnected(cluster: string, id: string): Promise<void> {
    if (this.closed) return;
    const want = this.conns.has(id);
    const { revision } = await casUpdate<ContainerInstanceRecord>(this.opts.ctx.store, keys.instance(cluster, id), (cur) => {
      if (!cur || (cur.value.agentConnected ?? false) === want) return undefined;
      if (want && cur.value.status === 'INACTIVE') return undefined;
      return { ...cur.value, agentConnected: want, version: cur.value.version + 1, wharf: { ...cur.value.wharf, lastSeenAt: this.clock.now() } };
    });
    await this.state.waitFor(revision);
  }

  private onStateChange(c: StateChange): void {
    // A definition changed or went away: entries prepared with it are stale.
    if (c.kind === 'taskdefs') this.entries = new WeakMap();
    if (this.conns.size === 0) return;
    switch (c.kind) {
      case 'tasks': {
        const prev = c.previous?.value as TaskRecord | undefined;
        const cur = c.current?.value as TaskRecord | undefined;
        if (!concernsAgent(prev, cur)) return;
        const before = prev?.wharf?.instanceId;
        const after = cur?.wharf?.instanceId;
        for (const id of new Set([before, after])) {
          const conn = id ? this.conns.get(id) : undefined;
          if (conn) this.schedule(conn);
        }
        return;
      }
      case 'taskdefs': {
        const arn = ((c.current ?? c.previous)?.value as TaskDefinitionRecord | undefined)?.taskDefinitionArn;
        if (!arn) return;
        for (const conn of this.conns.values()) {
          if (!conn.sentDefinitions.has(arn)) continue;
          // Send the changed definition in full again, even if the list looks the same.
          conn.sentDefinitions.delete(arn);
          conn.lastSent = undefined;
          this.schedule(conn);
        }
        return;
      }
      case 'instances': {
        const conn = this.conns.get(c.child);
        if (!conn || conn.cluster !== c.parent) return;
        const rec = c.current?.value as ContainerInstanceRecord | undefined;
        if (!rec || rec.status === 'INACTIVE') {
          this.send(conn, { type: 'error', code: 'InactiveInstanceException', message: `Container instance ${conn.arn} was deregistered.` });
          conn.ws.close(CLOSE_INACTIVE, 'container instance deregistered');
        }
        return;
      }
      default:
        return;
    }
  }

  private schedule(conn: Connection): void {
    if (conn.timer || this.closed) return;
    conn.timer = this.clock.setTimeout(() => {
      conn.timer = undefined;
      this.flush(conn);
    }, this.debounceMs);
  }

  /** The task's prepared wire entry (made on first need, then reused until the record changes). */
  private entryOf(t: TaskRecord): WireEntry | null {
    const cached = this.entries.get(t);
    if (cached !== undefined) return cached;
    const task = agentTaskOf(this.state, t);
    let entry: WireEntry | null = null;
    if (task) {
      const arn = task.taskDefinition.taskDefinitionArn;
      const full = (task.taskDefinition.containerDefinitions?.length ?? 0) > 0;
      entry = { taskArn: task.taskArn, taskDefinitionArn: arn, signature: signatureOf([task]) };
      if (arn && full) entry.elided = JSON.stringify({ ...task, taskDefinition: { taskDefinitionArn: arn }, taskDefinitionElided: true });
    }
    this.entries.set(t, entry);
    return entry;
  }

  /** Sends the instance's desired state if it differs from what this socket last got. */
  private flush(conn: Connection): void {
    if (conn.ws.readyState !== WebSocket.OPEN || this.conns.get(conn.id) !== conn) return;
    // The previous message is still queued here (the agent reads slower than states change):
    // wait, and send whatever is current once it has gone. Each message is the full state, so
    // skipping the states in between loses nothing, and a slow agent costs neither this
    // process's memory nor a backlog of stale lists.
    if (conn.ws.bufferedAmount > 0) {
      this.schedule(conn);
      return;
    }
    const list: { t: TaskRecord; e: WireEntry }[] = [];
    for (const id of this.state.tasksByInstance.get(conn.id) ?? []) {
      const t = this.state.tasks.get(conn.cluster, id)?.value;
      const e = t && this.entryOf(t);
      if (e) list.push({ t: t!, e });
    }
    list.sort((x, y) => (x.e.taskArn < y.e.taskArn ? -1 : x.e.taskArn > y.e.taskArn ? 1 : 0));
    let signature = '';
    for (const { e } of list) signature += e.signature;
    if (signature === conn.lastSent) return;
    conn.lastSent = signature;
    const parts: string[] = [];
    for (const { t, e } of list) {
      if (e.elided !== undefined && conn.sentDefinitions.has(e.taskDefinitionArn!)) {
        parts.push(e.elided);
        continue;
      }
      if (e.elided !== undefined) conn.sentDefinitions.add(e.taskDefinitionArn!);
      parts.push(JSON.stringify(agentTaskOf(this.state, t)));
    }
    // The DesiredStateMessage, assembled from the prepared entries.
    const head: Omit<DesiredStateMessage, 'tasks'> = { type: 'desiredState', seq: ++conn.seq, containerInstanceArn: conn.arn };
    this.sendText(conn, `${JSON.stringify(head).slice(0, -1)},"tasks":[${parts.join(',')}]}`);
  }

  private send(conn: Connection, msg: ServerToAgentMessage): void {
    this.sendText(conn, JSON.stringify(msg));
  }

  private sendText(conn: Connection, text: string): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ws.send(text, (err) => {
      if (err) this.log.warn({ err, containerInstanceArn: conn.arn }, 'sending to agent failed');
    });
  }

  private heartbeat(): void {
    // After this process itself stalled (a long GC, a starved CPU), timers run before the
    // pongs that arrived meanwhile are read: judging now would drop every healthy agent at once.
    // Give them the next interval instead.
    const now = Date.now();
    const stalled = now - this.lastBeat > 1.5 * this.pingIntervalMs;
    this.lastBeat = now;
    for (const conn of this.conns.values()) {
      if (!conn.alive && !stalled) {
        this.log.warn({ containerInstanceArn: conn.arn }, 'agent missed a heartbeat; dropping its socket');
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pinger);
    this.unsubscribe();
    const open = [...this.conns.values()];
    await Promise.all(
      open.map(
        (conn) =>
          new Promise<void>((resolve) => {
            conn.timer?.cancel();
            if (conn.ws.readyState === WebSocket.CLOSED) return resolve();
            const t = setTimeout(() => conn.ws.terminate(), 1000);
            conn.ws.once('close', () => {
              clearTimeout(t);
              resolve();
            });
            conn.ws.close(CLOSE_GOING_AWAY, 'server shutting down');
          }),
      ),
    );
    await Promise.all([...this.writes.values()]);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/** Answers a refused upgrade with a plain HTTP error in the API's JSON error form. */
function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ __type: code, message });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json\r\n' +
      `x-amzn-ErrorType: ${code}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
      body,
  );
}

export function createAgentGateway(opts: AgentGatewayOptions): AgentGateway {
  return new Gateway(opts);
}
