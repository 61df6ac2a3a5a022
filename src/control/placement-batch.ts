/**
 * Group commit of placements. Every placeTasks call of a store (one region's API, or its
 * controllers' fenced view) goes through one PlacementBatcher: while a transaction is in flight,
 * new calls wait; when it has committed and the cache shows it, every call waiting is decided in
 * one synchronous pass over the cluster's snapshot, each seeing what the ones before it took
 * (InMemoryClusterSnapshot.applyPlacements), and all are written in one transaction. On etcd a
 * commit costs a Raft round trip whatever it carries, so this is what lets placements outrun the
 * commit latency (Nomad's plan queue and etcd's own batching do the same).
 *
 *   queue --(no txn in flight)--> round: decide each on one snapshot --> one txn --> cache --> answers
 *     ^                                                          |
 *     +--------- conflicted / deferred callers, first -----------+
 *
 * Each caller gets its own answer. A caller whose decision throws (its own bad input) is refused
 * alone. A conflict names one key (store contract): the callers whose writes or instances involve
 * it are taken out and decided again in the next round, on fresh state; the others are written
 * again at once with their decisions unchanged, the instances' usage recomputed without the
 * removed callers' reservations and still compared-and-swapped against the revisions the
 * decisions were made on, so nothing is ever overbooked or placed twice. A round stays under the
 * store's `maxTxnOps` (etcd's --max-txn-ops) and never writes one key twice; whoever does not fit
 * goes first in the next round.
 */
import { fits, reserve } from '../core/instance-resources';
import { keys, type InstanceUsageRecord, type Reservation } from '../core/resources';
import type { Resource } from '../core/shapes/ecs';
import type { InMemoryClusterSnapshot, PlacementResult } from '../scheduler';
import type { PlacementView } from '../state/placement-view';
import { StoreConflictError, txnWeight, type Store, type TxnOp } from '../store/store';
import { committed, type ControlContext } from './context';

/** What a round decided for one caller: its answer, its writes, what it takes of each instance. */
export interface Decision<R> {
  answer: R;
  /** Its writes other than instance usage (tasks, tokens, ...). */
  ops: TxnOp[];
  /** Per instance (capacity cluster and id): the reservations of the tasks it places there. */
  takes: { capacity: string; instanceId: string; reservation: Reservation }[];
  /** Makes its placements visible to the rest of the round (applied to the snapshot). */
  request: { group: string; service?: string; needs: { cpu: number; memory: number } };
  result: PlacementResult;
  capacity: string;
  /**
   * Whether its placements stay valid on an instance whose usage another writer changed, as long
   * as its reservations still fit there: true without placement constraints (strategies only
   * rank, and what they ranked on is a hint, not a promise; constraints such as distinctInstance
   * are promises about the instance's other tasks).
   */
  rebaseable: boolean;
}

/**
 * One caller's part: decide on the snapshot given (synchronously; the snapshot already shows the
 * round's earlier decisions) and answer either a decision to write or an answer that writes nothing.
 */
export type Decide<R> = (snapshot: InMemoryClusterSnapshot) => { write: Decision<R> } | { answer: R };

interface Pending<R> {
  ctx: ControlContext;
  capacity: string;
  decide: Decide<R>;
  attempts: number;
  resolve(answer: R): void;
  reject(err: unknown): void;
}

/** An instance's usage as the round's decisions found it, what the usage writes build on. */
interface InstanceBase {
  capacity: string;
  id: string;
  registrationRevision: number;
  usageRevision: number | undefined;
  usageVersion: number;
  remaining: Resource[];
}

interface Decided<R> {
  p: Pending<R>;
  d: Decision<R>;
  /** Every key its success depends on: its writes, and its instances' registration and usage. */
  keys: Set<string>;
}

/** Counters of every batcher in the process, for /metrics and the benchmarks. */
export const placementCommitStats = {
  /** Transactions that committed placements. */
  txns: 0,
  /** Callers answered by those transactions. */
  placements: 0,
  /** The largest number of callers one transaction answered. */
  largestBatch: 0,
  /** Transactions refused by a conflict. */
  conflicts: 0,
};

export const MAX_PLACEMENT_ATTEMPTS = 50;
/** Rebases of one round before its callers decide again instead. */
const MAX_REBASES = 8;

/** A txn the backend refused for its size, before writing anything (etcd's own words). */
function tooLarge(e: unknown): boolean {
  return e instanceof Error && /too many operations in txn request|request is too large|message larger than max/i.test(e.message);
}

export class PlacementBatcher {
  private queue: Pending<unknown>[] = [];
  private running = false;

  constructor(private readonly store: Store, private readonly view: PlacementView) {}

  /** Decides and commits one caller's placement in the next round; resolves with its answer. */
  submit<R>(ctx: ControlContext, capacity: string, decide: Decide<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ ctx, capacity, decide, attempts: 0, resolve, reject } as Pending<unknown>);
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const round = this.queue;
        this.queue = [];
        try {
          const again = await this.round(round);
          this.queue = [...again, ...this.queue];
        } catch (e) {
          // A bug of the round itself: its callers learn it rather than wait for ever.
          for (const p of round) p.reject(e);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** One round; answers the callers it can, and returns those to try again, in their order. */
  private async round(batch: Pending<unknown>[]): Promise<Pending<unknown>[]> {
    const bases = new Map<string, InstanceBase>();
    const decided: Decided<unknown>[] = [];
    const again: Pending<unknown>[] = [];
    const written = new Set<string>();
    const budget = this.store.maxTxnOps ?? Infinity;
    let weight = 0;
    const snapshots = new Map<string, InMemoryClusterSnapshot>();
    const overlaid = new Map<string, Set<string>>();
    try {
      for (const [i, p] of batch.entries()) {
        if (again.length > 0) {
          again.push(p);
          continue;
        }
        try {
          const room = decided.length > 0 ? budget - weight : Infinity;
          const x = this.decideOne(p, snapshots, overlaid, bases, written, room, i === batch.length - 1);
          if (x === 'later') again.push(p);
          else if (x) {
            weight += x.weight;
            decided.push(x.decided);
          }
        } catch (e) {
          p.reject(e);
        }
      }
    } finally {
      // The snapshot showed this round's decisions ahead of the store: from now on it shows the cache.
      for (const [capacity, ids] of overlaid) this.view.forget(capacity, ids);
    }
    let live = decided;
    let conflicted = false;
    let rebases = 0;
    while (live.length > 0) {
      try {
        const rev = await this.store.txn(this.opsOf(live, bases));
        await committed(live[0]!.p.ctx, rev);
        placementCommitStats.txns++;
        placementCommitStats.placements += live.length;
        placementCommitStats.largestBatch = Math.max(placementCommitStats.largestBatch, live.length);
        for (const x of live) x.p.resolve(x.d.answer);
        live = [];
      } catch (e) {
        if (e instanceof StoreConflictError) {
          placementCommitStats.conflicts++;
          conflicted = true;
          let out = live.filter((x) => x.d.ops.some((op) => op.key === e.key));
          if (out.length === 0 && live.some((x) => x.keys.has(e.key)) && ++rebases <= MAX_REBASES) {
            // An instance changed under the batch (another replica placed there): keep whoever
            // still fits on the instances as they are now, without deciding again.
            await committed(live[0]!.p.ctx, await this.store.revision());
            out = this.rebase(live, bases);
          } else if (out.length === 0) {
            // A key no caller claims (should not happen), or rebasing goes on: all decide again.
            out = live;
          }
          live = live.filter((x) => !out.includes(x));
          for (const x of out) {
            if (++x.p.attempts >= MAX_PLACEMENT_ATTEMPTS) x.p.reject(e);
            else again.push(x.p);
          }
        } else if (live.length > 1 && tooLarge(e)) {
          // Refused before anything was written: half now, the rest decided again next round.
          const half = Math.ceil(live.length / 2);
          again.push(...live.slice(half).map((x) => x.p));
          live = live.slice(0, half);
        } else {
          for (const x of live) x.p.reject(e);
          live = [];
        }
      }
    }
    if (conflicted && again.length > 0) {
      // Decide again only once the cache shows what won.
      try {
        await committed(again[0]!.ctx, await this.store.revision());
      } catch (e) {
        for (const p of again) p.reject(e);
        return [];
      }
    }
    return again;
  }

  /**
   * Decides one caller on the round's snapshot. Answers 'later' when its writes do not fit in
   * what is left of the txn (`room`) or write a key the round already writes; undefined when it
   * was answered without a write; otherwise its decision, now shown by the snapshot (unless
   * `last`: no one decides after it in this round).
   */
  private decideOne(
    p: Pending<unknown>,
    snapshots: Map<string, InMemoryClusterSnapshot>,
    overlaid: Map<string, Set<string>>,
    bases: Map<string, InstanceBase>,
    written: Set<string>,
    room: number,
    last: boolean,
  ): 'later' | undefined | { weight: number; decided: Decided<unknown> } {
    let snap = snapshots.get(p.capacity);
    if (!snap) snapshots.set(p.capacity, (snap = this.view.snapshot(p.capacity)));
    const out = p.decide(snap);
    if (!('write' in out)) {
      p.resolve(out.answer);
      return undefined;
    }
    const d = out.write;
    const fresh = new Set<string>();
    const keysOf = new Set<string>(d.ops.map((op) => op.key));
    for (const t of d.takes) {
      const u = keys.instanceUsage(t.capacity, t.instanceId);
      keysOf.add(u);
      keysOf.add(keys.instance(t.capacity, t.instanceId));
      if (!bases.has(u)) fresh.add(u);
    }
    // An instance new to the txn costs a check of its registration and a usage update (2).
    const weight = d.ops.reduce((n, op) => n + txnWeight(op), 0) + fresh.size * 3;
    if (weight > room || d.ops.some((op) => op.op !== 'check' && written.has(op.key))) return 'later';
    for (const t of d.takes) {
      const u = keys.instanceUsage(t.capacity, t.instanceId);
      if (!bases.has(u)) bases.set(u, this.baseOf(p.ctx, t.capacity, t.instanceId));
    }
    for (const op of d.ops) if (op.op !== 'check') written.add(op.key);
    // Nobody decides after the round's last caller: its placements need not be shown (a round of
    // one, SQLite's usual, then costs what a placement cost before group commit).
    if (!last) {
      let ids = overlaid.get(d.capacity);
      if (!ids) overlaid.set(d.capacity, (ids = new Set()));
      for (const pl of d.result.placements) ids.add(pl.instanceId);
      snap.applyPlacements(d.request, d.result);
    }
    return { weight, decided: { p, d, keys: keysOf } };
  }

  /**
   * After a conflict on an instance, with the cache now showing what won: moves the base of each
   * instance whose usage changed to its current usage when every caller on it may be rebased
   * and all their reservations still fit there; answers the callers that must decide again
   * (those on an instance whose registration changed, or that no longer holds them).
   */
  private rebase(live: Decided<unknown>[], bases: Map<string, InstanceBase>): Decided<unknown>[] {
    const ctx = live[0]!.p.ctx;
    const users = new Map<string, Decided<unknown>[]>();
    for (const x of live) {
      for (const t of x.d.takes) {
        const u = keys.instanceUsage(t.capacity, t.instanceId);
        const list = users.get(u) ?? [];
        if (list[list.length - 1] !== x) list.push(x);
        users.set(u, list);
      }
    }
    const out = new Set<Decided<unknown>>();
    for (const [u, on] of users) {
      const base = bases.get(u)!;
      const reg = ctx.state.instances.get(base.capacity, base.id);
      const use = ctx.state.usage.get(base.capacity, base.id);
      if (reg?.modRevision === base.registrationRevision && use?.modRevision === base.usageRevision) continue;
      let ok = reg?.modRevision === base.registrationRevision && on.every((x) => x.d.rebaseable);
      const now = ok ? this.baseOf(ctx, base.capacity, base.id) : undefined;
      let remaining = now?.remaining ?? [];
      for (const x of ok ? on : []) {
        for (const t of x.d.takes) {
          if (!ok || keys.instanceUsage(t.capacity, t.instanceId) !== u) continue;
          if (fits(remaining, t.reservation)) ok = false;
          else remaining = reserve(remaining, t.reservation);
        }
      }
      if (ok) bases.set(u, now!);
      else for (const x of on) out.add(x);
    }
    return live.filter((x) => out.has(x));
  }

  /** The instance's registration and usage as the cache shows them now (the decisions' basis). */
  private baseOf(ctx: ControlContext, capacity: string, id: string): InstanceBase {
    const reg = ctx.state.instances.get(capacity, id);
    if (!reg) throw new Error(`placement chose unknown instance ${id}`);
    const use = ctx.state.usage.get(capacity, id);
    return {
      capacity,
      id,
      registrationRevision: reg.modRevision,
      usageRevision: use?.modRevision,
      usageVersion: use?.value.version ?? 0,
      remaining: reg.value.remainingResources ?? [],
    };
  }

  /**
   * The txn of the callers still in: their writes, and each instance they use checked at the
   * registration revision and its usage compared-and-swapped from the base, less what they take.
   */
  private opsOf(live: Decided<unknown>[], bases: Map<string, InstanceBase>): TxnOp[] {
    const remaining = new Map<string, Resource[]>();
    for (const x of live) {
      for (const t of x.d.takes) {
        const u = keys.instanceUsage(t.capacity, t.instanceId);
        remaining.set(u, reserve(remaining.get(u) ?? bases.get(u)!.remaining, t.reservation));
      }
    }
    const ops: TxnOp[] = [];
    for (const x of live) ops.push(...x.d.ops);
    for (const [u, left] of remaining) {
      const b = bases.get(u)!;
      const value: InstanceUsageRecord = { remainingResources: left, version: b.usageVersion + 1 };
      ops.push({ op: 'check', key: keys.instance(b.capacity, b.id), expectedRevision: b.registrationRevision });
      ops.push(b.usageRevision === undefined ? { op: 'create', key: u, value } : { op: 'update', key: u, value, expectedRevision: b.usageRevision });
    }
    return ops;
  }
}

const batchers = new WeakMap<Store, WeakMap<PlacementView, PlacementBatcher>>();

/** The batcher of the context's store (one per store view and cache). */
export function placementBatcher(ctx: Pick<ControlContext, 'store' | 'placement'>): PlacementBatcher {
  let byView = batchers.get(ctx.store);
  if (!byView) batchers.set(ctx.store, (byView = new WeakMap()));
  let b = byView.get(ctx.placement);
  if (!b) byView.set(ctx.placement, (b = new PlacementBatcher(ctx.store, ctx.placement)));
  return b;
}
