/**
 * Instance liveness: a container instance's stored `agentConnected` follows whether its agent
 * holds an open channel to this control plane.
 *
 *   socket open                                   -> agentConnected = true
 *   no socket (closed, or never seen), for less
 *   than timeoutMs                                -> unchanged (a reconnect is usually seconds away)
 *   no socket for timeoutMs or longer             -> agentConnected = false
 *   instance INACTIVE                             -> agentConnected = false
 *
 * This controller is the only writer of `agentConnected`. The agent gateway (server/, transport
 * only) emits a connection event when a socket opens or closes; the event only enqueues the
 * instance, and reconcile reads the gateway's current view (level-triggered), so a close racing
 * a reconnect ends with whatever is true when the last reconcile runs. A socket that closed gets
 * the same grace as one never seen: an agent restart or update (kill and start, or a clean stop
 * by `wharf up`, whose tasks keep running to be adopted) closes it for a second or two, and a
 * `false` makes the service controller replace every service task on the instance, as ECS does
 * not for a moment's disconnection. After a control-plane restart every stored `true` has no
 * socket behind it, and its agent is usually reconnecting. "No socket since" is the time of the
 * last event this process saw, or the time the controller started. The scheduler only places on
 * connected instances, so a stale `true` would send tasks to a host that will never run them:
 * that is the price of the grace, bounded by timeoutMs.
 *
 * A Fargate pool host (cluster FARGATE_POOL) is Wharf's own capacity, so Wharf also decides when
 * it is gone: with no channel for `hostLostMs`, the tasks placed on it are recorded STOPPED
 * (stopCode TerminationNotice), as Fargate stops the tasks of a failed host; their resources are
 * released and services start replacements on the other pool hosts. Should the host come back,
 * its agent no longer finds those tasks in its desired state and stops and removes their
 * containers. An EC2 instance's tasks stay as they are: the user owns that host and decides.
 */
import { FARGATE_POOL } from '../core/fargate-pool';
import { release } from '../core/instance-resources';
import { keys, type ContainerInstanceRecord, type TaskRecord } from '../core/resources';
import { STOP, STOPPED_TASK_RETENTION_MS, isTerminal } from '../core/task-status';
import { tasksOnInstance } from '../control/container-instances';
import { usageOps } from '../control/instance-usage';
import { KeyedQueue, epochSeconds, type Clock, type Logger } from '../lib';
import type { State } from '../state/state';
import { StoreConflictError, casUpdate, type Store, type TxnOp } from '../store/store';

/** A socket of the agent channel opened or closed (the gateway's connection event). */
export interface AgentConnectionEvent {
  kind: 'opened' | 'closed';
  cluster: string;
  instanceId: string;
  /** Clock ms. */
  at: number;
}

/** What the agent gateway knows about its sockets. */
export interface AgentConnections {
  isOpen(instanceId: string): boolean;
  /** The last time a socket for the instance opened or closed here, if ever. */
  lastEvent(instanceId: string): AgentConnectionEvent | undefined;
  /** Called after a socket for an instance opens or closes. Returns an unsubscribe function. */
  onEvent(listener: (e: AgentConnectionEvent) => void): () => void;
}

export const DEFAULT_AGENT_TIMEOUT_MS = 30_000;
/** How long a Fargate pool host may have no channel before its tasks count as lost with it. */
export const DEFAULT_POOL_HOST_LOST_MS = 120_000;

/** What the channel says (the desired flag comes from here). */
export interface LivenessObservation {
  socketOpen: boolean;
  /** How long there has been no socket (meaningless while one is open). */
  disconnectedForMs: number;
}

/** What the store says. */
export interface LivenessRecord {
  status: string;
  agentConnected: boolean;
}

export interface LivenessPlan {
  /** The value to write, when the stored one is wrong. */
  setAgentConnected?: boolean;
  /** Look again after this long (the grace period has not run out yet). */
  recheckAfterMs?: number;
}

export function planLiveness(observed: LivenessObservation, stored: LivenessRecord, timeoutMs: number): LivenessPlan {
  if (stored.status === 'INACTIVE') return stored.agentConnected ? { setAgentConnected: false } : {};
  if (observed.socketOpen) return stored.agentConnected ? {} : { setAgentConnected: true };
  if (!stored.agentConnected) return {};
  if (observed.disconnectedForMs >= timeoutMs) return { setAgentConnected: false };
  return { recheckAfterMs: timeoutMs - observed.disconnectedForMs };
}

export interface InstanceLivenessDeps {
  state: State;
  store: Store;
  clock: Clock;
  log: Logger;
  connections: AgentConnections;
  /** How long an agent may be without a channel before its instance reads disconnected. */
  timeoutMs?: number;
  /** How long a Fargate pool host may be without a channel before its tasks are stopped. */
  poolHostLostMs?: number;
}

/** A task of a lost Fargate pool host, as recorded: STOPPED, its resources released. */
export function lostWithHost(t: TaskRecord, now: number): TaskRecord {
  const nowS = epochSeconds(now);
  return {
    ...t,
    desiredStatus: 'STOPPED',
    lastStatus: 'STOPPED',
    stopCode: STOP.hostLost.stopCode,
    stoppedReason: STOP.hostLost.reason,
    stoppingAt: t.stoppingAt ?? nowS,
    stoppedAt: nowS,
    executionStoppedAt: t.executionStoppedAt ?? nowS,
    containers: (t.containers ?? []).map((c) => (isTerminal(c.lastStatus ?? '') ? c : { ...c, lastStatus: 'STOPPED' })),
    attachments: (t.attachments ?? []).map((a) => ({ ...a, status: 'DELETED' })),
    version: t.version + 1,
    wharf: { ...t.wharf, released: true, expiresAt: now + STOPPED_TASK_RETENTION_MS },
  };
}

const keyOf = (cluster: string, id: string) => `${cluster}/${id}`;

export class InstanceLivenessController {
  private readonly queue: KeyedQueue;
  private readonly timeoutMs: number;
  private readonly poolHostLostMs: number;
  private startedAt = 0;
  private unsubscribers: (() => void)[] = [];

  constructor(private readonly deps: InstanceLivenessDeps) {
    this.timeoutMs = deps.timeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS;
    this.poolHostLostMs = deps.poolHostLostMs ?? DEFAULT_POOL_HOST_LOST_MS;
    this.queue = new KeyedQueue((k) => this.reconcile(k), deps.clock, {
      onError: (key, err) => deps.log.warn({ err, instance: key }, 'instance liveness reconcile failed'),
    });
  }

  start(): void {
    this.startedAt = this.deps.clock.now();
    this.unsubscribers.push(
      this.deps.state.subscribe((c) => {
        if (c.kind === 'instances' && c.current) this.queue.add(keyOf(c.parent, c.child));
      }),
      this.deps.connections.onEvent((e) => this.queue.add(keyOf(e.cluster, e.instanceId))),
    );
    for (const e of this.deps.state.instances.all()) this.queue.add(keyOf(e.value.wharf.cluster, e.value.wharf.id));
  }

  stop(): void {
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
    this.queue.stop();
  }

  /** Resolves when no reconcile is waiting or running (for tests). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Reads the instance and the channel, plans, applies. `key` is `<cluster>/<instanceId>`. */
  async reconcile(key: string): Promise<void> {
    const slash = key.lastIndexOf('/');
    const cluster = key.slice(0, slash);
    const id = key.slice(slash + 1);
    const rec = this.deps.state.instances.get(cluster, id)?.value;
    if (!rec) return;
    const observedAt = this.deps.clock.now();
    const observed = this.observe(id);
    const plan = planLiveness(observed, { status: rec.status, agentConnected: rec.agentConnected ?? false }, this.timeoutMs);
    let recheck = plan.recheckAfterMs;
    if (cluster === FARGATE_POOL && !observed.socketOpen && observed.disconnectedForMs < this.poolHostLostMs) {
      // Tasks may still be placed here until the instance reads disconnected, so look again at
      // the end of the grace period whether or not it holds any now.
      recheck = Math.min(recheck ?? Infinity, this.poolHostLostMs - observed.disconnectedForMs);
    }
    await this.apply(cluster, id, plan);
    if (cluster === FARGATE_POOL && !observed.socketOpen && observed.disconnectedForMs >= this.poolHostLostMs) await this.stopLostTasks(rec);
    // The delays were planned at observedAt; the writes above took time of their own.
    if (recheck !== undefined) this.queue.addAfter(key, Math.max(0, observedAt + recheck - this.deps.clock.now()));
  }

  /**
   * Records every task still live on the lost pool host `rec` STOPPED (lostWithHost) and gives
   * their resources back to it, in one transaction, retried when something else wrote first.
   */
  private async stopLostTasks(rec: ContainerInstanceRecord): Promise<void> {
    const { state, store } = this.deps;
    const cluster = rec.wharf.cluster;
    const id = rec.wharf.id;
    for (let attempt = 0; ; attempt++) {
      const live = tasksOnInstance(state, id).filter((t) => !isTerminal(t.lastStatus));
      if (live.length === 0) return;
      const now = this.deps.clock.now();
      const ops: TxnOp[] = [];
      let remaining = state.instances.get(cluster, id)?.value.remainingResources;
      for (const t of live) {
        const e = state.tasks.get(t.wharf.cluster, t.wharf.id)!;
        ops.push({ op: 'update', key: keys.task(t.wharf.cluster, t.wharf.id), value: lostWithHost(t, now), expectedRevision: e.modRevision });
        if (remaining && t.wharf.reservation && !t.wharf.released) remaining = release(remaining, t.wharf.reservation);
      }
      if (remaining) ops.push(...usageOps({ state }, cluster, id, remaining));
      try {
        await state.waitFor(await store.txn(ops));
        this.deps.log.warn({ containerInstanceArn: rec.containerInstanceArn, stoppedTasks: live.length }, 'Fargate pool host lost: its tasks are stopped');
        return;
      } catch (e) {
        if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
        await state.waitFor(await store.revision());
      }
    }
  }

  private observe(id: string): LivenessObservation {
    const socketOpen = this.deps.connections.isOpen(id);
    const last = this.deps.connections.lastEvent(id);
    const since = last?.at ?? this.startedAt;
    return { socketOpen, disconnectedForMs: Math.max(0, this.deps.clock.now() - since) };
  }

  private async apply(cluster: string, id: string, plan: LivenessPlan): Promise<void> {
    const want = plan.setAgentConnected;
    if (want === undefined) return;
    let changed: ContainerInstanceRecord | undefined;
    await casUpdate<ContainerInstanceRecord>(this.deps.store, keys.instance(cluster, id), (cur) => {
      changed = undefined;
      // Re-check against the stored record: the plan was made from the cache.
      if (!cur || (cur.value.agentConnected ?? false) === want) return undefined;
      if (want && cur.value.status === 'INACTIVE') return undefined;
      changed = { ...cur.value, agentConnected: want, version: cur.value.version + 1, wharf: { ...cur.value.wharf, lastSeenAt: this.deps.clock.now() } };
      return changed;
    });
    if (changed) this.deps.log.info({ containerInstanceArn: changed.containerInstanceArn, agentConnected: want }, 'agentConnected written');
  }
}
