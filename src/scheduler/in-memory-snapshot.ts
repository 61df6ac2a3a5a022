/**
 * InMemoryClusterSnapshot: the ClusterSnapshot of one cluster, kept current by its owner
 * (upsert/remove on every instance change or committed placement) and indexed so a placement
 * decision does not look at every instance:
 *
 *  - partitions: instances grouped by the value of a spread attribute (built on first use of
 *    that attribute, then maintained), each bucket holding the task counts per service/group of
 *    its instances (spread reads a count without summing) and, per resource, a SortedKeys of its
 *    instances by remaining cpu / memory (binpack walks from the first that fits);
 *  - memberOf results cached per (expression, instance), dropped when the instance changes.
 *
 * The engine never mutates it. Records passed in are kept as they are: do not mutate them after.
 */
import { evaluateClusterQuery, parseClusterQuery, type QueryAst } from '../core/cluster-query';
import { withTask, type TaskFootprint } from './instance-ops';
import { SortedKeys, sortKey, type KeyCursor } from './sorted-keys';
import type { BucketView, ClusterSnapshot, PartitionView, PlacementIndexView, PlacementResult, SnapshotInstance, SortedCursor } from './types';

type Resource = 'cpu' | 'memory';

class Cursor implements SortedCursor {
  constructor(private readonly c: KeyCursor) {}
  next(): number {
    return this.c.next();
  }
  peekValue(): number {
    return this.c.peekValue();
  }
  skip(n: number): void {
    this.c.skip(n);
  }
}

const EMPTY = new SortedKeys();

class Bucket implements BucketView {
  readonly members: number[] = [];
  private readonly pos = new Map<number, number>();
  private readonly counts = new Map<string, number>();
  private readonly sorted: Partial<Record<Resource, SortedKeys>> = {};

  constructor(
    readonly value: string | undefined,
    private readonly records: (SnapshotInstance | undefined)[],
  ) {}

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  private sortedBy(res: Resource): SortedKeys {
    let s = this.sorted[res];
    if (!s) {
      s = SortedKeys.from(this.members.map((slot) => sortKey(this.records[slot]!.remaining[res], slot)));
      this.sorted[res] = s;
    }
    return s;
  }

  ascending(res: Resource, from: number): SortedCursor {
    return new Cursor(this.sortedBy(res).cursor(sortKey(Math.max(from, -1e12), 0)));
  }

  equalRange(res: Resource, value: number): { cursor: SortedCursor; length: number } {
    const s = this.members.length ? this.sortedBy(res) : EMPTY;
    const lo = sortKey(value, 0);
    const hi = sortKey(value + 1, 0);
    return { cursor: new Cursor(s.cursor(lo)), length: s.countBetween(lo, hi) };
  }

  private addCounts(r: SnapshotInstance, sign: number): void {
    for (const [svc, n] of r.tasksByService) this.counts.set(`s:${svc}`, (this.counts.get(`s:${svc}`) ?? 0) + sign * n);
    for (const [g, n] of r.tasksByGroup) this.counts.set(`g:${g}`, (this.counts.get(`g:${g}`) ?? 0) + sign * n);
  }

  add(slot: number, r: SnapshotInstance): void {
    this.pos.set(slot, this.members.length);
    this.members.push(slot);
    this.addCounts(r, 1);
    for (const res of ['cpu', 'memory'] as const) this.sorted[res]?.insert(sortKey(r.remaining[res], slot));
  }

  delete(slot: number, r: SnapshotInstance): void {
    const i = this.pos.get(slot)!;
    const last = this.members.pop()!;
    if (last !== slot) {
      this.members[i] = last;
      this.pos.set(last, i);
    }
    this.pos.delete(slot);
    this.addCounts(r, -1);
    for (const res of ['cpu', 'memory'] as const) this.sorted[res]?.remove(sortKey(r.remaining[res], slot));
  }

  /** Adds the differences between two count maps (a placement changes one entry of each). */
  private diffCounts(prefix: string, before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): void {
    if (before === after) return;
    for (const [k, n] of after) {
      const d = n - (before.get(k) ?? 0);
      if (d !== 0) this.counts.set(prefix + k, (this.counts.get(prefix + k) ?? 0) + d);
    }
    for (const [k, n] of before) {
      if (!after.has(k)) this.counts.set(prefix + k, (this.counts.get(prefix + k) ?? 0) - n);
    }
  }

  update(slot: number, before: SnapshotInstance, after: SnapshotInstance): void {
    this.diffCounts('s:', before.tasksByService, after.tasksByService);
    this.diffCounts('g:', before.tasksByGroup, after.tasksByGroup);
    for (const res of ['cpu', 'memory'] as const) {
      const s = this.sorted[res];
      if (s && Math.floor(before.remaining[res]) !== Math.floor(after.remaining[res])) {
        s.remove(sortKey(before.remaining[res], slot));
        s.insert(sortKey(after.remaining[res], slot));
      }
    }
  }
}

class Partition implements PartitionView {
  readonly buckets: Bucket[] = [];
  private readonly byValue = new Map<string | undefined, Bucket>();
  readonly slotBucket: (Bucket | undefined)[] = [];

  /**
   * `admits`, when given, restricts the partition to the instances that can take tasks and pass
   * the static (attribute-only) memberOf expressions of a request: the candidate structure the
   * engine walks. Without it the partition holds every instance (spread counts need them all).
   */
  constructor(
    readonly attribute: string | null,
    private readonly records: (SnapshotInstance | undefined)[],
    private readonly admits?: (r: SnapshotInstance) => boolean,
  ) {
    records.forEach((r, slot) => r && (!admits || admits(r)) && this.place(slot, r));
  }

  valueOf(r: SnapshotInstance): string | undefined {
    return this.attribute === null ? '' : r.attributes.get(this.attribute);
  }

  bucketOf(value: string | undefined): Bucket | undefined {
    return this.byValue.get(value);
  }

  private ensure(value: string | undefined): Bucket {
    let b = this.byValue.get(value);
    if (!b) {
      b = new Bucket(value, this.records);
      this.byValue.set(value, b);
      this.buckets.push(b);
    }
    return b;
  }

  private place(slot: number, r: SnapshotInstance): void {
    const b = this.ensure(this.valueOf(r));
    b.add(slot, r);
    this.slotBucket[slot] = b;
  }

  change(slot: number, before: SnapshotInstance | undefined, after: SnapshotInstance | undefined): void {
    const oldB = this.slotBucket[slot];
    if (after && this.admits) {
      // Admission reads status, agent and attributes only; a task placement keeps all three.
      const same = oldB && before && before.attributes === after.attributes && before.status === after.status && before.agentConnected === after.agentConnected;
      if (!(same || this.admits(after))) after = undefined;
    }
    const newValue = after ? this.valueOf(after) : undefined;
    if (oldB && before && after && oldB.value === newValue) {
      oldB.update(slot, before, after);
      return;
    }
    if (oldB && before) oldB.delete(slot, before);
    this.slotBucket[slot] = undefined;
    if (after) this.place(slot, after);
  }
}

interface CachedQuery {
  ast: QueryAst;
  /** Per slot: 0 unknown, 1 true, 2 false, valid while stamp[slot] === version[slot]. */
  result: Int8Array;
  stamp: Int32Array;
}

const MAX_CACHED_QUERIES = 512;
/** Each one costs upkeep on every instance change, so keep few. */
const MAX_CANDIDATE_PARTITIONS = 16;

export class InMemoryClusterSnapshot implements ClusterSnapshot, PlacementIndexView {
  private readonly records: (SnapshotInstance | undefined)[] = [];
  private readonly versions: number[] = [];
  private readonly slots = new Map<string, number>();
  private readonly free: number[] = [];
  private readonly partitions = new Map<string | null, Partition>();
  /** Partitions restricted to candidates of one static constraint set, least recently used first. */
  private readonly candidatePartitions = new Map<string, Partition>();
  private readonly queries = new Map<string, CachedQuery>();
  private list: SnapshotInstance[] | undefined;

  constructor(instances: Iterable<SnapshotInstance> = []) {
    for (const i of instances) this.upsert(i);
  }

  get index(): PlacementIndexView {
    return this;
  }

  get slotCount(): number {
    return this.records.length;
  }

  instances(): readonly SnapshotInstance[] {
    if (!this.list) this.list = this.records.filter((r): r is SnapshotInstance => r !== undefined);
    return this.list;
  }

  instance(id: string): SnapshotInstance | undefined {
    const s = this.slots.get(id);
    return s === undefined ? undefined : this.records[s];
  }

  record(slot: number): SnapshotInstance | undefined {
    return this.records[slot];
  }

  slotOf(id: string): number | undefined {
    return this.slots.get(id);
  }

  /** Adds or replaces an instance (new attributes, status, remaining resources, task counts). */
  upsert(inst: SnapshotInstance): void {
    let slot = this.slots.get(inst.id);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.records.length;
      if (slot >= 1 << 20) throw new Error('InMemoryClusterSnapshot holds at most 2^20 instances');
      this.slots.set(inst.id, slot);
    }
    this.set(slot, inst);
  }

  remove(id: string): void {
    const slot = this.slots.get(id);
    if (slot === undefined) return;
    this.set(slot, undefined);
    this.slots.delete(id);
    this.free.push(slot);
  }

  /** Records a task placed on (sign 1) or stopped on (sign -1) an instance. */
  applyTask(instanceId: string, task: TaskFootprint, sign: 1 | -1 = 1): void {
    const cur = this.instance(instanceId);
    if (!cur) throw new Error(`unknown container instance ${instanceId}`);
    this.upsert(withTask(cur, task, sign));
  }

  /** Applies what place() decided, as the state layer would after the commit succeeded. */
  applyPlacements(request: { group: string; service?: string; needs: { cpu: number; memory: number } }, result: PlacementResult): void {
    for (const p of result.placements) {
      const fp: TaskFootprint = { group: request.group, cpu: request.needs.cpu, memory: request.needs.memory, tcpPorts: p.tcpPorts, udpPorts: p.udpPorts, gpuIds: p.gpuIds };
      if (request.service !== undefined) fp.service = request.service;
      this.applyTask(p.instanceId, fp, 1);
    }
  }

  partition(attribute: string | null, staticMemberOf?: readonly string[]): PartitionView {
    if (!staticMemberOf) {
      let p = this.partitions.get(attribute);
      if (!p) {
        p = new Partition(attribute, this.records);
        this.partitions.set(attribute, p);
      }
      return p;
    }
    const key = `${attribute ?? ''}\u0000${staticMemberOf.join('\u0000')}`;
    let p = this.candidatePartitions.get(key);
    if (p) {
      // Keep the map in least-recently-used order.
      this.candidatePartitions.delete(key);
    } else {
      const asts = staticMemberOf.map((e) => parseClusterQuery(e));
      p = new Partition(attribute, this.records, (r) => r.status === 'ACTIVE' && r.agentConnected && asts.every((a) => evaluateClusterQuery(a, r)));
      if (this.candidatePartitions.size >= MAX_CANDIDATE_PARTITIONS) this.candidatePartitions.delete(this.candidatePartitions.keys().next().value!);
    }
    this.candidatePartitions.set(key, p);
    return p;
  }

  memberOf(expression: string, slot: number): boolean {
    let q = this.queries.get(expression);
    if (!q) {
      if (this.queries.size >= MAX_CACHED_QUERIES) this.queries.clear();
      q = { ast: parseClusterQuery(expression), result: new Int8Array(0), stamp: new Int32Array(0) };
      this.queries.set(expression, q);
    }
    if (q.result.length <= slot) {
      const n = Math.max(slot + 1, this.records.length, q.result.length * 2);
      const result = new Int8Array(n);
      result.set(q.result);
      const stamp = new Int32Array(n);
      stamp.set(q.stamp);
      q.result = result;
      q.stamp = stamp;
    }
    const v = this.versions[slot]!;
    if (q.stamp[slot] === v && q.result[slot] !== 0) return q.result[slot] === 1;
    const ok = evaluateClusterQuery(q.ast, this.records[slot]!);
    q.result[slot] = ok ? 1 : 2;
    q.stamp[slot] = v;
    return ok;
  }

  private set(slot: number, after: SnapshotInstance | undefined): void {
    const before = this.records[slot];
    for (const p of this.partitions.values()) p.change(slot, before, after);
    for (const p of this.candidatePartitions.values()) p.change(slot, before, after);
    this.records[slot] = after;
    this.versions[slot] = ((this.versions[slot] ?? 0) + 1) | 0;
    this.list = undefined;
  }
}
