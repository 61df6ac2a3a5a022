/**
 * Distributed mode: the replicas of one installation know each other through the store. Each
 * writes `replicas/<id>` (its endpoint and a heartbeat time) every `intervalMs`, removes it on a
 * clean shutdown, and reads everyone's every `intervalMs`. A replica is alive while its heartbeat
 * is younger than `deadAfterMs` (by the reader's clock: replicas are expected to keep their clocks
 * in step, as etcd members are). What it is used for: presence records of a dead replica stop
 * counting (controllers/agent-presence.ts), and agents are told every live replica's endpoint so
 * they can move when theirs goes away.
 *
 * Every heartbeat is a write, and on etcd a Raft proposal every member logs and every replica's
 * watch decodes: with nothing else going on they were all of etcd's proposals. Every 2 s (dead
 * after 6 s, three missed) rather than every second (dead after 5 s) took an idle `wharf up --ha`
 * (50 instances) from 71 to 53 CPU-ms/s for its three etcd members. A dead replica's presence
 * records stop counting at most 8 s after it died, still well inside the 30 s after which the
 * leader marks an instance without a channel disconnected.
 */
import type { Clock, Logger } from '../lib';
import type { Store } from '../store/store';

export interface ReplicaRecord {
  endpoint: string;
  /** Epoch ms of the last heartbeat. */
  heartbeatAt: number;
}

export const REPLICAS_PREFIX = 'replicas/';

/**
 * A registry record whose heartbeat is older than this is left out of what /healthz and `wharf
 * status` list: a replica killed (kill -9) never removes its record, and is no part of the
 * installation now.
 */
export const LISTED_FOR_MS = 10_000;

/** A replica as the registry lists it (/healthz `replicas`, cmd/server.ts). */
export interface ListedReplica {
  replica: string;
  endpoint: string;
  /** Seconds since its last heartbeat, by the reader's clock (never below 0). */
  heartbeatAgeSeconds: number;
}

/** Seconds from a heartbeat to now, to a tenth; 0 for a heartbeat stamped by a clock a little ahead. */
export const heartbeatAgeSeconds = (heartbeatAt: number, now: number): number => Math.max(0, Math.round((now - heartbeatAt) / 100) / 10);

export class ReplicaRegistry {
  private known = new Map<string, ReplicaRecord>();
  private timer: NodeJS.Timeout | undefined;
  private endpoint: string | undefined;
  /** When this replica's heartbeat last reached the store. */
  private lastWritten: number | undefined;
  private readonly intervalMs: number;
  private readonly deadAfterMs: number;

  constructor(
    private readonly o: { id: string; store: Store; clock: Clock; log: Logger; intervalMs?: number; deadAfterMs?: number },
  ) {
    this.intervalMs = o.intervalMs ?? 2000;
    this.deadAfterMs = o.deadAfterMs ?? 6000;
  }

  /** Starts heartbeating once the replica's endpoint is known. */
  async start(endpoint: string): Promise<void> {
    this.endpoint = endpoint;
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    try {
      await this.o.store.delete(REPLICAS_PREFIX + this.o.id);
    } catch {
      // gone already, or the store is: the heartbeat ages out either way
    }
  }

  alive(id: string): boolean {
    if (id === this.o.id) return true;
    const r = this.known.get(id);
    return r !== undefined && this.o.clock.now() - r.heartbeatAt < this.deadAfterMs;
  }

  /**
   * Why the store cannot be reached, when this replica's own heartbeat has not been written for
   * as long as others take it for dead (etcd without quorum: writes hang or fail); else undefined.
   */
  storeUnreachable(): string | undefined {
    if (this.lastWritten === undefined) return undefined;
    const age = this.o.clock.now() - this.lastWritten;
    return age >= this.deadAfterMs ? `the store has taken no heartbeat of this replica for ${Math.round(age / 1000)} s` : undefined;
  }

  /** Every live replica's endpoint, this one first. */
  endpoints(): string[] {
    const others = [...this.known].filter(([id]) => id !== this.o.id && this.alive(id)).map(([, r]) => r.endpoint);
    return [...(this.endpoint ? [this.endpoint] : []), ...others.sort()];
  }

  /**
   * The replicas whose heartbeat this replica read less than LISTED_FOR_MS ago (itself included,
   * once its first heartbeat is written): what /healthz tells `wharf status`, so that any one
   * replica's URL shows the whole installation.
   */
  listed(): ListedReplica[] {
    const now = this.o.clock.now();
    return [...this.known]
      .filter(([, r]) => now - r.heartbeatAt < LISTED_FOR_MS)
      .map(([replica, r]) => ({ replica, endpoint: r.endpoint, heartbeatAgeSeconds: heartbeatAgeSeconds(r.heartbeatAt, now) }))
      .sort((a, b) => a.endpoint.localeCompare(b.endpoint));
  }

  private async tick(): Promise<void> {
    try {
      const rec: ReplicaRecord = { endpoint: this.endpoint!, heartbeatAt: this.o.clock.now() };
      await this.o.store.txn([{ op: 'put', key: REPLICAS_PREFIX + this.o.id, value: rec }]);
      this.lastWritten = rec.heartbeatAt;
      const all = await this.o.store.list<ReplicaRecord>(REPLICAS_PREFIX);
      this.known = new Map(all.map((e) => [e.key.slice(REPLICAS_PREFIX.length), e.value]));
    } catch (err) {
      this.o.log.warn({ err }, 'replica heartbeat failed');
    }
  }
}
