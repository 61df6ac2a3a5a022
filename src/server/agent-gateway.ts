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
    if (!wanted(t)) continue;
    let td: AgentTask['taskDefinition'] | undefined = taskDefinitionOf(state, t.taskDefinitionArn);
    if (!td) {
      // The definition is gone (deleted after the task was stopped). A task to run cannot be
      // described without it; one to stop still must reach the agent, which stops by ARN.
      if (t.desiredStatus === 'RUNNING') continue;
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
    out.push(a);
  }
  return out.sort((x, y) => (x.taskArn < y.taskArn ? -1 : x.taskArn > y.taskArn ? 1 : 0));
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
  /** JSON of the task list last sent, to skip identical messages. */
  lastSent?: string;
  /** Task definitions the last message carried (their changes concern this socket). */
  taskDefinitionArns: Set<string>;
  alive: boolean;
  timer?: { cancel(): void };
}

class Gateway implements AgentGateway {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_INBOUND_BYTES });
  private readonly conns = new Map<string, Connection>();
  private readonly lastChange = new Map<string, number>();
  private readonly listeners = new Set<(cluster: string, id: string) => void>();
  private readonly writes = new Map<string, Promise<void>>();
  private readonly state: State;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private readonly pinger: NodeJS.Timeout;
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
    this.pinger = setInterval(() => this.heartbeat(), opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS);
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
    const conn: Connection = { ws, cluster, id, arn: inst.containerInstanceArn, seq: 0, taskDefinitionArns: new Set(), alive: true };
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
    if (this.conns.size === 0) return;
    switch (c.kind) {
      case 'tasks': {
        const before = (c.previous?.value as TaskRecord | undefined)?.wharf?.instanceId;
        const after = (c.current?.value as TaskRecord | undefined)?.wharf?.instanceId;
        for (const id of new Set([before, after])) {
          const conn = id ? this.conns.get(id) : undefined;
          if (conn) this.schedule(conn);
        }
        return;
      }
      case 'taskdefs': {
        const arn = ((c.current ?? c.previous)?.value as TaskDefinitionRecord | undefined)?.taskDefinitionArn;
        if (!arn) return;
        for (const conn of this.conns.values()) if (conn.taskDefinitionArns.has(arn)) this.schedule(conn);
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

  /** Sends the instance's desired state if it differs from what this socket last got. */
  private flush(conn: Connection): void {
    if (conn.ws.readyState !== WebSocket.OPEN || this.conns.get(conn.id) !== conn) return;
    const tasks = desiredStateFor(this.state, conn.cluster, conn.id);
    const body = JSON.stringify(tasks);
    if (body === conn.lastSent) return;
    conn.lastSent = body;
    conn.taskDefinitionArns = new Set(tasks.map((t) => t.taskDefinition.taskDefinitionArn!).filter(Boolean));
    const msg: DesiredStateMessage = { type: 'desiredState', seq: ++conn.seq, containerInstanceArn: conn.arn, tasks };
    this.send(conn, msg);
  }

  private send(conn: Connection, msg: ServerToAgentMessage): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ws.send(JSON.stringify(msg), (err) => {
      if (err) this.log.warn({ err, containerInstanceArn: conn.arn }, 'sending to agent failed');
    });
  }

  private heartbeat(): void {
    for (const conn of this.conns.values()) {
      if (!conn.alive) {
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
