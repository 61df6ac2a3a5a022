/**
 * The scheduler's view of each cluster, kept beside the cache: one InMemoryClusterSnapshot per
 * cluster, built on first use and then kept exact by marking instances dirty on every change to
 * them or to a task placed on them, and rebuilding just those before each placement decision.
 */
import type { ContainerInstanceRecord } from '../core/resources';
import type { Resource } from '../core/shapes/ecs';
import { InMemoryClusterSnapshot, type InstanceResources, type SnapshotInstance } from '../scheduler';
import type { State, StateChange } from './state';

function resourcesOf(list: Resource[] | undefined): InstanceResources {
  let cpu = 0;
  let memory = 0;
  let tcp: string[] = [];
  let udp: string[] = [];
  let gpu: string[] = [];
  for (const r of list ?? []) {
    if (r.name === 'CPU') cpu = r.integerValue ?? 0;
    else if (r.name === 'MEMORY') memory = r.integerValue ?? 0;
    else if (r.name === 'PORTS') tcp = r.stringSetValue ?? [];
    else if (r.name === 'PORTS_UDP') udp = r.stringSetValue ?? [];
    else if (r.name === 'GPU') gpu = r.stringSetValue ?? [];
  }
  return { cpu, memory, tcpPorts: new Set(tcp.map(Number)), udpPorts: new Set(udp.map(Number)), gpuIds: gpu };
}

export class PlacementView {
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

  /** The scheduler's picture of one instance, from its record and the tasks placed on it. */
  build(rec: ContainerInstanceRecord): SnapshotInstance {
    const attributes = new Map<string, string | undefined>();
    for (const a of rec.attributes ?? []) attributes.set(a.name, a.value);
    const tasksByGroup = new Map<string, number>();
    const tasksByService = new Map<string, number>();
    let running = 0;
    for (const id of this.state.tasksByInstance.get(rec.wharf.id) ?? []) {
      const t = this.state.tasks.get(rec.wharf.cluster, id)?.value;
      if (!t) continue;
      if (t.lastStatus === 'RUNNING') running++;
      if (t.desiredStatus === 'STOPPED') continue;
      if (t.group) tasksByGroup.set(t.group, (tasksByGroup.get(t.group) ?? 0) + 1);
      const svc = t.wharf.serviceName;
      if (svc) tasksByService.set(svc, (tasksByService.get(svc) ?? 0) + 1);
    }
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

  private mark(cluster: string, instanceId: string): void {
    if (!this.snapshots.has(cluster)) return;
    let d = this.dirty.get(cluster);
    if (!d) this.dirty.set(cluster, (d = new Set()));
    d.add(instanceId);
  }

  private onChange(c: StateChange): void {
    if (c.kind === 'instances') {
      this.mark(c.parent, c.child);
    } else if (c.kind === 'tasks') {
      const before = (c.previous?.value as { wharf?: { instanceId?: string } } | undefined)?.wharf?.instanceId;
      const after = (c.current?.value as { wharf?: { instanceId?: string } } | undefined)?.wharf?.instanceId;
      if (before) this.mark(c.parent, before);
      if (after && after !== before) this.mark(c.parent, after);
    }
  }
}
