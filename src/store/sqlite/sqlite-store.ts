/**
 * The embedded Store (DESIGN.md section 3): one SQLite file through better-sqlite3, in WAL mode.
 *
 * Tables:
 *   kv      current value of every key (JSON text) with its create and mod revisions
 *   changes one row per changed key per revision: the history `watch` replays; bounded by
 *           compaction, which keeps at least the last `compactKeep` revisions
 *   meta    `revision` (newest committed) and `compacted` (history at or below it is gone)
 *
 * better-sqlite3 is synchronous, so each call runs start to finish without interleaving: a
 * snapshot is trivially consistent and a txn is one SQLite transaction. Only one process may
 * own the file: it is opened with locking_mode=EXCLUSIVE and takes the write lock at open,
 * holding it until close, so a second `wharf server` on the same data dir fails at once rather
 * than corrupting state. The kernel drops the lock when a process dies, so kill -9 leaves
 * nothing stale.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { createLogger } from '../../lib';
import {
  StoreCompactedError,
  type Store,
  type StoreEntry,
  type TxnOp,
  type Watcher,
  type WatchEvent,
} from '../store';
import { prepareTxn, txnConflict, type PreparedOp } from '../prepare-txn';
import { WatchHub, type RawEvent } from '../watch-hub';

export interface SqliteStoreOptions {
  /** A file path, or ':memory:' for a private in-memory database (tests). */
  path: string;
  /** FULL (default) fsyncs every commit, so an acknowledged write survives power loss as well as kill -9. */
  synchronous?: 'NORMAL' | 'FULL';
  /** How many recent revisions of change history to keep for `watch` (default 100000). */
  compactKeep?: number;
  /** Where failures of watch callbacks are reported (default: a pino logger named "store"). */
  onWatchError?: (err: unknown) => void;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS changes (
    revision INTEGER NOT NULL,
    key TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('put', 'delete')),
    value TEXT NOT NULL,
    create_revision INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS changes_by_revision ON changes (revision);
  CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
`;

type KvRow = [key: string, value: string, createRevision: number, modRevision: number];
type HeadRow = [value: string, createRevision: number, modRevision: number];
interface CommitResult {
  revision: number;
  events: RawEvent[];
  compacted?: number;
}
type ChangeRow = [revision: number, key: string, type: 'put' | 'delete', value: string, createRevision: number];

/**
 * The smallest string greater than every string that starts with `prefix`, in SQLite's BINARY
 * (UTF-8 byte = code point) order; undefined when there is none (prefix of only U+10FFFF).
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last >= 0x10ffff) continue;
    // Skip the surrogate range: those code points cannot appear in a valid string.
    const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
    return cps.join('') + String.fromCodePoint(next);
  }
  return undefined;
}

function lockFile(path: string): string {
  return `${path}.lock`;
}

/** Owner-only: the store holds every record, access keys' derived material and sealed secrets. */
const FILE_MODE = 0o600;

/**
 * Creates the database file owner-only before SQLite opens it: SQLite creates files 0644 less the
 * umask, and gives its WAL the database file's mode, so a private database file keeps the WAL
 * private too. Files an older build left wider are narrowed.
 */
function makeFilesPrivate(path: string): void {
  // Only a file that does not exist yet is opened: closing any descriptor of a database file
  // drops this process's POSIX locks on it, which would free a store this process holds.
  try {
    fs.closeSync(fs.openSync(path, 'wx', FILE_MODE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  for (const f of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`, lockFile(path)]) {
    try {
      fs.chmodSync(f, FILE_MODE);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

export class SqliteStore implements Store {
  private readonly hub: WatchHub;
  private rev: number;
  private compacted: number;
  private closed = false;
  private readonly compactKeep: number;
  /** Compact once this many revisions beyond compactKeep have piled up, not on every write. */
  private readonly compactStep: number;

  private readonly stmt: {
    get: Database.Statement<[string], HeadRow>;
    listAll: Database.Statement<[], KvRow>;
    listFrom: Database.Statement<[string], KvRow>;
    listRange: Database.Statement<[string, string], KvRow>;
    insertKv: Database.Statement<[string, string, number, number]>;
    updateKv: Database.Statement<[string, number, string]>;
    deleteKv: Database.Statement<[string]>;
    insertChange: Database.Statement<[number, string, string, string, number]>;
    setMeta: Database.Statement<[string, number]>;
    historyAll: Database.Statement<[number], ChangeRow>;
    historyFrom: Database.Statement<[number, string], ChangeRow>;
    historyRange: Database.Statement<[number, string, string], ChangeRow>;
    compact: Database.Statement<[number]>;
  };
  private readonly commit: (ops: PreparedOp[]) => CommitResult;

  private constructor(
    private readonly db: Database.Database,
    private readonly path: string,
    opts: SqliteStoreOptions,
  ) {
    this.compactKeep = opts.compactKeep ?? 100_000;
    if (!Number.isInteger(this.compactKeep) || this.compactKeep < 0) {
      throw new TypeError(`compactKeep must be a non-negative integer, got ${String(opts.compactKeep)}`);
    }
    this.compactStep = Math.max(1, Math.min(1024, Math.floor(this.compactKeep / 16)));
    let logger: ReturnType<typeof createLogger> | undefined;
    this.hub = new WatchHub(
      opts.onWatchError ??
        ((err) => {
          logger ??= createLogger('store');
          logger.error({ err }, 'store watch callback threw');
        }),
    );

    const cols = 'key, value, create_revision, mod_revision';
    const hist = 'SELECT revision, key, type, value, create_revision FROM changes WHERE revision > ?';
    this.stmt = {
      get: db.prepare<[string], HeadRow>('SELECT value, create_revision, mod_revision FROM kv WHERE key = ?').raw(),
      listAll: db.prepare<[], KvRow>(`SELECT ${cols} FROM kv ORDER BY key`).raw(),
      listFrom: db.prepare<[string], KvRow>(`SELECT ${cols} FROM kv WHERE key >= ? ORDER BY key`).raw(),
      listRange: db.prepare<[string, string], KvRow>(`SELECT ${cols} FROM kv WHERE key >= ? AND key < ? ORDER BY key`).raw(),
      insertKv: db.prepare('INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?, ?, ?, ?)'),
      updateKv: db.prepare('UPDATE kv SET value = ?, mod_revision = ? WHERE key = ?'),
      deleteKv: db.prepare('DELETE FROM kv WHERE key = ?'),
      insertChange: db.prepare('INSERT INTO changes (revision, key, type, value, create_revision) VALUES (?, ?, ?, ?, ?)'),
      setMeta: db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
      historyAll: db.prepare<[number], ChangeRow>(`${hist} ORDER BY revision, rowid`).raw(),
      historyFrom: db.prepare<[number, string], ChangeRow>(`${hist} AND key >= ? ORDER BY revision, rowid`).raw(),
      historyRange: db.prepare<[number, string, string], ChangeRow>(`${hist} AND key >= ? AND key < ? ORDER BY revision, rowid`).raw(),
      compact: db.prepare('DELETE FROM changes WHERE revision <= ?'),
    };

    const meta = db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE name = ?');
    this.rev = meta.get('revision')?.value ?? 0;
    this.compacted = meta.get('compacted')?.value ?? 0;

    this.commit = db.transaction((ops: PreparedOp[]) => this.commitInTxn(ops)).immediate;
  }

  /**
   * Opens (creating if needed) the store at `opts.path`. Throws if another process, or another
   * SqliteStore in this process, has the file open.
   */
  static open(opts: SqliteStoreOptions): SqliteStore {
    const synchronous = opts.synchronous ?? 'FULL';
    if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new TypeError(`synchronous must be FULL or NORMAL, got ${String(synchronous)}`);
    const inMemory = opts.path === ':memory:';
    if (!inMemory) makeFilesPrivate(opts.path);
    // timeout 0: a locked file is someone else's store, and waiting will not change that.
    const db = new Database(opts.path, { timeout: 0 });
    try {
      if (!inMemory) {
        // Must precede the first access so WAL runs without a shared-memory index (which is
        // what lets the exclusive lock shut out other processes entirely).
        db.pragma('locking_mode = EXCLUSIVE');
        const mode = db.pragma('journal_mode = WAL', { simple: true });
        if (String(mode).toLowerCase() !== 'wal') throw new Error(`SqliteStore: could not switch ${opts.path} to WAL (got ${String(mode)})`);
      }
      db.pragma(`synchronous = ${synchronous}`);
      // Creating the schema is a write: it takes the exclusive lock, which EXCLUSIVE mode then
      // keeps until close.
      db.transaction(() => {
        db.exec(SCHEMA);
        const v = db.prepare<[], { value: number }>("SELECT value FROM meta WHERE name = 'schema'").get()?.value;
        if (v === undefined) db.prepare("INSERT INTO meta (name, value) VALUES ('schema', ?)").run(SCHEMA_VERSION);
        else if (v !== SCHEMA_VERSION) throw new Error(`SqliteStore: ${opts.path} has schema version ${v}, this build knows ${SCHEMA_VERSION}`);
      }).exclusive();
    } catch (e) {
      db.close();
      if (isBusy(e)) {
        let holder = '';
        try {
          holder = ` (held by pid ${fs.readFileSync(lockFile(opts.path), 'utf8').trim()})`;
        } catch {
          // No pid file: the message without it is still clear.
        }
        throw new Error(`SqliteStore: ${opts.path} is locked by another open store${holder}; only one wharf server may use a data dir`, { cause: e });
      }
      throw e;
    }
    if (!inMemory) {
      // Informational only (for the message above); the SQLite lock is what actually excludes.
      try {
        fs.writeFileSync(lockFile(opts.path), `${process.pid}\n`, { mode: FILE_MODE });
      } catch {
        // A read-only directory would already have failed above; ignore anything else.
      }
    }
    return new SqliteStore(db, opts.path, opts);
  }

  async get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined> {
    this.assertOpen();
    const row = this.stmt.get.get(key);
    if (!row) return undefined;
    return { key, value: JSON.parse(row[0]) as T, createRevision: row[1], modRevision: row[2] };
  }

  async list<T = unknown>(prefix: string): Promise<StoreEntry<T>[]> {
    this.assertOpen();
    return this.readList<T>(prefix);
  }

  async snapshot<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    this.assertOpen();
    // Synchronous: no write can land between the read and taking the revision.
    return { entries: this.readList<T>(prefix), revision: this.rev };
  }

  async revision(): Promise<number> {
    this.assertOpen();
    return this.rev;
  }

  async create(key: string, value: unknown): Promise<number> {
    return this.runTxn([{ op: 'create', key, value }]);
  }

  async update(key: string, value: unknown, expectedRevision: number): Promise<number> {
    return this.runTxn([{ op: 'update', key, value, expectedRevision }]);
  }

  async delete(key: string, expectedRevision?: number): Promise<number> {
    return this.runTxn([{ op: 'delete', key, expectedRevision }]);
  }

  async txn(ops: TxnOp[]): Promise<number> {
    return this.runTxn(ops);
  }

  watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[]) => void): Watcher {
    this.assertOpen();
    if (typeof prefix !== 'string') throw new TypeError('watch prefix must be a string');
    if (!Number.isInteger(fromRevision) || fromRevision < 0) throw new TypeError(`fromRevision must be a non-negative integer, got ${String(fromRevision)}`);
    if (fromRevision < this.compacted) throw new StoreCompactedError(fromRevision, this.compacted);
    const rows =
      fromRevision >= this.rev
        ? []
        : prefix === ''
          ? this.stmt.historyAll.all(fromRevision)
          : this.readHistoryRange(fromRevision, prefix);
    const history: RawEvent[][] = [];
    for (const [revision, key, type, json, createRevision] of rows) {
      const last = history[history.length - 1];
      const ev: RawEvent = { type, key, json, revision, createRevision };
      if (last && last[0].revision === revision) last.push(ev);
      else history.push([ev]);
    }
    return this.hub.add(prefix, history, Math.max(fromRevision, this.rev), onEvents);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.cancelAll();
    this.db.close();
    if (this.path !== ':memory:') {
      try {
        fs.unlinkSync(lockFile(this.path));
      } catch {
        // Already gone.
      }
    }
  }

  private readHistoryRange(fromRevision: number, prefix: string): ChangeRow[] {
    const end = prefixEnd(prefix);
    return end === undefined ? this.stmt.historyFrom.all(fromRevision, prefix) : this.stmt.historyRange.all(fromRevision, prefix, end);
  }

  private readList<T>(prefix: string): StoreEntry<T>[] {
    let rows: KvRow[];
    if (prefix === '') rows = this.stmt.listAll.all();
    else {
      const end = prefixEnd(prefix);
      rows = end === undefined ? this.stmt.listFrom.all(prefix) : this.stmt.listRange.all(prefix, end);
    }
    const out = new Array<StoreEntry<T>>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      out[i] = { key: r[0], value: JSON.parse(r[1]) as T, createRevision: r[2], modRevision: r[3] };
    }
    return out;
  }

  private runTxn(ops: TxnOp[]): Promise<number> {
    // Not `async`-wrapped work: everything below happens synchronously in the caller's turn, so
    // watchers see the events before the returned promise settles.
    try {
      this.assertOpen();
      const prepared = prepareTxn(ops);
      const { revision, events, compacted } = this.commit(prepared);
      // Only after COMMIT succeeded: a failed commit leaves memory and file in agreement.
      if (compacted !== undefined) this.compacted = compacted;
      if (events.length > 0) {
        this.rev = revision;
        this.hub.publish(events);
      }
      return Promise.resolve(revision);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Runs inside one IMMEDIATE transaction; throwing rolls everything back. */
  private commitInTxn(ops: PreparedOp[]): CommitResult {
    // Conditions first, all against the state before the txn.
    const heads = ops.map((op) => {
      const head = this.stmt.get.get(op.key);
      const conflict = txnConflict(op, head?.[2]);
      if (conflict) throw conflict;
      return head;
    });
    const revision = this.rev + 1;
    const events: RawEvent[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      const head = heads[i];
      switch (op.op) {
        case 'check':
          break;
        case 'create':
        case 'update':
        case 'put': {
          const createRevision = head ? head[1] : revision;
          if (head) this.stmt.updateKv.run(op.json!, revision, op.key);
          else this.stmt.insertKv.run(op.key, op.json!, revision, revision);
          events.push({ type: 'put', key: op.key, json: op.json!, revision, createRevision });
          break;
        }
        case 'delete':
          // txnConflict guarantees the key exists.
          this.stmt.deleteKv.run(op.key);
          events.push({ type: 'delete', key: op.key, json: head![0], revision, createRevision: head![1] });
          break;
      }
    }
    if (events.length === 0) return { revision: this.rev, events };
    for (const e of events) this.stmt.insertChange.run(revision, e.key, e.type, e.json, e.createRevision);
    this.stmt.setMeta.run('revision', revision);
    if (revision - this.compacted >= this.compactKeep + this.compactStep) {
      const upTo = revision - this.compactKeep;
      this.stmt.compact.run(upTo);
      this.stmt.setMeta.run('compacted', upTo);
      return { revision, events, compacted: upTo };
    }
    return { revision, events };
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('SqliteStore is closed');
  }
}
