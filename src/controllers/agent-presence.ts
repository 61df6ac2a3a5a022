/**
 * Distributed mode: agent channels on every replica, as the leader's liveness controller sees them.
 *
 * An agent holds its channel on one replica, and only that replica's gateway sees the socket. The
 * liveness controller (the only writer of `agentConnected`) runs on the leader. So each replica
 * publishes its sockets as presence records (`presence/<instance id>` = which replica, since
 * when; PresencePublisher), and the leader reads them together with its own sockets
 * (ClusterAgentConnections). A presence record counts only while its replica is alive (its
 * heartbeat is fresh, cmd/replicas.ts): a replica that dies takes its records' truth with it, and
 * its agents, which move to another replica, are published there again.
 *
 * A remote channel that goes (record deleted, replica dead, or moved to a replica not yet alive
 * here) is a close at the time it was noticed, so the liveness controller gives it the same grace
 * as a local close. Being alive is read from a registry the leader refreshes every few seconds,
 * so a record can name a replica that has just started and whose heartbeat the leader has not
 * read yet: the sweep looks at every record again and tells the controller when it starts
 * counting, as well as when it stops.
 */
import { keys, type AgentPresenceRecord } from '../core/resources';
import type { Clock, Logger } from '../lib';
import type { State } from '../state/state';
import { StoreConflictError, type Store } from '../store/store';
import type { AgentConnectionEvent, AgentConnections } from './instance-liveness-controller';

/** Writes this replica's sockets into the store, one record per instance, as they open and close. */
export class PresencePublisher {
  private readonly unsubscribe: () => void;
  /** One write at a time per instance, in event order (an open racing its own close). */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    private readonly o: { replica: string; store: Store; connections: AgentConnections; clock: Clock; log: Logger },
  ) {
    this.unsubscribe = o.connections.onEvent((e) => this.enqueue(e));
  }

  stop(): void {
    this.unsubscribe();
  }

  /** Resolves when every write queued so far is done (tests). */
  async idle(): Promise<void> {
    await Promise.all(this.chains.values());
  }

  private enqueue(e: AgentConnectionEvent): void {
    const prev = this.chains.get(e.instanceId) ?? Promise.resolve();
    const next = prev
      .then(() => this.write(e))
      .catch((err: unknown) => this.o.log.warn({ err, instance: e.instanceId }, 'publishing agent presence failed (the leader sees the socket as gone)'));
    this.chains.set(e.instanceId, next);
    void next.then(() => {
      if (this.chains.get(e.instanceId) === next) this.chains.delete(e.instanceId);
    });
  }

  private async write(e: AgentConnectionEvent): Promise<void> {
    const key = keys.agentPresence(e.instanceId);
    // Decide by what is true now, not by the event: a close followed by a reopen ends open.
    const open = this.o.connections.isOpen(e.instanceId);
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await this.o.store.get<AgentPresenceRecord>(key);
      try {
        if (open) {
          if (cur?.value.replica === this.o.replica) return;
          const rec: AgentPresenceRecord = { replica: this.o.replica, cluster: e.cluster, openedAt: this.o.clock.now() };
          if (cur) await this.o.store.update(key, rec, cur.modRevision);
          else await this.o.store.create(key, rec);
          return;
        }
        // Closed here: remove the record only if it is still ours (the agent may already have
        // reopened its channel on another replica, which wrote its own).
        if (!cur || cur.value.replica !== this.o.replica) return;
        await this.o.store.delete(key, cur.modRevision);
        return;
      } catch (err) {
        if (!(err instanceof StoreConflictError)) throw err;
      }
    }
  }
}

/**
 * The liveness controller's view in distributed mode: an instance's channel is open if this
 * replica holds it, or a live replica's presence record says it holds it.
 */
export class ClusterAgentConnections implements AgentConnections {
  private readonly listeners = new Set<(e: AgentConnectionEvent) => void>();
  private readonly unsubscribes: (() => void)[] = [];
  private sweep: NodeJS.Timeout | undefined;
  /** Instances seen open through a remote replica at the last look, to notice changes. */
  private readonly remoteOpen = new Set<string>();
  /** When each instance's remote channel was last noticed going (not reopened remotely since). */
  private readonly remoteClosed = new Map<string, AgentConnectionEvent>();

  constructor(
    private readonly o: {
      replica: string;
      local: AgentConnections;
      state: State;
      /** Whether a replica's heartbeat is fresh. */
      replicaAlive: (replica: string) => boolean;
      clock: Clock;
      /** How often to look at the replicas again (records of a replica that died, or came alive). */
      sweepMs?: number;
    },
  ) {
    this.unsubscribes.push(o.local.onEvent((e) => this.emit(e)));
    this.unsubscribes.push(
      o.state.subscribe((c) => {
        if (c.kind !== 'presence') return;
        const rec = (c.current ?? c.previous)?.value as AgentPresenceRecord | undefined;
        if (!rec) return;
        this.look(c.child, rec.cluster);
        // Every change is worth a reconcile, whether or not it changed what counts here.
        this.emit({ kind: this.isOpen(c.child) ? 'opened' : 'closed', cluster: rec.cluster, instanceId: c.child, at: o.clock.now() });
      }),
    );
    this.sweep = setInterval(() => this.lookAgain(), o.sweepMs ?? 1000);
    this.sweep.unref();
  }

  stop(): void {
    if (this.sweep) clearInterval(this.sweep);
    for (const u of this.unsubscribes) u();
  }

  isOpen(instanceId: string): boolean {
    return this.o.local.isOpen(instanceId) || this.remote(instanceId) !== undefined;
  }

  lastEvent(instanceId: string): AgentConnectionEvent | undefined {
    const local = this.o.local.lastEvent(instanceId);
    const rec = this.remote(instanceId);
    const remote: AgentConnectionEvent | undefined = rec ? { kind: 'opened', cluster: rec.cluster, instanceId, at: rec.openedAt } : this.remoteClosed.get(instanceId);
    if (!remote) return local;
    return !local || remote.at > local.at ? remote : local;
  }

  onEvent(listener: (e: AgentConnectionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The presence record of another, live replica holding the instance's channel. */
  private remote(instanceId: string): AgentPresenceRecord | undefined {
    const rec = this.o.state.agentPresence.get('', instanceId)?.value;
    if (!rec || rec.replica === this.o.replica || !this.o.replicaAlive(rec.replica)) return undefined;
    return rec;
  }

  /** Notes whether the instance's remote channel counts now; true if that changed. */
  private look(instanceId: string, cluster: string): boolean {
    const open = this.remote(instanceId) !== undefined;
    if (open === this.remoteOpen.has(instanceId)) return false;
    if (open) {
      this.remoteOpen.add(instanceId);
      this.remoteClosed.delete(instanceId);
    } else {
      this.remoteOpen.delete(instanceId);
      this.remoteClosed.set(instanceId, { kind: 'closed', cluster, instanceId, at: this.o.clock.now() });
    }
    return true;
  }

  private emit(e: AgentConnectionEvent): void {
    for (const l of this.listeners) l(e);
  }

  /** Replicas die and come alive without a presence change: look at every record again. */
  private lookAgain(): void {
    // (A deleted record was already seen by the state listener.)
    for (const [id, entry] of this.o.state.agentPresence.children('')) {
      if (this.look(id, entry.value.cluster)) this.emit({ kind: this.remoteOpen.has(id) ? 'opened' : 'closed', cluster: entry.value.cluster, instanceId: id, at: this.o.clock.now() });
    }
    // A deregistered instance's close is no longer anyone's concern.
    for (const [id, e] of this.remoteClosed) if (!this.o.state.instances.get(e.cluster, id)) this.remoteClosed.delete(id);
  }
}
