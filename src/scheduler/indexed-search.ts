/**
 * The fast path of one placement decision over an indexed snapshot. It finds the instance with
 * the lowest score vector among the snapshot records that pass every filter, without looking at
 * most of them:
 *
 *  - a leading spread(attribute:X) splits the cluster into buckets by X (3 for availability
 *    zones); buckets are taken in order of their task count, equal counts together as one tier,
 *    and the rest of the strategies decide inside the first tier that has a fit;
 *  - binpack(R) walks the tier's instances in ascending remaining R from the first that fits
 *    and stops at the first one the filters accept; instances with that same amount are the
 *    ties, sampled uniformly when nothing else is left to rank them;
 *  - random / nothing left, or spread(instanceId) alone: sample uniformly and accept the first
 *    draw that passes the filters (and, for spread, has none of the service's tasks, the best
 *    possible score); after a few misses, scan.
 * Anything else scans the tier. Instances already given a task in this call are skipped here and
 * compared by the caller (their indexed entries are stale).
 */
import { BestPicker, type CallState } from './call-state';
import type { NormalizedStrategy } from './scorers/scorer';
import { tasksOnInstance } from './scorers/scorer';
import type { BucketView, SnapshotInstance } from './types';

const SAMPLE_TRIES = 24;
/** Above this many distinct values, tiering by an attribute is not worth it: scan instead. */
const MAX_BUCKETS = 256;

export interface IndexedChoice {
  inst: SnapshotInstance;
  slot: number;
}

export function searchIndexed(st: CallState, random: () => number): IndexedChoice | undefined {
  const idx = st.index!;
  const S = st.plan.strategies;
  const first = S[0];
  if (first && first.type === 'spread' && first.attribute !== undefined) {
    const part = idx.partition(first.attribute, st.plan.staticMemberOf);
    if (part.buckets.length <= MAX_BUCKETS) {
      const counted = part.buckets
        .filter((b) => b.members.length > 0)
        .map((b) => ({ b, n: st.spreadCount(first.attribute!, b.value) }))
        .sort((x, y) => x.n - y.n);
      for (let i = 0; i < counted.length; ) {
        let j = i;
        while (j < counted.length && counted[j]!.n === counted[i]!.n) j++;
        const found = searchBuckets(st, counted.slice(i, j).map((c) => c.b), 1, random);
        if (found) return found;
        i = j;
      }
      return undefined;
    }
  }
  return searchBuckets(st, idx.partition(null, st.plan.staticMemberOf).buckets, 0, random);
}

/** Usable snapshot record in `slot`: present, ACTIVE, not tentatively changed by this call. */
function candidate(st: CallState, slot: number): SnapshotInstance | undefined {
  if (st.touchedSlots.has(slot)) return undefined;
  const r = st.index!.record(slot);
  if (!r || r.status !== 'ACTIVE') return undefined;
  return r;
}

function searchBuckets(st: CallState, buckets: readonly BucketView[], from: number, random: () => number): IndexedChoice | undefined {
  const S = st.plan.strategies;
  const head: NormalizedStrategy | undefined = S[from];
  if (head === undefined) return sample(st, buckets, random, () => true) ?? scan(st, buckets, from, random);
  if (head.type === 'binpack') return binpack(st, buckets, from, random);
  if (head.type === 'spread' && head.attribute === undefined && from === S.length - 1) {
    return sample(st, buckets, random, (r) => tasksOnInstance(st.spreadKey, r) === 0) ?? scan(st, buckets, from, random);
  }
  return scan(st, buckets, from, random);
}

/** Uniform draws over the buckets' members; the first that passes `extra` and the filters. */
function sample(st: CallState, buckets: readonly BucketView[], random: () => number, extra: (r: SnapshotInstance) => boolean): IndexedChoice | undefined {
  let total = 0;
  for (const b of buckets) total += b.members.length;
  if (total === 0) return undefined;
  for (let t = 0; t < SAMPLE_TRIES; t++) {
    let k = Math.floor(random() * total);
    let bi = 0;
    while (k >= buckets[bi]!.members.length) k -= buckets[bi++]!.members.length;
    const slot = buckets[bi]!.members[k]!;
    const r = candidate(st, slot);
    if (r && extra(r) && st.accepts(r, slot)) return { inst: r, slot };
  }
  return undefined;
}

/** Every member, full score vectors from strategy `from` on, uniform among the best. */
function scan(st: CallState, buckets: readonly BucketView[], from: number, random: () => number): IndexedChoice | undefined {
  const pick = new BestPicker(random);
  for (const b of buckets) {
    for (const slot of b.members) {
      const r = candidate(st, slot);
      if (r && st.accepts(r, slot)) pick.offer(r, slot, st.scores(r, from));
    }
  }
  return pick.best ? { inst: pick.best, slot: pick.bestSlot } : undefined;
}

function binpack(st: CallState, buckets: readonly BucketView[], from: number, random: () => number): IndexedChoice | undefined {
  const S = st.plan.strategies;
  const res = S[from]!.resource!;
  const need = res === 'cpu' ? st.plan.filter.cpu : st.plan.filter.memory;
  const cursors = buckets.map((b) => b.ascending(res, need));
  // Merge the buckets' ascending orders; stop at the first accepted instance.
  let found: IndexedChoice | undefined;
  let value = Infinity;
  for (;;) {
    let ci = -1;
    let v = Infinity;
    for (let i = 0; i < cursors.length; i++) {
      const pv = cursors[i]!.peekValue();
      if (pv < v) {
        v = pv;
        ci = i;
      }
    }
    if (ci < 0) break;
    const slot = cursors[ci]!.next();
    const r = candidate(st, slot);
    if (r && st.accepts(r, slot)) {
      found = { inst: r, slot };
      value = v;
      break;
    }
  }
  if (!found) return undefined;
  const ranges = buckets.map((b) => b.equalRange(res, value));
  const total = ranges.reduce((n, x) => n + x.length, 0);
  if (total <= 1) return found;
  if (from === S.length - 1) {
    // Ties on the last strategy: a uniform draw among those that pass the filters.
    for (let t = 0; t < SAMPLE_TRIES; t++) {
      let k = Math.floor(random() * total);
      let bi = 0;
      while (k >= ranges[bi]!.length) k -= ranges[bi++]!.length;
      const c = buckets[bi]!.equalRange(res, value).cursor;
      c.skip(k);
      const slot = c.next();
      const r = candidate(st, slot);
      if (r && st.accepts(r, slot)) return { inst: r, slot };
    }
  }
  // Rank the ties by the strategies after this one (or draw uniformly among all of them).
  const pick = new BestPicker(random);
  for (const { cursor, length } of ranges) {
    for (let n = 0; n < length; n++) {
      const slot = cursor.next();
      const r = candidate(st, slot);
      if (r && st.accepts(r, slot)) pick.offer(r, slot, st.scores(r, from + 1));
    }
  }
  return pick.best ? { inst: pick.best, slot: pick.bestSlot } : found;
}
