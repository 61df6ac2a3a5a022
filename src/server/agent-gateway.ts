/**
 * The agent channel's server end (api/agent/protocol.ts): a WebSocket per connected agent at
 * `GET /v1/agent/connect?cluster=<name>&containerInstance=<arn>`, SigV4-signed like an API call.
 *
 * The channel is level-triggered per connection. On connect the agent gets the FULL list of tasks
 * it should run or stop (`desiredStateFor`). After that, each socket gets deltas against what IT
 * last received: the tasks that are new or changed, and the ARNs of those no longer listed
 * (`desiredStateDelta`, with `baseSeq` naming the message it applies on). A WebSocket delivers in
 * order or closes, so the chain is as exact as full lists; a reconnect or an agent restart is a
 * new socket and starts from a full list again, and an agent that ever sees a broken chain
 * reconnects. Full lists, as the channel sent before, cost O(tasks) per change and O(tasks^2) bytes
 * per instance as it filled (a hundred tasks placed ten at a time: ~100 messages growing to 100
 * tasks); a delta costs O(changed tasks) on both ends.
 *
 * How a flush stays O(changed): the state listener marks changed tasks (by id) dirty on the
 * connections of the instances they were and are on; the debounced flush (a RunTask of ten tasks
 * becomes one message) looks up only those, compares each with the entry this socket last got
 * (`Connection.sent`) and sends the difference. Nothing different: nothing is sent. A full list
 * is sent instead of a delta when it would be no larger (the unchanged tasks cost no more than
 * the removals, e.g. an instance going from zero tasks to some, or from some to none).
 *
 * What makes a task different is only what the agent acts on: whether it is listed, its
 * desiredStatus, definition and overrides. A task's own progress (the agent's RUNNING report,
 * container statuses) changes none of that, so it sends nothing. A task desired STOPPED stays
 * listed until it reports STOPPED (`wanted`). A task definition travels in full the first time a
 * socket needs it and afterwards as `{ taskDefinitionArn }` with `taskDefinitionElided` set (the
 * agent keeps the ones received on the connection, ReceivedTaskDefinitions in
 * api/agent/protocol.ts); when a definition the socket carried changes, the socket's tasks of
 * that definition are re-sent with it in full.
 *
 * Backpressure: while a socket still holds an unsent message (`bufferedAmount`), nothing more is
 * queued on it; dirty tasks keep gathering and go out as one delta once it drains, so a slow agent
 * costs neither this process's memory nor a backlog of stale states.
 *
 * While a socket is open its instance is `agentConnected`; the flag is written (compare-and-swap,
 * serialised per instance) on open and close, and the liveness controller corrects it when a
 * write was lost. WebSocket ping/pong is the heartbeat: a socket that misses a pong for one ping
 * interval is terminated. A second socket for the same instance replaces the first.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { AGENT_CONNECT_PATH, type AgentTask, type DesiredStateDeltaMessage, type DesiredStateMessage, type ServerToAgentMessage } from '../api/agent/protocol';
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
 * WeakMap keyed by the record is exact): what the agent acts on, and its JSON as it goes once the
 * socket has the definition. A flush then joins prepared strings.
 */
interface WireEntry {
  taskArn: string;
  taskDefinitionArn?: string;
  /** What the agent acts on (signatureOf); equal signatures need no message. */
  signature: string;
  /** The task's JSON with the definition elided, or in full when it has none to elide. */
  wire: string;
  /** `wire` is elided: a socket that has not carried the definition needs the full form. */
  elided: boolean;
}

/** Whether a task change can change what some agent is told (overrides never change after RunTask). */
function concernsAgent(prev: TaskRecord | undefined, cur: TaskRecord | undefined): boolean {
  if (!prev || !cur) return true;
  return (
    prev.wharf.instanceId !== cur.wharf.instanceId ||
    prev.wharf.released !== cur.wharf.released ||
    prev.desiredStatus !== cur.desiredStatus ||
    wanted(prev) !== wanted(cur) ||
    prev.taskDefinitionArn !== cur.taskDefinitionArn
  );
}

/**
 * The part of a task the agent acts on (not `version`, which moves with reports; overrides are
 * fixed when the task is created, so its ARN stands for them).
 */
function signatureOf(t: AgentTask): string {
  return `${t.taskArn} ${t.desiredStatus} ${t.taskDefinition.taskDefinitionArn ?? ''} ${t.taskDefinition.containerDefinitions?.length ?? 0}`;
}

/** A signature no task has: marks a sent entry that must go again (its definition changed). */
const RESEND = '';

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
  /** The seq of the last desired-state message sent on this socket (0: none yet). */
  seq: number;
  /**
   * What this socket has been told, by task id: the entry last sent for every task it lists now.
   * Undefined until the first (full) message, which is built from the instance's whole list.
   */
  sent?: Map<string, WireEntry>;
  /** Sum of `wire.length` over `sent`: what re-listing the unchanged tasks in full would cost. */
  sentChars: number;
  /** Ids of tasks that changed since the last flush and may concern this socket. */
  dirty: Set<string>;
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
    const conn: Connection = { ws, cluster, id, arn: inst.containerInstanceArn, seq: 0, sentChars: 0, dirty: new Set(), sentDefinitions: new Set(), alive: true };
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
          if (!conn || conn.cluster !== c.parent) continue;
          conn.dirty.add(c.child);
          this.schedule(conn);
        }
        return;
      }
      case 'taskdefs': {
        const arn = ((c.current ?? c.previous)?.value as TaskDefinitionRecord | undefined)?.taskDefinitionArn;
        if (!arn) return;
        for (const conn of this.conns.values()) {
          if (!conn.sentDefinitions.has(arn)) continue;
          // Send the changed definition in full again, with the socket's tasks that use it, even
          // though what they ask for looks the same. Rare (a deregistration), so a scan is fine.
          conn.sentDefinitions.delete(arn);
          for (const [id, e] of conn.sent ?? []) {
            if (e.taskDefinitionArn !== arn) continue;
            conn.sent!.set(id, { ...e, signature: RESEND });
            conn.dirty.add(id);
          }
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
      const elided = arn !== undefined && (task.taskDefinition.containerDefinitions?.length ?? 0) > 0;
      const wire = elided ? JSON.stringify({ ...task, taskDefinition: { taskDefinitionArn: arn }, taskDefinitionElided: true }) : JSON.stringify(task);
      entry = { taskArn: task.taskArn, taskDefinitionArn: arn, signature: signatureOf(task), wire, elided };
    }
    this.entries.set(t, entry);
    return entry;
  }

  /** The entry of task `id` as this socket's instance should list it, or null when it should not. */
  private currentEntry(conn: Connection, id: string): { t: TaskRecord; e: WireEntry } | null {
    const t = this.state.tasks.get(conn.cluster, id)?.value;
    // The same test as State.tasksByInstance: placed here and not released.
    if (!t || t.wharf.instanceId !== conn.id || t.wharf.released) return null;
    const e = this.entryOf(t);
    return e ? { t, e } : null;
  }

  /** The JSON of a task for this socket: its definition in full the first time the socket needs it. */
  private wireFor(conn: Connection, t: TaskRecord, e: WireEntry): string {
    if (!e.elided || conn.sentDefinitions.has(e.taskDefinitionArn!)) return e.wire;
    conn.sentDefinitions.add(e.taskDefinitionArn!);
    return JSON.stringify(agentTaskOf(this.state, t));
  }

  /** Sends what changed for this socket's instance since the socket was last told. */
  private flush(conn: Connection): void {
    if (conn.ws.readyState !== WebSocket.OPEN || this.conns.get(conn.id) !== conn) return;
    // The previous message is still queued here (the agent reads slower than states change):
    // wait, and send once it has gone. Dirty tasks keep gathering meanwhile, so the states in
    // between coalesce into one delta and a slow agent builds no backlog.
    if (conn.ws.bufferedAmount > 0) {
      this.schedule(conn);
      return;
    }
    if (!conn.sent) return this.sendFull(conn);
    if (conn.dirty.size === 0) return;
    const sent = conn.sent;
    const upsert: string[] = [];
    const upserted = new Set<string>();
    const remove: string[] = [];
    let upsertedChars = 0;
    let removeChars = 0;
    for (const id of conn.dirty) {
      const prev = sent.get(id);
      const cur = this.currentEntry(conn, id);
      if (!cur) {
        if (!prev) continue;
        sent.delete(id);
        conn.sentChars -= prev.wire.length;
        remove.push(prev.taskArn);
        removeChars += prev.taskArn.length + 3;
        continue;
      }
      if (prev?.signature === cur.e.signature) continue;
      // Keyed by the record's own id string, not the change's (a slice that would pin its key).
      const key = cur.t.wharf.id;
      sent.set(key, cur.e);
      conn.sentChars += cur.e.wire.length - (prev?.wire.length ?? 0);
      upsertedChars += cur.e.wire.length;
      upserted.add(key);
      upsert.push(this.wireFor(conn, cur.t, cur.e));
    }
    conn.dirty.clear();
    if (upsert.length === 0 && remove.length === 0) return; // nothing the agent acts on changed
    const seq = ++conn.seq;
    // A full list repeats every unchanged task; when those cost no more than naming the removed
    // ones, it is no larger than the delta (and simpler for the agent), so send that.
    if (conn.sentChars - upsertedChars <= removeChars) {
      const parts = upsert;
      for (const [id, e] of sent) if (!upserted.has(id)) parts.push(e.wire);
      return this.sendText(conn, fullText(seq, conn.arn, parts));
    }
    const head: Omit<DesiredStateDeltaMessage, 'upsert' | 'remove'> = { type: 'desiredStateDelta', seq, baseSeq: seq - 1, containerInstanceArn: conn.arn };
    this.sendText(conn, `${JSON.stringify(head).slice(0, -1)},"upsert":[${upsert.join(',')}],"remove":${JSON.stringify(remove)}}`);
  }

  /** The first message on a socket: the instance's whole list, which `sent` starts from. */
  private sendFull(conn: Connection): void {
    const list: { t: TaskRecord; e: WireEntry }[] = [];
    for (const id of this.state.tasksByInstance.get(conn.id) ?? []) {
      const cur = this.currentEntry(conn, id);
      if (cur) list.push(cur);
    }
    list.sort((x, y) => (x.e.taskArn < y.e.taskArn ? -1 : x.e.taskArn > y.e.taskArn ? 1 : 0));
    const sent = new Map<string, WireEntry>();
    const parts: string[] = [];
    conn.sentChars = 0;
    for (const { t, e } of list) {
      sent.set(t.wharf.id, e);
      conn.sentChars += e.wire.length;
      parts.push(this.wireFor(conn, t, e));
    }
    conn.sent = sent;
    conn.dirty.clear();
    this.sendText(conn, fullText(++conn.seq, conn.arn, parts));
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

/** A DesiredStateMessage assembled from prepared task JSON. */
function fullText(seq: number, containerInstanceArn: string, parts: string[]): string {
  const head: Omit<DesiredStateMessage, 'tasks'> = { type: 'desiredState', seq, containerInstanceArn };
  return `${JSON.stringify(head).slice(0, -1)},"tasks":[${parts.join(',')}]}`;
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
