/**
 * The task reaper: STOPPED tasks stay describable for a while (ECS: at least an hour), then are
 * removed; task definitions marked DELETE_IN_PROGRESS are removed once no task uses them;
 * deleted (INACTIVE) clusters are removed once their visibility window has passed
 * (control/clusters.ts).
 * plan() is pure; apply() writes with compare-and-swap, so a task that changed since the plan
 * is left for the next pass.
 */
import { clusterVisible } from '../control/clusters';
import { keys, type ClusterRecord, type TaskDefinitionRecord, type TaskRecord } from '../core/resources';
import type { Clock, Logger } from '../lib';
import type { State } from '../state/state';
import { StoreConflictError, type Store } from '../store/store';

export interface ReapPlan {
  tasks: { key: string; revision: number }[];
  taskDefinitions: { key: string; revision: number }[];
  /** Expired idempotency tokens. */
  tokens: { key: string; revision: number }[];
  /** INACTIVE clusters past their visibility window. */
  clusters: { key: string; revision: number }[];
}

export function planReap(
  tasks: Iterable<{ value: TaskRecord; modRevision: number }>,
  taskDefinitions: Iterable<{ value: TaskDefinitionRecord; modRevision: number }>,
  now: number,
  tokens: Iterable<{ key: string; value: unknown; modRevision: number }> = [],
  clusters: Iterable<{ value: ClusterRecord; modRevision: number }> = [],
): ReapPlan {
  const plan: ReapPlan = { tasks: [], taskDefinitions: [], tokens: [], clusters: [] };
  for (const e of clusters) {
    // A cluster created again under the same name is ACTIVE, so it is never reaped.
    if (!clusterVisible(e.value, now)) plan.clusters.push({ key: keys.cluster(e.value.clusterName), revision: e.modRevision });
  }
  for (const e of tokens) {
    const expiresAt = (e.value as { expiresAt?: number }).expiresAt;
    if (expiresAt !== undefined && expiresAt <= now) plan.tokens.push({ key: e.key, revision: e.modRevision });
  }
  const inUse = new Set<string>();
  for (const e of tasks) {
    const t = e.value;
    if (t.lastStatus === 'STOPPED' && t.wharf.expiresAt !== undefined && t.wharf.expiresAt <= now) {
      plan.tasks.push({ key: keys.task(t.wharf.cluster, t.wharf.id), revision: e.modRevision });
    } else if (t.taskDefinitionArn) {
      inUse.add(t.taskDefinitionArn);
    }
  }
  for (const e of taskDefinitions) {
    const td = e.value;
    if (td.status === 'DELETE_IN_PROGRESS' && !inUse.has(td.taskDefinitionArn)) {
      plan.taskDefinitions.push({ key: keys.taskDefinition(td.family, td.revision), revision: e.modRevision });
    }
  }
  return plan;
}

export class TaskReaperController {
  private timer?: { cancel(): void };
  private stopped = false;

  constructor(
    private readonly deps: { state: State; store: Store; clock: Clock; log: Logger; intervalMs?: number },
  ) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.reconcile()
        .catch((err) => this.deps.log.error({ err }, 'task reaper failed'))
        .finally(() => {
          if (!this.stopped) this.timer = this.deps.clock.setTimeout(tick, this.deps.intervalMs ?? 60_000);
        });
    };
    this.timer = this.deps.clock.setTimeout(tick, this.deps.intervalMs ?? 60_000);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  async reconcile(): Promise<ReapPlan> {
    const s = this.deps.state;
    const plan = planReap(s.tasks.all(), s.taskDefinitions.all(), this.deps.clock.now(), s.tokens.all(), s.clusters.all());
    for (const item of [...plan.tasks, ...plan.taskDefinitions, ...plan.tokens, ...plan.clusters]) {
      try {
        await this.deps.store.delete(item.key, item.revision);
      } catch (e) {
        if (!(e instanceof StoreConflictError)) throw e;
      }
    }
    if (plan.tasks.length + plan.taskDefinitions.length + plan.tokens.length + plan.clusters.length > 0) {
      this.deps.log.info(
        { tasks: plan.tasks.length, taskDefinitions: plan.taskDefinitions.length, tokens: plan.tokens.length, clusters: plan.clusters.length },
        'reaped',
      );
    }
    return plan;
  }
}
