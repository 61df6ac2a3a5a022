/**
 * A Store that is a part of another: every key it is given is stored under `prefix` in the inner
 * store, and every key it hands back has the prefix removed. Each AWS region of one Wharf is such
 * a part (`regions/<region>/`), so clusters, task definitions and their revision counters, tasks,
 * settings and secrets of one region are invisible to another, while all regions share one store,
 * one revision sequence and one durability story.
 *
 * Revisions stay the inner store's (global): a view's watch simply skips the revisions of other
 * parts, which the contract allows (strictly increasing, not dense). Closing a view closes only
 * the view; the inner store belongs to whoever opened it.
 */
import { StoreConflictError, type Store, type StoreEntry, type TxnOp, type WatchEvent, type Watcher, type WatchOptions } from './store';

export interface PrefixedStoreOptions {
  /**
   * A key of the view that every writing txn also puts, so that its mod revision is the view's
   * newest write: one read of it (`latestRevision`) tells a cache of the view which revision it
   * must have applied to be current. A watch of the view delivers that put too, so a cache
   * always reaches that revision (the store's own revision counts other parts' writes, which the
   * view's watch never delivers). Distributed mode's read barrier (cmd/regions.ts).
   */
  revisionKey?: string;
}

export class PrefixedStore implements Store {
  private closed = false;

  constructor(private readonly inner: Store, readonly prefix: string, private readonly opts: PrefixedStoreOptions = {}) {
    if (prefix === '' || !prefix.endsWith('/')) throw new TypeError(`a store prefix ends with '/', got '${prefix}'`);
  }

  /** The inner store's, less the revision key this view adds to every writing txn. */
  get maxTxnOps(): number | undefined {
    const inner = this.inner.maxTxnOps;
    return inner === undefined ? undefined : inner - (this.opts.revisionKey ? 1 : 0);
  }

  /** The revision of the view's newest write (0 if none yet), read from the store; needs `revisionKey`. */
  async latestRevision(): Promise<number> {
    if (!this.opts.revisionKey) throw new Error('this view keeps no revision key');
    return (await this.inner.get(this.k(this.opts.revisionKey)))?.modRevision ?? 0;
  }

  private k(key: string): string {
    if (this.closed) throw new Error('store is closed');
    return this.prefix + key;
  }

  private entry<T>(e: StoreEntry<T>): StoreEntry<T> {
    return { key: e.key.slice(this.prefix.length), value: e.value, modRevision: e.modRevision, createRevision: e.createRevision };
  }

  /** Runs a write, naming the view's key (not the inner one) in a conflict. */
  private async write<R>(run: () => Promise<R>): Promise<R> {
    try {
      return await run();
    } catch (e) {
      if (e instanceof StoreConflictError && e.key.startsWith(this.prefix)) throw new StoreConflictError(e.key.slice(this.prefix.length), e.reason);
      throw e;
    }
  }

  async get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined> {
    const e = await this.inner.get<T>(this.k(key));
    return e && this.entry(e);
  }

  async list<T = unknown>(prefix: string): Promise<StoreEntry<T>[]> {
    return (await this.inner.list<T>(this.k(prefix))).map((e) => this.entry(e));
  }

  async create(key: string, value: unknown): Promise<number> {
    if (this.opts.revisionKey) return this.txn([{ op: 'create', key, value }]);
    const k = this.k(key);
    return this.write(() => this.inner.create(k, value));
  }

  async update(key: string, value: unknown, expectedRevision: number): Promise<number> {
    if (this.opts.revisionKey) return this.txn([{ op: 'update', key, value, expectedRevision }]);
    const k = this.k(key);
    return this.write(() => this.inner.update(k, value, expectedRevision));
  }

  async delete(key: string, expectedRevision?: number): Promise<number> {
    if (this.opts.revisionKey) return this.txn([{ op: 'delete', key, expectedRevision }]);
    const k = this.k(key);
    return this.write(() => this.inner.delete(k, expectedRevision));
  }

  async txn(ops: TxnOp[]): Promise<number> {
    const mapped: TxnOp[] = ops.map((op) => ({ ...op, key: this.k(op.key) }));
    if (this.opts.revisionKey && ops.some((op) => op.op !== 'check')) mapped.push({ op: 'put', key: this.k(this.opts.revisionKey), value: {} });
    return this.write(() => this.inner.txn(mapped));
  }

  async snapshot<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    const s = await this.inner.snapshot<T>(this.k(prefix));
    return { entries: s.entries.map((e) => this.entry(e)), revision: s.revision };
  }

  async revision(): Promise<number> {
    if (this.closed) throw new Error('store is closed');
    // With a revision key, the view's own newest write: callers wait for their cache (fed by the
    // view's watch) to reach it, which the store's revision, counting other parts' writes the
    // watch never delivers, would not let them do until the view's next write.
    if (this.opts.revisionKey) return this.latestRevision();
    return this.inner.revision();
  }

  watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[]) => void, onError?: (err: Error) => void, opts?: WatchOptions): Watcher {
    const cut = this.prefix.length;
    return this.inner.watch(
      this.k(prefix),
      fromRevision,
      (events) => {
        // Each watcher gets events of its own (the backends parse values per watcher), so the key
        // can be rewritten in place instead of copying every event of a busy region.
        for (const ev of events) ev.key = ev.key.slice(cut);
        onEvents(events);
      },
      onError,
      opts,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
