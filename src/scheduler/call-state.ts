/**
 * The state of one place() call: the snapshot plus the tasks this call has already placed
 * (tentative copies of the instances that received them, and per-attribute spread counts), so
 * the second task of a RunTask count=3 sees the first one's CPU, ports, group and spread count.
 * Nothing here writes to the snapshot.
 */
import { withTask, type TaskFootprint } from './instance-ops';
import type { PlacementPlan } from './placement-plan';
import { scorers } from './registry';
import type { ScoreContext } from './scorers/scorer';
import type { ClusterSnapshot, PlacementIndexView, SnapshotInstance } from './types';

export class CallState implements ScoreContext {
  /** Instance id -> its tentative state after this call's placements. */
  readonly touched = new Map<string, SnapshotInstance>();
  readonly touchedSlots = new Set<number>();
  private readonly delta = new Map<string, Map<string | undefined, number>>();
  /** Scan path only: spread counts of the snapshot per attribute, computed once per call. */
  private readonly baseCounts = new Map<string, Map<string | undefined, number>>();
  readonly spreadKey: string;
  readonly index: PlacementIndexView | undefined;

  constructor(
    readonly snapshot: ClusterSnapshot,
    readonly plan: PlacementPlan,
    useIndex: boolean,
  ) {
    this.spreadKey = plan.spreadKey;
    this.index = useIndex ? snapshot.index : undefined;
    if (this.index) plan.filter.index = this.index;
    else delete plan.filter.index;
  }

  current(inst: SnapshotInstance): SnapshotInstance {
    return this.touched.get(inst.id) ?? inst;
  }

  spreadCount(attribute: string, value: string | undefined): number {
    const d = this.delta.get(attribute)?.get(value) ?? 0;
    if (this.index) return d + (this.index.partition(attribute).bucketOf(value)?.count(this.spreadKey) ?? 0);
    let base = this.baseCounts.get(attribute);
    if (!base) {
      base = new Map();
      const name = this.spreadKey.slice(2);
      const byService = this.spreadKey.startsWith('s:');
      for (const i of this.snapshot.instances()) {
        const n = (byService ? i.tasksByService.get(name) : i.tasksByGroup.get(name)) ?? 0;
        if (n === 0) continue;
        const v = i.attributes.get(attribute);
        base.set(v, (base.get(v) ?? 0) + n);
      }
      this.baseCounts.set(attribute, base);
    }
    return d + (base.get(value) ?? 0);
  }

  /** True when every active filter accepts the instance. */
  accepts(inst: SnapshotInstance, slot: number): boolean {
    const f = this.plan.activeFilters;
    for (let i = 0; i < f.length; i++) if (!f[i]!.accepts(this.plan.filter, inst, slot)) return false;
    return true;
  }

  /** The score vector of an instance under the plan's strategies (lower is better). */
  scores(inst: SnapshotInstance, from = 0): number[] {
    const s = this.plan.strategies;
    const out = new Array<number>(s.length - from);
    for (let i = from; i < s.length; i++) out[i - from] = scorers[s[i]!.type].score(this, inst, s[i]!);
    return out;
  }

  /** Records a tentative placement on `inst` (its current state). */
  commit(inst: SnapshotInstance, footprint: TaskFootprint): void {
    const after = withTask(inst, footprint, 1);
    this.touched.set(inst.id, after);
    const slot = this.index?.slotOf(inst.id);
    if (slot !== undefined) this.touchedSlots.add(slot);
    const seen = new Set<string>();
    for (const s of this.plan.strategies) {
      if (s.attribute === undefined || seen.has(s.attribute)) continue;
      seen.add(s.attribute);
      let m = this.delta.get(s.attribute);
      if (!m) this.delta.set(s.attribute, (m = new Map()));
      const v = inst.attributes.get(s.attribute);
      m.set(v, (m.get(v) ?? 0) + 1);
    }
  }
}

/** Lexicographic comparison of score vectors. */
export function compareScores(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Keeps the best (lowest score vector) candidate, breaking ties uniformly at random. */
export class BestPicker {
  best: SnapshotInstance | undefined;
  bestSlot = -1;
  bestScores: number[] = [];
  ties = 0;
  constructor(private readonly random: () => number) {}

  offer(inst: SnapshotInstance, slot: number, scores: number[]): void {
    const c = this.best === undefined ? -1 : compareScores(scores, this.bestScores);
    if (c < 0) {
      this.best = inst;
      this.bestSlot = slot;
      this.bestScores = scores;
      this.ties = 1;
    } else if (c === 0) {
      this.ties++;
      if (this.random() * this.ties < 1) {
        this.best = inst;
        this.bestSlot = slot;
      }
    }
  }
}
