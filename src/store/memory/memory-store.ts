/**
 * A Map-based Store for fast unit tests of the layers above the store (state, control,
 * controllers). It passes the same contract suite as SqliteStore, shares its txn rules and watch
 * fan-out, and keeps nothing on disk. Not for production: no durability, and `list` sorts on
 * every call.
 */
import {
  StoreCompactedError,
  type Store,
  type StoreEntry,
  type TxnOp,
  type Watcher,
  type WatchEvent,
} from '../store';
import { prepareTxn, txnConflict } from '../prepare-txn';
import { WatchHub, type RawEvent } from '../watch-hub';

export interface MemoryStoreOptions {
  /** How many recent revisions of change history to keep for `watch` (default 100000). */
  compactKeep?: number;
  /** Where failures of watch callbacks go (default: console.error). */
  onWatchError?: (err: unknown) => void;
}

interface Slot {
  json: string;
  createRevision: number;
  modRevision: number;
}

/**
 * Orders strings by code point, which equals UTF-8 byte order (the order SQLite and etcd use).
 * Plain `<` compares UTF-16 code units and would put U+E000..U+FFFF after astral characters.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Move surrogates (astral code points) above the rest of the BMP.
    if (x >= 0xd800) x += x <= 0xdfff ? 0x2000 : -0x800;
    if (y >= 0xd800) y += y <= 0xdfff ? 0x2000 : -0x800;
    return x - y;
  }
  return a.length - b.length;
}

export class MemoryStore implements Store {
  private readonly kv = new Map<string, Slot>();
  /** Committed batches, oldest first; batch i does not necessarily hold revision i (compaction). */
  private readonly log: RawEvent[][] = [];
  private rev = 0;
  private compacted = 0;
  private closed = false;
  private readonly compactKeep: number;
  private readonly hub: WatchHub;

  constructor(opts: MemoryStoreOptions = {}) {
    this.compactKeep = opts.compactKeep ?? 100_000;
    this.hub = new WatchHub(opts.onWatchError ?? ((err) => console.error('store watch callback threw', err)));
  }

  async get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined> {
    this.assertOpen();
    const s = this.kv.get(key);
    return s && { key, value: JSON.parse(s.json) as T, createRevision: s.createRevision, modRevision: s.modRevision };
  }

  async list<T = unknown>(prefix: string): Promise<StoreEntry<T>[]> {
    this.assertOpen();
    return this.readList<T>(prefix);
  }

  async snapshot<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    this.assertOpen();
    return { entries: this.readList<T>(prefix), revision: this.rev };
  }

  async revision(): Promise<number> {
    this.assertOpen();
    return this.rev;
  }

  create(key: string, value: unknown): Promise<number> {
    return this.runTxn([{ op: 'create', key, value }]);
  }

  update(key: string, value: unknown, expectedRevision: number): Promise<number> {
    return this.runTxn([{ op: 'update', key, value, expectedRevision }]);
  }

  delete(key: string, expectedRevision?: number): Promise<number> {
    return this.runTxn([{ op: 'delete', key, expectedRevision }]);
  }

  txn(ops: TxnOp[]): Promise<number> {
    return this.runTxn(ops);
  }

  watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[]) => void): Watcher {
    this.assertOpen();
    if (!Number.isInteger(fromRevision) || fromRevision < 0) throw new TypeError(`fromRevision must be a non-negative integer, got ${String(fromRevision)}`);
    if (fromRevision < this.compacted) throw new StoreCompactedError(fromRevision, this.compacted);
    // Binary search for the first batch after fromRevision.
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.log[mid][0].revision <= fromRevision) lo = mid + 1;
      else hi = mid;
    }
    const history: RawEvent[][] = [];
    for (let i = lo; i < this.log.length; i++) {
      const mine = prefix === '' ? this.log[i] : this.log[i].filter((e) => e.key.startsWith(prefix));
      if (mine.length > 0) history.push(mine);
    }
    return this.hub.add(prefix, history, Math.max(fromRevision, this.rev), onEvents);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.hub.cancelAll();
  }

  private readList<T>(prefix: string): StoreEntry<T>[] {
    const out: StoreEntry<T>[] = [];
    for (const [key, s] of this.kv) {
      if (key.startsWith(prefix)) out.push({ key, value: JSON.parse(s.json) as T, createRevision: s.createRevision, modRevision: s.modRevision });
    }
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  private runTxn(ops: TxnOp[]): Promise<number> {
    try {
      this.assertOpen();
      const prepared = prepareTxn(ops);
      // Conditions against the state before the txn, before anything changes: all or nothing.
      const heads = prepared.map((op) => {
        const head = this.kv.get(op.key);
        const conflict = txnConflict(op, head?.modRevision);
        if (conflict) throw conflict;
        return head;
      });
      const revision = this.rev + 1;
      const events: RawEvent[] = [];
      prepared.forEach((op, i) => {
        const head = heads[i];
        if (op.op === 'check') return;
        if (op.op === 'delete') {
          this.kv.delete(op.key);
          events.push({ type: 'delete', key: op.key, json: head!.json, revision, createRevision: head!.createRevision });
          return;
        }
        const createRevision = head?.createRevision ?? revision;
        this.kv.set(op.key, { json: op.json!, createRevision, modRevision: revision });
        events.push({ type: 'put', key: op.key, json: op.json!, revision, createRevision });
      });
      if (events.length === 0) return Promise.resolve(this.rev);
      this.rev = revision;
      this.log.push(events);
      this.compact();
      this.hub.publish(events);
      return Promise.resolve(revision);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private compact(): void {
    const keepFrom = this.rev - this.compactKeep;
    if (keepFrom <= this.compacted) return;
    let drop = 0;
    while (drop < this.log.length && this.log[drop][0].revision <= keepFrom) drop++;
    this.log.splice(0, drop);
    this.compacted = keepFrom;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('MemoryStore is closed');
  }
}
