/**
 * chooseTasksToStop(): which of a service's tasks go when it scales in, following the same
 * strategies as placement (ECS developer guide, "task placement strategies" used for
 * termination):
 *   spread(attribute:X)  stop from the value with the most tasks of the service (keeps balance)
 *   spread(instanceId)   stop from the instance with the most tasks of the service
 *   binpack(R)           stop the task whose instance has the most R free afterwards
 *   random               no preference
 * before any strategy: tasks not yet RUNNING, unhealthy tasks and tasks on instances the
 * snapshot no longer knows go first; protected tasks (scale-in protection) never go. Final ties
 * are broken at random. Each pick updates the counts the next pick sees.
 */
import type { PlacementStrategy } from '../core/shapes/ecs';
import { compareScores } from './call-state';
import { defaultStrategies, normalizeStrategies } from './placement-plan';
import type { ClusterSnapshot } from './types';

export interface ServiceTaskInfo {
  taskArn: string;
  instanceId: string;
  lastStatus?: string;
  /** False when the task's health (container or load balancer) is UNHEALTHY. */
  healthy?: boolean;
  /** Scale-in protection is on. */
  protected?: boolean;
  /** What the task reserves (for binpack: the instance gets it back). */
  cpu?: number;
  memory?: number;
}

export function chooseTasksToStop(
  tasks: readonly ServiceTaskInfo[],
  count: number,
  strategies: readonly PlacementStrategy[] | undefined,
  snapshot: ClusterSnapshot,
  opts: { random?: () => number } = {},
): string[] {
  const random = opts.random ?? Math.random;
  const all = normalizeStrategies(strategies && strategies.length > 0 ? strategies : defaultStrategies(true));
  const cut = all.findIndex((s) => s.type === 'random');
  const S = cut >= 0 ? all.slice(0, cut) : all;
  const left = tasks.filter((t) => !t.protected);
  const valueCounts = new Map<string, Map<string | undefined, number>>();
  const perInstance = new Map<string, number>();
  const freed = new Map<string, { cpu: number; memory: number }>();
  const attr = (t: ServiceTaskInfo, name: string) => snapshot.instance(t.instanceId)?.attributes.get(name);
  const spreadAttributes = [...new Set(S.flatMap((s) => (s.attribute !== undefined ? [s.attribute] : [])))];
  for (const t of left) {
    perInstance.set(t.instanceId, (perInstance.get(t.instanceId) ?? 0) + 1);
    for (const a of spreadAttributes) {
      let m = valueCounts.get(a);
      if (!m) valueCounts.set(a, (m = new Map()));
      const v = attr(t, a);
      m.set(v, (m.get(v) ?? 0) + 1);
    }
  }
  const key = (t: ServiceTaskInfo): number[] => {
    const inst = snapshot.instance(t.instanceId);
    const preferred = !inst || (t.lastStatus !== undefined && t.lastStatus !== 'RUNNING') || t.healthy === false;
    const out = [preferred ? 0 : 1];
    for (const s of S) {
      if (s.type === 'spread' && s.attribute !== undefined) out.push(-(valueCounts.get(s.attribute)!.get(attr(t, s.attribute)) ?? 0));
      else if (s.type === 'spread') out.push(-(perInstance.get(t.instanceId) ?? 0));
      else if (s.type === 'binpack') {
        const r = s.resource!;
        const base = inst ? inst.remaining[r] : 0;
        out.push(-(base + (freed.get(t.instanceId)?.[r] ?? 0) + (t[r] ?? 0)));
      }
    }
    return out;
  };
  const chosen: string[] = [];
  while (chosen.length < count && left.length > 0) {
    let best = -1;
    let bestKey: number[] = [];
    let ties = 0;
    for (let i = 0; i < left.length; i++) {
      const k = key(left[i]!);
      const c = best < 0 ? -1 : compareScores(k, bestKey);
      if (c < 0) {
        best = i;
        bestKey = k;
        ties = 1;
      } else if (c === 0 && random() * ++ties < 1) best = i;
    }
    const t = left.splice(best, 1)[0]!;
    chosen.push(t.taskArn);
    perInstance.set(t.instanceId, perInstance.get(t.instanceId)! - 1);
    for (const a of spreadAttributes) {
      const m = valueCounts.get(a)!;
      const v = attr(t, a);
      m.set(v, m.get(v)! - 1);
    }
    const f = freed.get(t.instanceId) ?? { cpu: 0, memory: 0 };
    freed.set(t.instanceId, { cpu: f.cpu + (t.cpu ?? 0), memory: f.memory + (t.memory ?? 0) });
  }
  return chosen;
}
