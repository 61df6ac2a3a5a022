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
import { StoreConflictError, type Store, type StoreEntry, type TxnOp, type WatchEvent, type Watcher } from './store';

export class PrefixedStore implements Store {
  private closed = false;

  constructor(private readonly inner: Store, readonly prefix: string) {
    if (prefix === '' || !prefix.endsWith('/')) throw new TypeError(`a store prefix ends with '/', got '${prefix}'`);
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
    const k = this.k(key);
    return this.write(() => this.inner.create(k, value));
  }

  async update(key: string, value: unknown, expectedRevision: number): Promise<number> {
    const k = this.k(key);
    return this.write(() => this.inner.update(k, value, expectedRevision));
  }

  async delete(key: string, expectedRevision?: number): Promise<number> {
    const k = this.k(key);
    return this.write(() => this.inner.delete(k, expectedRevision));
  }

  async txn(ops: TxnOp[]): Promise<number> {
    const mapped = ops.map((op) => ({ ...op, key: this.k(op.key) }));
    return this.write(() => this.inner.txn(mapped));
  }

  async snapshot<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    const s = await this.inner.snapshot<T>(this.k(prefix));
    return { entries: s.entries.map((e) => this.entry(e)), revision: s.revision };
  }

  async revision(): Promise<number> {
    if (this.closed) throw new Error('store is closed');
    return this.inner.revision();
  }

  watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[]) => void, onError?: (err: Error) => void): Watcher {
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
    );
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
