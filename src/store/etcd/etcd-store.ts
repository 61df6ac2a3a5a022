/**
 * The Store contract on etcd (v3 API, through the `etcd3` client): what lets several control-plane
 * replicas share one state, as Kubernetes' API server and kine do.
 *
 * Keyspace, under the installation's prefix P (several Wharf installations may share a cluster):
 *   P + "k/" + key      one store key, its value as JSON text (task records compact: value-codec.ts)
 *   P + "m/revision"    rewritten by every writing txn; its mod_revision is this store's revision
 *
 * Revisions are etcd's own (one counter for the whole etcd cluster), so a key's modRevision and
 * createRevision are etcd's and a watch from a revision is etcd's watch from that revision + 1.
 * With a shared cluster, other installations' writes take revisions too: ours are strictly
 * increasing but not consecutive, which the contract allows. The meta key answers "the revision
 * of this store's newest write" (0 for an empty store) without reading etcd's global revision,
 * which counts the neighbours' writes as well.
 *
 * Every write is one etcd transaction: the ops' conditions become compares (create: create
 * revision 0; update: version > 0 and mod revision equal; check: mod revision equal, 0 = absent),
 * the writes its success branch, and the failure branch reads the keys so that the conflict names
 * the first op that failed, as the embedded backends do.
 *
 * History: etcd compacts it (its own --auto-compaction-* settings, or an operator's `etcdctl
 * compact`). A watch whose start was compacted away is cancelled by etcd; it then reports a
 * StoreCompactedError through `onError` (asynchronously: the server is across a network), and
 * the caller takes a fresh snapshot. A watch that loses its connection is resumed by the client
 * from the last revision it delivered, so no event is lost or repeated.
 */
import { Etcd3, type ICompare, type IKeyValue, type IOptions, type IRequestOp, type Watcher as EtcdWatcher } from 'etcd3';
import { prepareTxn, txnConflict, type PreparedOp } from '../prepare-txn';
import { decodeValue, encodeValue } from './value-codec';
import { EtcdLeadership, LEADER_KEY, type LeadershipOptions } from './etcd-leadership';
import { StoreCompactedError, type Store, type StoreEntry, type TxnOp, type Watcher, type WatchEvent, type WatchOptions } from '../store';

export interface EtcdStoreOptions {
  /** e.g. ['http://127.0.0.1:2379', ...] */
  endpoints: string[];
  /** The installation's keyspace; ends with '/'. Default 'wharf/'. */
  prefix?: string;
  /** Extra client settings (TLS, auth) passed to etcd3. */
  client?: Omit<IOptions, 'hosts'>;
  /** Where exceptions thrown by watch callbacks go (default: console.error). */
  onWatchError?: (err: unknown) => void;
  /** The cluster's `--max-txn-ops`; by default found by asking (probeMaxTxnOps). */
  maxTxnOps?: number;
}

/** etcd's default `--max-txn-ops`. */
export const ETCD_MAX_TXN_OPS = 128;

/** The end of the range of keys starting with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * The cluster's --max-txn-ops, which etcd does not publish: the largest of a few sizes that a
 * read-only txn of that many compares (on one key, always true) is accepted at. Read-only, so no
 * Raft proposal; etcd refuses a larger one before looking at it.
 */
async function probeMaxTxnOps(client: Etcd3, key: string): Promise<number> {
  for (const n of [1024, 512, 256]) {
    const compare: ICompare[] = Array.from({ length: n }, () => ({ key: Buffer.from(key), target: 'Version', result: 'Greater', version: -1 }) as ICompare);
    try {
      await client.kv.txn({ compare, success: [], failure: [] });
      return n;
    } catch (e) {
      if (!/too many operations/i.test((e as Error).message)) throw e;
    }
  }
  return ETCD_MAX_TXN_OPS;
}

function rev(v: string | number | undefined): number {
  return v === undefined ? 0 : Number(v);
}

export class EtcdStore implements Store {
  private closed = false;
  private readonly keys: string;
  private readonly meta: string;
  private readonly watchers = new Set<EtcdWatcher>();
  /** What a caller's ops may count (store.ts txnWeight): etcd's limit less the meta key's put. */
  readonly maxTxnOps: number;

  private constructor(
    private readonly client: Etcd3,
    prefix: string,
    private readonly onWatchError: (err: unknown) => void,
    clusterMaxTxnOps: number,
  ) {
    this.keys = `${prefix}k/`;
    this.meta = `${prefix}m/revision`;
    this.maxTxnOps = clusterMaxTxnOps - 1;
  }

  /** Connects and checks the cluster answers (a read), so a wrong endpoint fails here, clearly. */
  static async open(opts: EtcdStoreOptions): Promise<EtcdStore> {
    const prefix = opts.prefix ?? 'wharf/';
    if (!prefix.endsWith('/')) throw new TypeError(`etcd key prefix must end with '/', got ${JSON.stringify(prefix)}`);
    // A snapshot is one range answer: with gRPC's default 4 MiB limit on a received message, a
    // replica could not start on a store past a few thousand task records.
    const grpcOptions = { 'grpc.max_receive_message_length': -1, ...opts.client?.grpcOptions };
    const client = new Etcd3({ ...opts.client, grpcOptions, hosts: opts.endpoints });
    let maxTxnOps = opts.maxTxnOps;
    try {
      await client.get(`${prefix}m/revision`).exec();
      maxTxnOps ??= await probeMaxTxnOps(client, `${prefix}m/revision`);
    } catch (e) {
      client.close();
      // grpc-js ends an unreachable channel's message with "Resolution note: " and nothing after
      // when there is no note: cut that tail, it reads as if something were missing.
      const why = (e as Error).message.replace(/\.?\s*Resolution note:\s*$/, '');
      throw new Error(`etcd at ${opts.endpoints.join(',')} does not answer: ${why}`);
    }
    return new EtcdStore(client, prefix, opts.onWatchError ?? ((err) => console.error('store watch callback failed', err)), maxTxnOps);
  }

  async get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined> {
    this.assertOpen();
    const res = await this.client.get(this.keys + key).exec();
    const kv = res.kvs[0];
    return kv ? this.entryOf<T>(kv) : undefined;
  }

  async list<T = unknown>(prefix: string): Promise<StoreEntry<T>[]> {
    return (await this.snapshot<T>(prefix)).entries;
  }

  async snapshot<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    this.assertOpen();
    // One txn reads the range and the meta key at the same etcd revision.
    const start = Buffer.from(this.keys + prefix, 'utf8');
    const res = await this.client.kv.txn({
      success: [
        { request_range: { key: start, range_end: prefixEnd(start), sort_order: 'Ascend', sort_target: 'Key' } },
        { request_range: { key: Buffer.from(this.meta) } },
      ],
    });
    const [range, meta] = res.responses.map((r) => r.response_range!);
    return { entries: range!.kvs.map((kv) => this.entryOf<T>(kv)), revision: rev(meta!.kvs[0]?.mod_revision) };
  }

  async revision(): Promise<number> {
    this.assertOpen();
    const res = await this.client.get(this.meta).exec();
    return rev(res.kvs[0]?.mod_revision);
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
    this.assertOpen();
    const prepared = prepareTxn(ops);
    const writes = prepared.filter((op) => op.op !== 'check');
    const compare: ICompare[] = [];
    const is = (op: PreparedOp, target: 'Create' | 'Mod' | 'Version', result: 'Equal' | 'Greater', value: number) =>
      compare.push({
        key: Buffer.from(this.keys + op.key),
        target,
        result,
        ...(target === 'Create' ? { create_revision: value } : target === 'Mod' ? { mod_revision: value } : { version: value }),
      });
    for (const op of prepared) {
      if (op.op === 'create') is(op, 'Create', 'Equal', 0);
      else if (op.op === 'update') {
        is(op, 'Version', 'Greater', 0);
        is(op, 'Mod', 'Equal', op.expectedRevision!);
      } else if (op.op === 'delete') {
        is(op, 'Version', 'Greater', 0);
        if (op.expectedRevision !== undefined) is(op, 'Mod', 'Equal', op.expectedRevision);
      } else if (op.op === 'check') is(op, 'Mod', 'Equal', op.expectedRevision!);
    }
    const success: IRequestOp[] = writes.length === 0
      ? [{ request_range: { key: Buffer.from(this.meta) } }]
      : [
          ...writes.map((op): IRequestOp =>
            op.op === 'delete'
              ? { request_delete_range: { key: Buffer.from(this.keys + op.key) } }
              : { request_put: { key: Buffer.from(this.keys + op.key), value: encodeValue(op.value, op.json!) } },
          ),
          { request_put: { key: Buffer.from(this.meta), value: Buffer.alloc(0) } },
        ];
    const failure = prepared.map((op): IRequestOp => ({ request_range: { key: Buffer.from(this.keys + op.key) } }));
    const res = await this.client.kv.txn({ compare, success, failure });
    if (res.succeeded) {
      if (writes.length === 0) return rev(res.responses[0]!.response_range!.kvs[0]?.mod_revision);
      return rev(res.header.revision);
    }
    throw this.conflictOf(prepared, res.responses.map((r) => r.response_range!.kvs[0]));
  }

  watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[]) => void, onError?: (err: Error) => void, opts: WatchOptions = {}): Watcher {
    this.assertOpen();
    if (!Number.isInteger(fromRevision) || fromRevision < 0) throw new TypeError(`fromRevision must be a non-negative integer, got ${String(fromRevision)}`);
    let cancelled = false;
    let watcher: EtcdWatcher | undefined;
    const report = (err: Error) => {
      if (cancelled) return;
      if (onError) onError(err);
      else console.error(err);
    };
    const builder = this.client.watch().prefix(this.keys + prefix).startRevision(String(fromRevision + 1));
    (opts.deleteValues === false ? builder : builder.withPreviousKV())
      .create()
      .then((w) => {
        if (cancelled) {
          void w.cancel();
          return;
        }
        watcher = w;
        this.watchers.add(w);
        w.on('data', (res) => {
          if (cancelled) return;
          const events = res.events.map((e): WatchEvent => {
            const isDelete = e.type === 'Delete';
            const source = isDelete ? e.prev_kv : e.kv;
            return {
              type: isDelete ? 'delete' : 'put',
              key: e.kv.key.toString('utf8').slice(this.keys.length),
              value: source ? decodeValue(source.value) : undefined,
              revision: rev(e.kv.mod_revision),
              createRevision: rev(source?.create_revision),
            };
          });
          // One callback per etcd revision (= one of our txns), in order. A callback that throws
          // is its own bug: it must not cost it (or anyone) the next batches.
          const deliver = (batch: WatchEvent[]) => {
            try {
              onEvents(batch);
            } catch (err) {
              this.onWatchError(err);
            }
          };
          let batch: WatchEvent[] = [];
          for (const ev of events) {
            if (batch.length > 0 && batch[0]!.revision !== ev.revision) {
              deliver(batch);
              batch = [];
            }
            batch.push(ev);
          }
          if (batch.length > 0) deliver(batch);
        });
        w.on('error', (err: Error) => {
          this.watchers.delete(w);
          void this.explainCancel(err, fromRevision).then(report);
        });
      })
      .catch((err: Error) => void this.explainCancel(err, fromRevision).then(report));
    return {
      cancel: () => {
        cancelled = true;
        if (watcher) {
          this.watchers.delete(watcher);
          void watcher.cancel();
        }
      },
    };
  }

  /**
   * Campaigns for the lead of this installation among the replicas sharing its keyspace (see
   * etcd-leadership.ts); the fence it answers is checked by FencedStore views of this store.
   */
  leadership(opts: LeadershipOptions): EtcdLeadership {
    this.assertOpen();
    return new EtcdLeadership(this.client, this.keys + LEADER_KEY, opts);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.watchers].map((w) => w.cancel().catch(() => undefined)));
    this.watchers.clear();
    this.client.close();
  }

  /**
   * etcd cancels a watch whose start revision was compacted, but the client passes on neither
   * the reason nor the compact revision; a read at that revision tells.
   */
  private async explainCancel(err: Error, fromRevision: number): Promise<Error> {
    try {
      await this.client.kv.range({ key: Buffer.from(this.meta), revision: fromRevision + 1 });
      return err;
    } catch (e) {
      return /compacted/.test((e as Error).message) ? new StoreCompactedError(fromRevision, fromRevision + 1) : err;
    }
  }

  private entryOf<T>(kv: IKeyValue): StoreEntry<T> {
    return {
      key: kv.key.toString('utf8').slice(this.keys.length),
      value: decodeValue(kv.value) as T,
      modRevision: rev(kv.mod_revision),
      createRevision: rev(kv.create_revision),
    };
  }

  /** The conflict of the first op whose condition failed, from the keys as the txn read them. */
  private conflictOf(prepared: PreparedOp[], current: (IKeyValue | undefined)[]): Error {
    for (let i = 0; i < prepared.length; i++) {
      const conflict = txnConflict(prepared[i]!, current[i] ? rev(current[i]!.mod_revision) : undefined);
      if (conflict) return conflict;
    }
    return new Error('etcd refused the transaction but no condition failed');
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('EtcdStore is closed');
  }
}
