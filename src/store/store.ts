/**
 * The Store contract (DESIGN.md section 3): a revisioned key-value store with compare-and-swap,
 * multi-key transactions and an ordered watch. Every backend (sqlite/, etcd/) implements it and
 * passes the shared suite in `contract.ts`.
 *
 * Revisions are global and strictly increasing, like etcd's: every committed write (or txn)
 * gets the next revision, and every key it touches records it as its `modRevision`.
 */

export interface StoreEntry<T = unknown> {
  key: string;
  value: T;
  /** The revision of the write that last changed this key. */
  modRevision: number;
  /** The revision of the write that created this key. */
  createRevision: number;
}

export type TxnOp =
  /** Fails the txn unless the key is absent. */
  | { op: 'create'; key: string; value: unknown }
  /** Fails the txn unless the key exists with modRevision === expectedRevision. */
  | { op: 'update'; key: string; value: unknown; expectedRevision: number }
  /** Writes whatever is there (no check). */
  | { op: 'put'; key: string; value: unknown }
  /** Fails unless the key exists (and, if given, has modRevision === expectedRevision). */
  | { op: 'delete'; key: string; expectedRevision?: number }
  /** Writes nothing; fails the txn unless the key is at expectedRevision (0 = must be absent). */
  | { op: 'check'; key: string; expectedRevision: number };

export interface WatchEvent<T = unknown> {
  type: 'put' | 'delete';
  key: string;
  /** The new value for put; the last value for delete. */
  value: T;
  /** The revision of the write that produced this event. */
  revision: number;
  createRevision: number;
}

export interface WatchOptions {
  /**
   * false: the caller does not read a delete event's value or createRevision (a cache has them
   * already), so a backend may leave them out. etcd then need not read every changed key's
   * previous version (prev_kv), a read per event and per watcher, and sends half the bytes.
   */
  deleteValues?: boolean;
}

export interface Watcher {
  cancel(): void;
}

export interface Store {
  get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined>;
  /** Every entry whose key starts with prefix, in key order. */
  list<T = unknown>(prefix: string): Promise<StoreEntry<T>[]>;
  /** Creates a key that must not exist; returns the new revision. Throws StoreConflictError. */
  create(key: string, value: unknown): Promise<number>;
  /** Compare-and-swap update; returns the new revision. Throws StoreConflictError. */
  update(key: string, value: unknown, expectedRevision: number): Promise<number>;
  /** Compare-and-swap delete (unconditional when expectedRevision is omitted). */
  delete(key: string, expectedRevision?: number): Promise<number>;
  /**
   * Commits all ops atomically at one revision, or none (StoreConflictError naming the key).
   * Every condition is checked against the state before the txn, and a key may be written by at
   * most one op (a second write of the same key throws a plain Error). A txn that writes nothing
   * (only 'check' ops, or none) creates no revision and returns the current one.
   */
  txn(ops: TxnOp[]): Promise<number>;
  /** The entries under prefix and the store revision they were read at, consistently, so that
   * a cache can load them and then `watch(prefix, revision)` without missing or repeating a change. */
  snapshot<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }>;
  /** The revision of the newest committed write (0 for an empty store). */
  revision(): Promise<number>;
  /**
   * Calls `onEvents` with every change to keys under `prefix` whose revision is > fromRevision,
   * in revision order, first the history then live changes. Events of one txn arrive together.
   * A backend that runs in-process (sqlite) delivers a write's events before the write's promise
   * resolves, so a cache fed by watch can serve read-your-writes without waiting.
   * History is bounded: when changes after fromRevision have been compacted away, watch throws
   * StoreCompactedError (the caller takes a fresh snapshot) instead of silently skipping them.
   * A networked backend (etcd) learns that only from the server: it then calls `onError` with the
   * StoreCompactedError, after watch returned, and delivers nothing more on that watch. It also
   * reports there a watch it cannot keep (an error other than a lost connection, which it
   * resumes by itself). In-process backends throw synchronously and never call `onError`.
   */
  watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[]) => void, onError?: (err: Error) => void, opts?: WatchOptions): Watcher;
  close(): Promise<void>;
  /**
   * The most conditions (or writes) one txn may carry, when the backend has a limit: etcd refuses
   * a txn of more than its `--max-txn-ops` (128 by default). Callers that gather several writers'
   * ops into one txn (control/placement-batch.ts) stay under it, counting with `txnWeight`.
   * Undefined: no limit.
   */
  readonly maxTxnOps?: number;
}

/**
 * What an op counts against `maxTxnOps`: etcd checks an update (and a delete of an expected
 * revision) with two conditions (the key exists, its mod revision), everything else with one.
 */
export function txnWeight(op: TxnOp): number {
  return op.op === 'update' || (op.op === 'delete' && op.expectedRevision !== undefined) ? 2 : 1;
}

export class StoreConflictError extends Error {
  constructor(readonly key: string, readonly reason: 'exists' | 'missing' | 'revision') {
    super(`store conflict on ${key}: ${reason}`);
    this.name = 'StoreConflictError';
  }
}

/** Thrown by `watch` when the history it would need (revisions > fromRevision) was compacted. */
export class StoreCompactedError extends Error {
  constructor(readonly fromRevision: number, readonly compactedRevision: number) {
    super(`store history compacted: watch from revision ${fromRevision} needs changes up to ${compactedRevision}, which are gone`);
    this.name = 'StoreCompactedError';
  }
}

/**
 * Reads a key, applies `mutate`, and writes it back with compare-and-swap, retrying on conflict.
 * `mutate` returns undefined to leave the key unchanged.
 */
export async function casUpdate<T>(
  store: Store,
  key: string,
  mutate: (current: StoreEntry<T> | undefined) => T | undefined,
  attempts = 20,
): Promise<{ value: T | undefined; revision: number }> {
  for (let i = 0; ; i++) {
    const cur = await store.get<T>(key);
    const next = mutate(cur);
    if (next === undefined) return { value: cur?.value, revision: cur?.modRevision ?? 0 };
    try {
      const revision = cur ? await store.update(key, next, cur.modRevision) : await store.create(key, next);
      return { value: next, revision };
    } catch (e) {
      if (!(e instanceof StoreConflictError) || i + 1 >= attempts) throw e;
    }
  }
}
