/**
 * The scheduler's view of each cluster, kept beside the cache: one InMemoryClusterSnapshot per
 * cluster, built on first use and then kept exact by marking instances dirty on every change to
 * them or to a task placed on them, and rebuilding just those before each placement decision.
 *
 * The per-instance task tallies (running, per group, per service) are kept incrementally from
 * each task change's before and after, so rebuilding an instance never walks its tasks, and a
 * task change that leaves the tallies as they were (most agent reports) marks nothing.
 */
import { readResources } from '../core/instance-resources';
import type { ContainerInstanceRecord } from '../core/resources';
import type { Resource } from '../core/shapes/ecs';
import { InMemoryClusterSnapshot, type InstanceResources, type SnapshotInstance } from '../scheduler';
import type { State, StateChange } from './state';

/** The scheduler's form of an instance's resource list (ports as sets for fast checks). */
function resourcesOf(list: Resource[] | undefined): InstanceResources {
  const h = readResources(list);
  return { cpu: h.cpu, memory: h.memory, tcpPorts: new Set(h.ports), udpPorts: new Set(h.portsUdp), gpuIds: h.gpuIds };
}

/** What the scheduler counts of the tasks placed on one instance. */
interface Tally {
  running: number;
  byGroup: Map<string, number>;
  byService: Map<string, number>;
}

type TaskLike = { desiredStatus?: string; group?: string; wharf?: { instanceId?: string; instanceCluster?: string; released?: boolean; serviceName?: string } };

/** The instance a task counts on (placed and not released), as State.tasksByInstance holds it. */
function holder(t: TaskLike | undefined): string | undefined {
  return t?.wharf?.instanceId && !t.wharf.released ? t.wharf.instanceId : undefined;
}

function bump(m: Map<string, number>, k: string | undefined, d: number): void {
  if (!k) return;
  const n = (m.get(k) ?? 0) + d;
  if (n === 0) m.delete(k);
  else m.set(k, n);
}

/**
 * ECS's runningTasksCount counts the tasks whose desiredStatus is RUNNING (DescribeContainerInstances
 * and the cluster query language use the same definition), and those are also the tasks that
 * weigh on spread and distinctInstance.
 */
function addTo(tally: Tally, t: TaskLike, sign: 1 | -1): void {
  if (t.desiredStatus === 'STOPPED') return;
  tally.running += sign;
  bump(tally.byGroup, t.group, sign);
  bump(tally.byService, t.wharf?.serviceName, sign);
}

/** Whether a task's contribution to its instance's tally is the same before and after. */
function sameContribution(a: TaskLike, b: TaskLike): boolean {
  const counted = (t: TaskLike) => t.desiredStatus !== 'STOPPED';
  return (
    counted(a) === counted(b) &&
    (!counted(a) || (a.group === b.group && a.wharf?.serviceName === b.wharf?.serviceName))
  );
}

export class PlacementView {
  /** instanceId -> tally, computed on first need and then kept by onChange. */
  private tallies = new Map<string, Tally>();
  private snapshots = new Map<string, InMemoryClusterSnapshot>();
  private dirty = new Map<string, Set<string>>();
  private unsubscribe: () => void;

  constructor(private readonly state: State) {
    this.unsubscribe = state.subscribe((c) => this.onChange(c));
  }

  stop(): void {
    this.unsubscribe();
  }

  /** The cluster's snapshot, exact as of the cache's current revision. */
  snapshot(cluster: string): InMemoryClusterSnapshot {
    let snap = this.snapshots.get(cluster);
    if (!snap) {
      snap = new InMemoryClusterSnapshot([...this.state.instances.children(cluster).values()].map((e) => this.build(e.value)));
      this.snapshots.set(cluster, snap);
      this.dirty.delete(cluster);
      return snap;
    }
    const d = this.dirty.get(cluster);
    if (d) {
      for (const id of d) {
        const rec = this.state.instances.get(cluster, id)?.value;
        if (rec) snap.upsert(this.build(rec));
        else snap.remove(id);
      }
      this.dirty.delete(cluster);
    }
    return snap;
  }

  /**
   * The snapshot's picture of these instances was changed ahead of the cache (a group commit
   * decides several placements on one snapshot, each seeing the ones before it, before any is
   * written): they are rebuilt from the cache before the next decision.
   */
  forget(cluster: string, instanceIds: Iterable<string>): void {
    for (const id of instanceIds) this.mark(cluster, id);
  }

  /** The scheduler's picture of one instance, from its record and the tasks placed on it. */
  build(rec: ContainerInstanceRecord): SnapshotInstance {
    const attributes = new Map<string, string | undefined>();
    for (const a of rec.attributes ?? []) attributes.set(a.name, a.value);
    const tally = this.tallyOf(rec.wharf.id);
    // Copies: the snapshot keeps what it is given, the tally keeps changing.
    const tasksByGroup = new Map(tally.byGroup);
    const tasksByService = new Map(tally.byService);
    const running = tally.running;
    const inst: SnapshotInstance = {
      id: rec.wharf.id,
      arn: rec.containerInstanceArn,
      status: rec.status as SnapshotInstance['status'],
      agentConnected: rec.agentConnected ?? false,
      registeredAt: Math.round((rec.registeredAt ?? 0) * 1000),
      attributes,
      registered: resourcesOf(rec.registeredResources),
      remaining: resourcesOf(rec.remainingResources),
      runningTasksCount: running,
      tasksByGroup,
      tasksByService,
      ...(rec.versionInfo?.agentVersion ? { agentVersion: rec.versionInfo.agentVersion } : {}),
      ...(rec.ec2InstanceId ? { ec2InstanceId: rec.ec2InstanceId } : {}),
    };
    return inst;
  }

  private tallyOf(instanceId: string): Tally {
    let tally = this.tallies.get(instanceId);
    if (tally) return tally;
    tally = { running: 0, byGroup: new Map(), byService: new Map() };
    for (const [id, taskCluster] of this.state.tasksByInstance.get(instanceId) ?? []) {
      const t = this.state.tasks.get(taskCluster, id)?.value;
      if (t) addTo(tally, t, 1);
    }
    this.tallies.set(instanceId, tally);
    return tally;
  }

  private mark(cluster: string, instanceId: string): void {
    if (!this.snapshots.has(cluster)) return;
    let d = this.dirty.get(cluster);
    if (!d) this.dirty.set(cluster, (d = new Set()));
    d.add(instanceId);
  }

  private onChange(c: StateChange): void {
    if (c.kind === 'instances') {
      if (!c.current) this.tallies.delete(c.child);
      this.mark(c.parent, c.child);
    } else if (c.kind === 'tasks') {
      const prev = c.previous?.value as TaskLike | undefined;
      const cur = c.current?.value as TaskLike | undefined;
      const before = holder(prev);
      const after = holder(cur);
      if (before && before === after && sameContribution(prev!, cur!)) return;
      // Tallies not computed yet are computed from the (already updated) cache when needed.
      // The instance may be in another cluster than the task (a Fargate task on the pool).
      if (before) {
        const t = this.tallies.get(before);
        if (t) addTo(t, prev!, -1);
        this.mark(prev!.wharf?.instanceCluster ?? c.parent, before);
      }
      if (after) {
        const t = this.tallies.get(after);
        if (t) addTo(t, cur!, 1);
        this.mark(cur!.wharf?.instanceCluster ?? c.parent, after);
      }
    }
  }
}
