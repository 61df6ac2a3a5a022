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
 * The gateway is transport only: what an instance is told comes from control/agent-desired-state.ts
 * (which resolves secrets), and it writes nothing to the store. Each socket that opens or closes
 * is a connection event (`connections.onEvent`); the instance liveness controller, the only
 * writer of `agentConnected`, turns those into the stored flag. WebSocket ping/pong is the heartbeat: a socket that misses a pong for one ping
 * interval is terminated. A second socket for the same instance, signed by the same key, replaces
 * the first (an agent restart); one signed by any other key is refused.
 *
 * Who may connect (control/agent-authorization.ts channelRefusal): the instance's own credential,
 * bound to it at registration, and the account's root key. A join token, another instance's
 * credential or a user with a policy is refused (403 AccessDeniedException, logged), before any
 * socket opens, so it never sees the instance's desired state or its secrets.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { AGENT_CONNECT_PATH, type AgentTask, type DesiredStateDeltaMessage, type ServerToAgentMessage } from '../api/agent/protocol';
import { clusterNameOf, iamArn, parseArn } from '../core/arn';
import { FARGATE_POOL } from '../core/fargate-pool';
import type { ContainerInstanceRecord, TaskDefinitionRecord, TaskRecord } from '../core/resources';
import { CHANNEL_OPERATION, channelRefusal } from '../control/agent-authorization';
import { findInstance } from '../control/container-instances';
import type { ControlContext } from '../control/context';
import type { AgentConnectionEvent, AgentConnections } from '../controllers/instance-liveness-controller';
import type { Clock, Logger } from '../lib';
import type { State, StateChange } from '../state/state';
import { authenticateUpgrade, type Credentials } from './request-identity';
import {
  changedForAgent,
  concernsAgent,
  elidable,
  fullText,
  instanceTask,
  instanceTaskIds,
  sentTaskOf,
  wireOf,
  type SentTask,
} from '../control/agent-desired-state';

export { desiredStateFor, subnetNetworkName } from '../control/agent-desired-state';

export const DEFAULT_PING_INTERVAL_MS = 10_000;
export const DEFAULT_DESIRED_STATE_DEBOUNCE_MS = 15;
/** WebSocket close codes (4000-4999 are the application's). */
export const CLOSE_REPLACED = 4000;
export const CLOSE_INACTIVE = 4001;
const CLOSE_GOING_AWAY = 1001;
/** Agents send nothing but pongs; anything large is a mistake or an attack. */
const MAX_INBOUND_BYTES = 64 * 1024;

export interface AgentGatewayOptions {
  ctx: Pick<ControlContext, 'state' | 'clock' | 'log' | 'secretCipher'>;
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
  /** Closes every socket (code 1001) without a `closed` event (instances stay connected), and stops. */
  close(): Promise<void>;
}

interface Connection {
  ws: WebSocket;
  cluster: string;
  id: string;
  arn: string;
  /** The key that signed the upgrade: only the same key may replace this socket. */
  accessKeyId: string;
  /** The seq of the last desired-state message sent on this socket (0: none yet). */
  seq: number;
  /**
   * What this socket has been told, by task id: the entry last sent for every task it lists now.
   * Undefined until the first (full) message, which is built from the instance's whole list.
   */
  sent?: Map<string, SentTask>;
  /** Sum of `chars` over `sent`: what re-listing the unchanged tasks in full would cost. */
  sentChars: number;
  /** Ids of tasks that changed since the last flush and may concern this socket. */
  dirty: Set<string>;
  /** Task definitions this socket has received in full (their changes concern it). */
  sentDefinitions: Set<string>;
  alive: boolean;
  timer?: { cancel(): void };
  /** When the last flush ran (clock ms): the next one waits until debounceMs after it. */
  lastFlushAt: number;
}

class Gateway implements AgentGateway {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_INBOUND_BYTES });
  private readonly conns = new Map<string, Connection>();
  private readonly lastEvents = new Map<string, AgentConnectionEvent>();
  private readonly listeners = new Set<(e: AgentConnectionEvent) => void>();
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
    lastEvent: (id) => this.lastEvents.get(id),
    onEvent: (l) => {
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
    const active = clusterName === FARGATE_POOL || cluster?.status === 'ACTIVE'; // the pool has no cluster record
    if (!active) return refuse(socket, 404, 'ClusterNotFoundException', 'Cluster not found.');
    const inst = findInstance({ state: this.state }, clusterName, ref)?.value;
    if (!inst || inst.status === 'INACTIVE') {
      // The agent's cue to register again without its old ARN.
      return refuse(socket, 404, 'InactiveInstanceException', `Container instance ${ref} is not registered (or was deregistered) in cluster ${clusterName}.`);
    }
    // Only the instance's own credential opens its channel (it carries the instance's secrets);
    // a second socket for an instance must be signed by the same key as the open one (the same
    // agent reconnecting, or restarted), never by another.
    const refusal = channelRefusal(auth.principal, inst) ?? this.secondSocketRefusal(inst.wharf.id, auth.accessKeyId);
    if (refusal) {
      this.log.warn(
        { accessKeyId: auth.accessKeyId, principalKind: auth.principal.kind, principal: auth.principal.iamResource, boundTo: auth.principal.kind === 'instance' ? auth.principal.containerInstanceArn : undefined, containerInstanceArn: inst.containerInstanceArn, operation: CHANNEL_OPERATION },
        `agent channel refused: ${refusal}`,
      );
      // The instance's ARN names the account and partition the caller's IAM ARN lives in.
      const at = parseArn(inst.containerInstanceArn);
      const who = at ? iamArn({ region: at.region, accountId: at.accountId }, auth.principal.iamResource) : auth.principal.iamResource;
      return refuse(socket, 403, 'AccessDeniedException', `User: ${who} is not authorized to perform: ecs:${CHANNEL_OPERATION} on resource: ${inst.containerInstanceArn} because ${refusal}`);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onOpen(ws, inst, auth.accessKeyId));
  }

  private secondSocketRefusal(id: string, accessKeyId: string): string | undefined {
    const open = this.conns.get(id);
    return open && open.accessKeyId !== accessKeyId ? 'another agent holds the channel of this container instance' : undefined;
  }

  private onOpen(ws: WebSocket, inst: ContainerInstanceRecord, accessKeyId: string): void {
    const { cluster, id } = inst.wharf;
    const conn: Connection = { ws, cluster, id, arn: inst.containerInstanceArn, accessKeyId, seq: 0, sentChars: 0, dirty: new Set(), sentDefinitions: new Set(), alive: true, lastFlushAt: -Infinity };
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
    this.emit(conn, 'opened');
    this.flush(conn);
  }

  private onClose(conn: Connection): void {
    conn.timer?.cancel();
    conn.timer = undefined;
    if (this.conns.get(conn.id) !== conn) return; // replaced: the newer socket owns the instance
    this.conns.delete(conn.id);
    this.log.info({ containerInstanceArn: conn.arn }, 'agent disconnected');
    if (!this.closed) this.emit(conn, 'closed');
  }

  /**
   * Tells the liveness controller a socket opened or closed. A socket closed by the server's own
   * shutdown is not an event: the instance's agent did not go away, this process did.
   */
  private emit(conn: Connection, kind: AgentConnectionEvent['kind']): void {
    const e: AgentConnectionEvent = { kind, cluster: conn.cluster, instanceId: conn.id, at: this.clock.now() };
    this.lastEvents.set(conn.id, e);
    for (const l of this.listeners) l(e);
  }

  private onStateChange(c: StateChange): void {
    if (this.conns.size === 0) return;
    switch (c.kind) {
      case 'tasks': {
        const prev = c.previous?.value as TaskRecord | undefined;
        const cur = c.current?.value as TaskRecord | undefined;
        if (!concernsAgent(prev, cur)) return;
        const before = prev?.wharf?.instanceId;
        const after = cur?.wharf?.instanceId;
        for (const id of new Set([before, after])) {
          // Instance ids are unique in the region; a task may run in another cluster than its
          // instance's (Fargate tasks on the pool), so the instance alone decides.
          const conn = id ? this.conns.get(id) : undefined;
          if (!conn) continue;
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
            conn.sent!.set(id, { ...e, resend: true });
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

  /**
   * A flush at most every debounceMs per socket, the first at once: a change after a quiet spell
   * (a RunTask) reaches the agent without waiting out the window, while a stream of changes
   * still goes out as one message per window. "At once" is the next turn of the event loop, so
   * the changes of one store transaction (delivered together) still travel together.
   */
  private schedule(conn: Connection): void {
    if (conn.timer || this.closed) return;
    const wait = Math.max(0, conn.lastFlushAt + this.debounceMs - this.clock.now());
    conn.timer = this.clock.setTimeout(() => {
      conn.timer = undefined;
      conn.lastFlushAt = this.clock.now();
      this.flush(conn);
    }, wait);
  }

  /** Task `id` as this socket's instance should list it, or null when it should not. */
  private current(conn: Connection, id: string): { id: string; task: AgentTask } | null {
    return instanceTask(this.state, conn.id, id, this.opts.ctx.secretCipher);
  }

  /**
   * Task `a` for this socket, its definition in full the first time the socket needs it, and the
   * record of having told it.
   */
  private tell(conn: Connection, a: AgentTask): { wire: string; sent: SentTask } {
    const elide = elidable(a);
    const elided = elide ? wireOf(a, true) : undefined;
    if (elided !== undefined && conn.sentDefinitions.has(a.taskDefinition.taskDefinitionArn!)) {
      return { wire: elided, sent: sentTaskOf(a, elided.length) };
    }
    if (elide) conn.sentDefinitions.add(a.taskDefinition.taskDefinitionArn!);
    const full = wireOf(a, false);
    return { wire: full, sent: sentTaskOf(a, elided?.length ?? full.length) };
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
      const cur = this.current(conn, id);
      if (!cur) {
        if (!prev) continue;
        sent.delete(id);
        conn.sentChars -= prev.chars;
        remove.push(prev.taskArn);
        removeChars += prev.taskArn.length + 3;
        continue;
      }
      if (prev && !changedForAgent(prev, cur.task)) continue;
      const told = this.tell(conn, cur.task);
      const key = cur.id;
      sent.set(key, told.sent);
      conn.sentChars += told.sent.chars - (prev?.chars ?? 0);
      upsertedChars += told.sent.chars;
      upserted.add(key);
      upsert.push(told.wire);
    }
    conn.dirty.clear();
    if (upsert.length === 0 && remove.length === 0) return; // nothing the agent acts on changed
    const seq = ++conn.seq;
    // A full list repeats every unchanged task; when those cost no more than naming the removed
    // ones, it is no larger than the delta (and simpler for the agent), so send that.
    if (conn.sentChars - upsertedChars <= removeChars) {
      const parts = upsert;
      for (const id of sent.keys()) {
        if (upserted.has(id)) continue;
        const cur = this.current(conn, id);
        if (cur) parts.push(this.tell(conn, cur.task).wire);
      }
      return this.sendText(conn, fullText(seq, conn.arn, parts));
    }
    const head: Omit<DesiredStateDeltaMessage, 'upsert' | 'remove'> = { type: 'desiredStateDelta', seq, baseSeq: seq - 1, containerInstanceArn: conn.arn };
    this.sendText(conn, `${JSON.stringify(head).slice(0, -1)},"upsert":[${upsert.join(',')}],"remove":${JSON.stringify(remove)}}`);
  }

  /** The first message on a socket: the instance's whole list, which `sent` starts from. */
  private sendFull(conn: Connection): void {
    const list: { id: string; task: AgentTask }[] = [];
    for (const id of instanceTaskIds(this.state, conn.id)) {
      const cur = this.current(conn, id);
      if (cur) list.push(cur);
    }
    list.sort((x, y) => (x.task.taskArn < y.task.taskArn ? -1 : x.task.taskArn > y.task.taskArn ? 1 : 0));
    const sent = new Map<string, SentTask>();
    const parts: string[] = [];
    conn.sentChars = 0;
    for (const { id, task } of list) {
      const told = this.tell(conn, task);
      sent.set(id, told.sent);
      conn.sentChars += told.sent.chars;
      parts.push(told.wire);
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
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/** Answers a refused upgrade with a plain HTTP error in the API's JSON error form. */
export function refuse(socket: Duplex, status: number, code: string, message: string): void {
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
