/**
 * Instance liveness: a container instance's stored `agentConnected` follows whether its agent
 * holds an open channel to this control plane.
 *
 *   socket open                          -> agentConnected = true
 *   no socket, for less than timeoutMs   -> unchanged (a reconnect is usually seconds away)
 *   no socket, for timeoutMs or longer   -> agentConnected = false
 *   instance INACTIVE                    -> agentConnected = false
 *
 * The gateway already flips the flag when a socket opens or closes; this loop is the level-
 * triggered backstop: after a control-plane restart every stored `true` has no socket behind it,
 * and a close racing a reconnect can leave the flag wrong. "No socket since" is the time of the
 * last open/close this process saw, or, for an instance it never saw, the time the controller
 * started. The scheduler only places on connected instances, so a stale `true` would send tasks
 * to a host that will never run them.
 */
import { keys, type ContainerInstanceRecord } from '../core/resources';
import { KeyedQueue, type Clock, type Logger } from '../lib';
import type { State } from '../state/state';
import { casUpdate, type Store } from '../store/store';

/** What the agent gateway knows about its sockets. */
export interface AgentConnections {
  isOpen(instanceId: string): boolean;
  /** Epoch ms of the last time a socket for the instance opened or closed here, if ever. */
  lastChangeAt(instanceId: string): number | undefined;
  /** Called after a socket for an instance opens or closes. Returns an unsubscribe function. */
  onChange(listener: (cluster: string, instanceId: string) => void): () => void;
}

export const DEFAULT_AGENT_TIMEOUT_MS = 30_000;

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
}

const keyOf = (cluster: string, id: string) => `${cluster}/${id}`;

export class InstanceLivenessController {
  private readonly queue: KeyedQueue;
  private readonly timeoutMs: number;
  private startedAt = 0;
  private unsubscribers: (() => void)[] = [];

  constructor(private readonly deps: InstanceLivenessDeps) {
    this.timeoutMs = deps.timeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS;
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
      this.deps.connections.onChange((cluster, id) => this.queue.add(keyOf(cluster, id))),
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
    const plan = planLiveness(this.observe(id), { status: rec.status, agentConnected: rec.agentConnected ?? false }, this.timeoutMs);
    await this.apply(cluster, id, plan);
    if (plan.recheckAfterMs !== undefined) this.queue.addAfter(key, plan.recheckAfterMs);
  }

  private observe(id: string): LivenessObservation {
    const socketOpen = this.deps.connections.isOpen(id);
    const since = this.deps.connections.lastChangeAt(id) ?? this.startedAt;
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
    if (changed) this.deps.log.info({ containerInstanceArn: changed.containerInstanceArn, agentConnected: want }, 'agent connectivity corrected');
  }
}
