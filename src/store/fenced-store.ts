/**
 * A Store view whose every write also checks a fence: the leader key at the revision this replica
 * was elected with. In distributed mode the controllers (services, liveness, reaper, ...) write
 * through it, so a replica that lost its leadership without noticing yet (a long pause, a cut
 * network) cannot act on the state any more: etcd refuses its writes, because a new leader's
 * election rewrote the key. The replica learns it as a FencedError and stops its controllers.
 *
 * Reads and watches pass through unchanged.
 */
import { StoreConflictError, type Store, type StoreEntry, type TxnOp, type Watcher, type WatchEvent, type WatchOptions } from './store';

/** The leader key and the revision this replica's term holds it at. */
export interface Fence {
  key: string;
  revision: number;
}

/** A write refused because this replica does not lead (or no longer does). */
export class FencedError extends Error {
  constructor(readonly fence: Fence | undefined) {
    super(fence ? `this replica no longer leads: ${fence.key} moved past revision ${fence.revision}` : 'this replica does not lead');
    this.name = 'FencedError';
  }
}

export class FencedStore implements Store {
  /** `fence()` answers the current term's fence, or undefined while this replica does not lead. */
  constructor(private readonly inner: Store, private readonly fence: () => Fence | undefined) {}

  /** One less than the inner store's: the fence check is one more condition. */
  get maxTxnOps(): number | undefined {
    return this.inner.maxTxnOps === undefined ? undefined : this.inner.maxTxnOps - 1;
  }

  get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined> {
    return this.inner.get<T>(key);
  }

  list<T = unknown>(prefix: string): Promise<StoreEntry<T>[]> {
    return this.inner.list<T>(prefix);
  }

  create(key: string, value: unknown): Promise<number> {
    return this.txn([{ op: 'create', key, value }]);
  }

  update(key: string, value: unknown, expectedRevision: number): Promise<number> {
    return this.txn([{ op: 'update', key, value, expectedRevision }]);
  }

  delete(key: string, expectedRevision?: number): Promise<number> {
    return this.txn([{ op: 'delete', key, expectedRevision }]);
  }

  async txn(ops: TxnOp[]): Promise<number> {
    const fence = this.fence();
    if (!fence) throw new FencedError(undefined);
    try {
      // The fence first: when both it and an op fail, the caller must learn that it lost the lead,
      // not retry its op.
      return await this.inner.txn([{ op: 'check', key: fence.key, expectedRevision: fence.revision }, ...ops]);
    } catch (e) {
      if (e instanceof StoreConflictError && e.key === fence.key) throw new FencedError(fence);
      throw e;
    }
  }

  snapshot<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    return this.inner.snapshot<T>(prefix);
  }

  revision(): Promise<number> {
    return this.inner.revision();
  }

  watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[]) => void, onError?: (err: Error) => void, opts?: WatchOptions): Watcher {
    return this.inner.watch(prefix, fromRevision, onEvents, onError, opts);
  }

  /** The view owns nothing: closing it leaves the store open for its owner. */
  async close(): Promise<void> {}
}
