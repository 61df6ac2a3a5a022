/**
 * Leader election on etcd, for the controllers of distributed mode: at most one replica acts at a
 * time, and one that loses the lead stops acting before another can start.
 *
 * The leader key (store key `leader`, so that FencedStore can check it through the Store
 * contract) is created in a transaction that succeeds only if it is absent, attached to a lease
 * of this replica. Its mod revision is the term's fence. The lease is kept alive by the client;
 * when etcd stops hearing from this replica, the lease expires after `ttlSeconds`, etcd deletes
 * the key, and a waiting replica's create succeeds.
 *
 * Stepping down first: this replica considers itself leader only while its last successful
 * keep-alive is younger than `ttlSeconds * stepDownFraction` (by its own clock). A successor can
 * be elected only after the full TTL has passed on etcd's side since that same keep-alive, so
 * the old leader has stopped (locally) before the new one starts. Clocks that pause (a stopped
 * process) break that timing, which is why every controller write is also fenced
 * (fenced-store.ts): a stale leader's writes are refused by etcd itself.
 */
import type { Etcd3, Lease, Watcher } from 'etcd3';
import type { Fence } from '../fenced-store';

export interface LeadershipOptions {
  /** Who this replica is (shown as the leader key's value). */
  id: string;
  /**
   * Lease TTL in seconds (default 4): a dead leader's lease expires at most this long after its
   * last keep-alive (sent every third of it), plus etcd's half-second expiry sweep; a waiting
   * replica, told of the key's deletion by a watch, takes over at once: within 5 s of the death.
   */
  ttlSeconds?: number;
  /** Share of the TTL after the last keep-alive at which this replica stops acting (default 0.5). */
  stepDownFraction?: number;
  onError?: (err: unknown) => void;
}

export interface Leadership {
  /** The fence of this replica's term while it leads; undefined otherwise. */
  current(): Fence | undefined;
  /** Called with true when this replica starts leading and false when it stops. */
  onChange(listener: (leading: boolean) => void): () => void;
  /** Who leads now, as etcd has it (a replica id), if anyone. */
  leader(): Promise<string | undefined>;
  /** Stops campaigning; a leader resigns at once (revokes its lease) so another takes over. */
  close(): Promise<void>;
}

export const LEADER_KEY = 'leader';

export class EtcdLeadership implements Leadership {
  private fence: Fence | undefined;
  private lease: Lease | undefined;
  private lastRenewedAt = 0;
  private closed = false;
  private readonly listeners = new Set<(leading: boolean) => void>();
  private readonly ttl: number;
  private readonly stepDownMs: number;
  private checkTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private readonly loop: Promise<void>;
  private readonly keyWatch: Promise<Watcher | undefined>;

  constructor(
    private readonly client: Etcd3,
    /** The raw etcd key of the leader record (the store's key prefix + LEADER_KEY). */
    private readonly rawKey: string,
    private readonly opts: LeadershipOptions,
  ) {
    this.ttl = opts.ttlSeconds ?? 4;
    this.stepDownMs = this.ttl * 1000 * (opts.stepDownFraction ?? 0.5);
    // A waiting replica campaigns the moment the leader key goes (its lease expired, or its
    // holder resigned), not at its next poll; the poll stays, for a watch that broke.
    this.keyWatch = this.client
      .watch()
      .key(rawKey)
      .create()
      .then((w) => {
        w.on('delete', () => {
          if (!this.fence) this.wake?.();
        });
        w.on('error', (err) => this.opts.onError?.(err));
        return w;
      })
      .catch((err: unknown) => {
        this.opts.onError?.(err);
        return undefined;
      });
    this.loop = this.campaign();
  }

  current(): Fence | undefined {
    if (this.fence && Date.now() - this.lastRenewedAt > this.stepDownMs) this.stepDown('keep-alive too old');
    return this.fence;
  }

  onChange(listener: (leading: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async leader(): Promise<string | undefined> {
    const res = await this.client.kv.range({ key: Buffer.from(this.rawKey) });
    return res.kvs[0]?.value.toString('utf8');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    const lease = this.lease;
    this.stepDown('closing');
    if (lease) await lease.revoke().catch(() => undefined);
    await this.loop;
    await (await this.keyWatch)?.cancel().catch(() => undefined);
  }

  private emit(leading: boolean): void {
    for (const l of this.listeners) {
      try {
        l(leading);
      } catch (err) {
        this.opts.onError?.(err);
      }
    }
  }

  private stepDown(why: string): void {
    if (this.checkTimer) clearInterval(this.checkTimer);
    this.checkTimer = undefined;
    const lease = this.lease;
    this.lease = undefined;
    lease?.release();
    if (!this.fence) return;
    this.fence = undefined;
    this.opts.onError?.(new Error(`stepped down: ${why}`));
    this.emit(false);
    this.wake?.();
  }

  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = undefined;
  }

  /** Try to become leader; while someone else leads, wait for the key to go, then try again. */
  private async campaign(): Promise<void> {
    while (!this.closed) {
      if (this.fence) {
        await this.sleep(this.stepDownMs);
        continue;
      }
      try {
        await this.tryOnce();
      } catch (err) {
        this.opts.onError?.(err);
        this.stepDown('campaign failed');
      }
      if (!this.fence && !this.closed) await this.sleep(Math.max(100, (this.ttl * 1000) / 10));
    }
  }

  private async tryOnce(): Promise<void> {
    // While someone leads, a look is enough: a read is no Raft proposal, whereas granting a lease,
    // the create that fails and the revoke are three (with their WAL writes and fsyncs on every
    // member), which the waiting replicas' polls cost etcd all the time.
    if ((await this.client.kv.range({ key: Buffer.from(this.rawKey), keys_only: true })).kvs.length > 0) return;
    const lease = this.client.lease(this.ttl);
    lease.on('lost', () => {
      if (this.lease === lease) this.stepDown('lease lost');
    });
    lease.on('keepaliveSucceeded', () => {
      if (this.lease === lease) this.lastRenewedAt = Date.now();
    });
    const leaseId = await lease.grant();
    const grantedAt = Date.now();
    const key = Buffer.from(this.rawKey);
    const res = await this.client.kv.txn({
      compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key, value: Buffer.from(this.opts.id), lease: leaseId } }],
      failure: [{ request_range: { key } }],
    });
    if (!res.succeeded || this.closed) {
      await lease.revoke().catch(() => undefined);
      return;
    }
    this.lease = lease;
    this.lastRenewedAt = grantedAt;
    this.fence = { key: LEADER_KEY, revision: Number(res.header.revision) };
    // A leader that stops hearing from etcd steps down by its own clock, not only on 'lost'.
    this.checkTimer = setInterval(() => this.current(), Math.max(50, this.stepDownMs / 5));
    this.checkTimer.unref();
    this.emit(true);
  }
}
