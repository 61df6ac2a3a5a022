/**
 * place(): where the tasks of one RunTask / StartTask / service step go.
 *
 *   for each of the `count` tasks:
 *     candidates = ACTIVE instances                      (others never receive tasks)
 *     survivors  = candidates every filter accepts       (filters/, in registry order)
 *     winner     = lowest score vector among survivors   (scorers/, in the user's order;
 *                                                          final ties uniformly at random)
 *     the winner's tentative state takes the task        (CallState; the snapshot is untouched)
 *   a task with no survivor fails with the closest instance and its reason, and so do the
 *   tasks after it (nothing changed that could make them fit).
 *
 * With an indexed snapshot the survivors are never listed in full (indexed-search.ts); the
 * scan path below is the plain definition and doubles as the reference implementation.
 */
import { BestPicker, CallState, compareScores } from './call-state';
import { searchIndexed } from './indexed-search';
import type { TaskFootprint } from './instance-ops';
import { planPlacement } from './placement-plan';
import { filters } from './registry';
import {
  Reason,
  type ClusterSnapshot,
  type PlaceOptions,
  type Placement,
  type PlacementFailure,
  type PlacementRequest,
  type PlacementResult,
  type RejectionReason,
  type SnapshotInstance,
} from './types';

export function place(request: PlacementRequest, snapshot: ClusterSnapshot, opts: PlaceOptions = {}): PlacementResult {
  const plan = planPlacement(request);
  const random = opts.random ?? Math.random;
  const st = new CallState(snapshot, plan, snapshot.index !== undefined && !opts.scan);
  const placements: Placement[] = [];
  const failures: PlacementFailure[] = [];
  let rejections: PlacementResult['rejections'];
  const f = plan.filter;
  for (let taskIndex = 0; taskIndex < request.count; taskIndex++) {
    const chosen = st.index ? chooseIndexed(st, random) : chooseByScan(st, random);
    if (!chosen) {
      const c = closest(st);
      rejections = c.rejections;
      for (let k = taskIndex; k < request.count; k++) {
        const fail: PlacementFailure = { reason: c.reason, taskIndex: k };
        if (c.arn !== undefined) fail.arn = c.arn;
        failures.push(fail);
      }
      break;
    }
    const gpuIds = chosen.remaining.gpuIds.slice(0, f.gpus);
    const fp: TaskFootprint = { group: request.group, cpu: f.cpu, memory: f.memory, tcpPorts: f.tcpPorts, udpPorts: f.udpPorts, gpuIds };
    if (request.service !== undefined) fp.service = request.service;
    st.commit(chosen, fp);
    placements.push({ taskIndex, instanceId: chosen.id, instanceArn: chosen.arn, tcpPorts: [...f.tcpPorts], udpPorts: [...f.udpPorts], gpuIds });
  }
  const result: PlacementResult = { placements, failures };
  if (rejections) result.rejections = rejections;
  return result;
}

/**
 * StartTask and DAEMON services name the instance of each task: task i goes on instanceIds[i]
 * (the request's count is the list's length). Every filter still applies, against the instance
 * as this call's earlier tasks left it, so two tasks on one instance cannot share a host port
 * or overbook it; an instance not in the snapshot fails MISSING, one not ACTIVE fails INACTIVE.
 */
export function placeOn(request: Omit<PlacementRequest, 'count'>, instanceIds: readonly string[], snapshot: ClusterSnapshot): PlacementResult {
  if (instanceIds.length === 0) return { placements: [], failures: [] };
  const plan = planPlacement({ ...request, count: instanceIds.length });
  const st = new CallState(snapshot, plan, false);
  const f = plan.filter;
  const placements: Placement[] = [];
  const failures: PlacementFailure[] = [];
  instanceIds.forEach((id, taskIndex) => {
    const base = snapshot.instance(id);
    if (!base) return void failures.push({ arn: id, reason: Reason.MISSING, taskIndex });
    if (base.status !== 'ACTIVE') return void failures.push({ arn: base.arn, reason: Reason.INACTIVE, taskIndex });
    const inst = st.current(base);
    const rejected = plan.activeFilters.find((flt) => !flt.accepts(f, inst, -1));
    if (rejected) return void failures.push({ arn: base.arn, reason: rejected.reason, taskIndex });
    const gpuIds = inst.remaining.gpuIds.slice(0, f.gpus);
    const fp: TaskFootprint = { group: request.group, cpu: f.cpu, memory: f.memory, tcpPorts: f.tcpPorts, udpPorts: f.udpPorts, gpuIds };
    if (request.service !== undefined) fp.service = request.service;
    st.commit(inst, fp);
    placements.push({ taskIndex, instanceId: base.id, instanceArn: base.arn, tcpPorts: [...f.tcpPorts], udpPorts: [...f.udpPorts], gpuIds });
  });
  return { placements, failures };
}

/**
 * Whether an instance meets a request's requirements (required attributes and memberOf
 * expressions), whatever it has free: the instances a DAEMON service belongs on. Throws
 * InvalidParameterException for constraints that do not parse, as place() does.
 */
export function requirementCheck(request: Omit<PlacementRequest, 'count'>): (inst: SnapshotInstance) => boolean {
  const plan = planPlacement({ ...request, count: 1 });
  const rules = plan.activeFilters.filter((flt) => flt.requirement);
  return (inst) => rules.every((flt) => flt.accepts(plan.filter, inst, -1));
}

/** The definition: every ACTIVE instance, filtered, ranked. O(instances) per task. */
function chooseByScan(st: CallState, random: () => number): SnapshotInstance | undefined {
  const pick = new BestPicker(random);
  for (const base of st.snapshot.instances()) {
    if (base.status !== 'ACTIVE') continue;
    const inst = st.current(base);
    if (st.accepts(inst, -1)) pick.offer(inst, -1, st.scores(inst));
  }
  return pick.best;
}

/** The index's best among untouched instances, then the instances this call already changed. */
function chooseIndexed(st: CallState, random: () => number): SnapshotInstance | undefined {
  const fromIndex = searchIndexed(st, random);
  if (st.touched.size === 0) return fromIndex?.inst;
  const pick = new BestPicker(random);
  for (const inst of st.touched.values()) {
    if (inst.status === 'ACTIVE' && st.accepts(inst, -1)) pick.offer(inst, -1, st.scores(inst));
  }
  if (!fromIndex) return pick.best;
  if (!pick.best) return fromIndex.inst;
  const c = compareScores(st.scores(fromIndex.inst), pick.bestScores);
  if (c < 0) return fromIndex.inst;
  if (c > 0) return pick.best;
  return random() < 0.5 ? fromIndex.inst : pick.best;
}

/**
 * The instance that got furthest through the filters (filters run in registry order), with the
 * reason of the filter that stopped it; ties go to the first instance in snapshot order. Also
 * counts how many instances each reason rejected.
 */
function closest(st: CallState): { arn?: string; reason: RejectionReason; rejections: Partial<Record<RejectionReason, number>> } {
  const rejections: Partial<Record<RejectionReason, number>> = {};
  let bestStage = -1;
  let best: SnapshotInstance | undefined;
  const ctx = st.plan.filter;
  for (const base of st.snapshot.instances()) {
    if (base.status !== 'ACTIVE') continue;
    const inst = st.current(base);
    const slot = st.touched.has(base.id) || !st.index ? -1 : (st.index.slotOf(base.id) ?? -1);
    let stage = filters.length;
    for (let i = 0; i < filters.length; i++) {
      const flt = filters[i]!;
      if (flt.applies(ctx) && !flt.accepts(ctx, inst, slot)) {
        stage = i;
        break;
      }
    }
    // stage === filters.length cannot happen here: the instance would have been chosen.
    const reason = filters[Math.min(stage, filters.length - 1)]!.reason;
    rejections[reason] = (rejections[reason] ?? 0) + 1;
    if (stage > bestStage) {
      bestStage = stage;
      best = inst;
    }
  }
  if (!best) return { reason: Reason.NO_INSTANCES, rejections };
  return { arn: best.arn, reason: filters[Math.min(bestStage, filters.length - 1)]!.reason, rejections };
}
