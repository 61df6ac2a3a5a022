/**
 * Services' `loadBalancers`, pure: which target each task is in each target group, which targets
 * to register and deregister, whose drain is over, and how healthy each task's targets are.
 *
 * A task is registered once it is RUNNING and still wanted, in the target groups of the
 * deployment that launched it (its service revision's loadBalancers, so after an UpdateService
 * old tasks keep their groups and new ones join the new groups):
 *   - `ip` groups (awsvpc): the task's ENI address and the containerPort;
 *   - `instance` groups (bridge, host): the container instance's ec2InstanceId (Wharf hosts
 *     without one: the container instance id) and the host port Docker mapped for the
 *     containerPort (the container's networkBindings).
 * Its targets are deregistered when it is told to stop (DEACTIVATING, control/task-drain.ts) or,
 * if it stopped on its own, when it is seen stopped.
 */
import type { ServiceRecord, TaskRecord } from '../core/resources';
import type { LoadBalancer } from '../core/shapes/ecs';
import { elbIdOf, targetKeyOf, type TargetGroupRecord, type TargetHealthRecord, type TargetRecord } from '../control/elbv2-records';
import type { State } from '../state/state';
import type { TargetHealthView } from './service-task-view';

export interface TargetEnv {
  /** The target group of an id (the end of its ARN), undefined when it does not exist (deleted). */
  targetGroupById(id: string): TargetGroupRecord | undefined;
  /**
   * The id an instance target names the container instance a task runs on by: its ec2InstanceId,
   * or, for Wharf hosts that are not EC2 instances, its container instance id (the load balancer
   * controller resolves either).
   */
  instanceTargetId(t: TaskRecord): string | undefined;
  health(targetGroupId: string, id: string, port: number): TargetHealthRecord | undefined;
  target(targetGroupId: string, id: string, port: number): TargetRecord | undefined;
}

/** The load balancers of the deployment that launched the task (those naming a target group). */
export function loadBalancersOf(s: ServiceRecord, t: TaskRecord): LoadBalancer[] {
  const d = s.wharf.deployments.find((x) => x.id === t.startedBy);
  const r = d && s.wharf.revisions.find((x) => x.id === d.revisionId);
  const lbs = r ? r.loadBalancers : (s.loadBalancers ?? []);
  return lbs.filter((lb) => lb.targetGroupArn && lb.containerName && lb.containerPort !== undefined);
}

/** Every target group ARN a service names, in any of its revisions. */
export function targetGroupsOf(s: ServiceRecord): Set<string> {
  const out = new Set<string>();
  for (const lb of s.loadBalancers ?? []) if (lb.targetGroupArn) out.add(lb.targetGroupArn);
  for (const r of s.wharf.revisions) for (const lb of r.loadBalancers) if (lb.targetGroupArn) out.add(lb.targetGroupArn);
  return out;
}

/** Keys (`cluster/name`) of the services that name a target group (by id). */
export function servicesUsingTargetGroup(state: State, targetGroupId: string): string[] {
  const out: string[] = [];
  for (const e of state.services.all()) {
    const s = e.value;
    if (s.status === 'INACTIVE') continue;
    for (const arn of targetGroupsOf(s)) {
      if (elbIdOf(arn) === targetGroupId) {
        out.push(`${s.wharf.cluster}/${s.serviceName}`);
        break;
      }
    }
  }
  return out;
}

function groupOf(env: TargetEnv, arn: string): TargetGroupRecord | undefined {
  const tg = env.targetGroupById(elbIdOf(arn));
  return tg?.TargetGroupArn === arn ? tg : undefined;
}

const eniAddress = (t: TaskRecord) => t.containers?.flatMap((c) => c.networkInterfaces ?? []).find((n) => n.privateIpv4Address)?.privateIpv4Address;

/** The target a task is in one group, or undefined while it has none (no address or port yet). */
export function targetFor(t: TaskRecord, lb: LoadBalancer, tg: TargetGroupRecord, instanceId: string | undefined): { id: string; port: number; label: string } | undefined {
  if (tg.TargetType === 'ip') {
    const ip = eniAddress(t);
    return ip ? { id: ip, port: lb.containerPort!, label: `(task ${t.wharf.id})` } : undefined;
  }
  const c = t.containers?.find((x) => x.name === lb.containerName);
  const b = c?.networkBindings?.find((x) => x.containerPort === lb.containerPort && (x.protocol ?? 'tcp') === 'tcp' && x.hostPort);
  return instanceId && b ? { id: instanceId, port: b.hostPort!, label: `(instance ${instanceId})` } : undefined;
}

/** How the service planner sees a task's targets: one entry per existing target group. */
export function targetHealthViews(s: ServiceRecord, t: TaskRecord, env: TargetEnv): TargetHealthView[] | undefined {
  const lbs = loadBalancersOf(s, t);
  if (lbs.length === 0) return undefined;
  const out: TargetHealthView[] = [];
  for (const lb of lbs) {
    const tg = groupOf(env, lb.targetGroupArn!);
    // A deleted group cannot judge anyone: it must not hold the service back.
    if (!tg) continue;
    const target = targetFor(t, lb, tg, env.instanceTargetId(t));
    const v: TargetHealthView = { targetGroupArn: tg.TargetGroupArn, label: target?.label ?? `(task ${t.wharf.id})`, port: target?.port ?? lb.containerPort! };
    // Only this task's registration, and only health seen since it (a record left from an
    // earlier target at the same address and port says nothing; DescribeTargetHealth agrees).
    const tgId = elbIdOf(tg.TargetGroupArn);
    const reg = target && env.target(tgId, target.id, target.port);
    const h = reg && reg.ecsTaskArn === t.taskArn ? env.health(tgId, target.id, target.port) : undefined;
    if (h && h.updatedAt >= reg!.registeredAt) {
      v.state = h.State;
      if (h.Description) v.description = h.Description;
    }
    out.push(v);
  }
  return out;
}

export interface OwnedTarget {
  targetGroupId: string;
  key: string;
  revision: number;
  record: TargetRecord;
}

export interface TargetsPlan {
  register: { targetGroupArn: string; key: string; record: TargetRecord }[];
  deregister: { targetGroupArn: string; key: string; revision: number }[];
  /** DEACTIVATING tasks whose drain is over. */
  finish: string[];
  /** Target groups the service names that do not exist. */
  missingGroups: string[];
  /** Epoch ms of the next drain deadline. */
  wakeAt?: number;
}

/**
 * One pass over a service's targets. `tasks` are the service's tasks; `owned` the targets ECS
 * registered for them (or for tasks that no longer exist).
 */
export function planTargets(s: ServiceRecord, tasks: readonly TaskRecord[], owned: readonly OwnedTarget[], env: TargetEnv, now: number): TargetsPlan {
  const plan: TargetsPlan = { register: [], deregister: [], finish: [], missingGroups: [] };
  const missing = new Set<string>();
  const want = new Map<string, { targetGroupArn: string; record: TargetRecord }>();
  for (const t of tasks) {
    if (t.lastStatus !== 'RUNNING' || t.desiredStatus !== 'RUNNING') continue;
    for (const lb of loadBalancersOf(s, t)) {
      const tg = groupOf(env, lb.targetGroupArn!);
      if (!tg) {
        missing.add(lb.targetGroupArn!);
        continue;
      }
      const target = targetFor(t, lb, tg, env.instanceTargetId(t));
      if (!target) continue;
      const record: TargetRecord = { Id: target.id, Port: target.port, registeredAt: now, ecsTaskArn: t.taskArn };
      if (t.availabilityZone) record.AvailabilityZone = t.availabilityZone;
      want.set(targetKeyOf(elbIdOf(tg.TargetGroupArn), target.id, target.port), { targetGroupArn: tg.TargetGroupArn, record });
    }
  }
  const have = new Map(owned.map((o) => [o.key, o]));
  for (const [key, w] of want) if (have.get(key)?.record.ecsTaskArn !== w.record.ecsTaskArn) plan.register.push({ key, ...w });
  for (const o of owned) {
    if (want.has(o.key)) continue;
    plan.deregister.push({ targetGroupArn: env.targetGroupById(o.targetGroupId)?.TargetGroupArn ?? '', key: o.key, revision: o.revision });
  }
  for (const t of tasks) {
    const d = t.wharf.deactivating;
    if (t.lastStatus !== 'DEACTIVATING' || t.desiredStatus !== 'RUNNING' || !d) continue;
    // Drained: the load balancer controller deleted every health record of its targets.
    const drained = d.targets.every((x) => !x.targetGroupArn || !env.health(elbIdOf(x.targetGroupArn), x.id, x.port));
    if (drained || now >= d.until) plan.finish.push(t.wharf.id);
    else plan.wakeAt = Math.min(plan.wakeAt ?? Infinity, d.until);
  }
  plan.missingGroups = [...missing];
  return plan;
}
