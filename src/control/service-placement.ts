/**
 * Launching a service's tasks through the one placement path (control/placement.ts): REPLICA
 * tasks where the scheduler chooses (the service's constraints and strategies), DAEMON tasks on
 * one named instance each. Both commit the task and the instance's debit in one transaction, so a
 * crash never leaves one without the other. Tasks carry group `service:<name>`, startedBy `<deployment id>` and wharf.serviceName.
 */
import type { ServiceDeploymentRecord, ServiceRecord, TaskDefinitionRecord, TaskRecord } from '../core/resources';
import { resolveResourceNeeds, type ResourceNeeds } from '../core/task-definition-resources';
import type { PlacementFailure } from '../scheduler';
import type { ControlContext } from './context';
import { placeTasks } from './placement';
import { findTaskDefinition } from './task-definitions';
import { newTaskRecord } from './task-records';
import { capacityOf } from '../core/fargate-pool';
import { isTerminal } from '../core/task-status';
import { providerGroups, providerPlacement } from './capacity-providers';
import { requireActiveCluster } from './clusters';
import { tasksOfService } from './service-records';
import { heldBack, isOnDemandFargate, reclaimSpotCapacity, releaseSpotHold } from './spot-capacity';
import { FARGATE_STRATEGY, taskTags } from './tasks';
import { resolveNetwork, subnetByZone, zoneConstraint } from './task-network';

export interface PlacementFailureInfo {
  reason: string;
  /** The closest instance's id (absent: no instance at all). */
  instanceId?: string;
}

export interface LaunchResult {
  tasks: TaskRecord[];
  failure?: PlacementFailureInfo;
}

const BATCH = 10;

function launchInputs(ctx: ControlContext, s: ServiceRecord, d: ServiceDeploymentRecord) {
  const cluster = requireActiveCluster(ctx, s.wharf.cluster);
  // A deregistered (INACTIVE) task definition still serves the deployments that use it.
  const td = findTaskDefinition(ctx, d.taskDefinition);
  if (!td) throw new Error(`task definition ${d.taskDefinition} of ${s.serviceArn} is gone`);
  const revision = s.wharf.revisions.find((r) => r.id === d.revisionId);
  // The deployment's own: an UpdateService may have moved the service between EC2 and Fargate.
  const launchType: 'EC2' | 'FARGATE' = (revision?.launchType ?? s.launchType) === 'FARGATE' ? 'FARGATE' : 'EC2';
  // Checked when the service was made or updated; a group deleted since stops the launch here.
  const awsvpc = revision?.networkConfiguration ? resolveNetwork(ctx, td, revision.networkConfiguration, launchType) : undefined;
  const zones = awsvpc ? subnetByZone(ctx, awsvpc) : undefined;
  const needs = resolveResourceNeeds(td);
  const tags = taskTags(undefined, {
    propagateTags: s.propagateTags,
    td,
    serviceTags: s.tags,
    managed: s.enableECSManagedTags ? { cluster: cluster.clusterName, service: s.serviceName } : undefined,
  });
  const make = (provider?: string) => () => {
    const t = newTaskRecord({
      partition: ctx.partition,
      cluster,
      td,
      needs,
      launchType,
      group: `service:${s.serviceName}`,
      startedBy: d.id,
      tags,
      now: ctx.clock.now(),
      serviceName: s.serviceName,
      awsvpc,
    });
    if (provider) t.capacityProviderName = provider;
    return t;
  };
  const network = zones ? { constraints: [zoneConstraint(Object.keys(zones))], subnetByZone: zones } : { constraints: [], subnetByZone: undefined };
  return { cluster, td, needs, make, network, launchType, strategy: revision?.capacityProviderStrategy };
}

export function constraintsOf(s: ServiceRecord, td: TaskDefinitionRecord) {
  return [...(td.placementConstraints ?? []), ...(s.placementConstraints ?? [])];
}

/**
 * With a capacity provider strategy, the deployment's tasks that are still wanted are counted
 * per provider and each new task goes where the split (core/capacity-provider-strategy.ts) puts
 * it, so replacements (a reclaimed Spot task) keep the service on its strategy.
 */
export async function launchReplicaTasks(ctx: ControlContext, s: ServiceRecord, d: ServiceDeploymentRecord, count: number): Promise<LaunchResult> {
  const { td, needs, make, network, launchType, strategy } = launchInputs(ctx, s, d);
  const out: TaskRecord[] = [];
  let shares: { provider?: string; count: number }[] = [{ count }];
  if (strategy?.length) {
    const existing = new Map<string, number>();
    for (const t of tasksOfService(ctx, s)) {
      if (t.startedBy !== d.id || t.desiredStatus !== 'RUNNING' || isTerminal(t.lastStatus) || !t.capacityProviderName) continue;
      existing.set(t.capacityProviderName, (existing.get(t.capacityProviderName) ?? 0) + 1);
    }
    shares = providerGroups(strategy, count, existing);
  }
  const onDemand = (p: string | undefined) => isOnDemandFargate(launchType, p);
  for (const share of shares) {
    // Spot waits while an on-demand launch takes the room reclaimed from Spot (spot-capacity.ts).
    if (heldBack(ctx, share.provider)) return { tasks: out, failure: { reason: 'RESOURCE:MEMORY' } };
    const request = serviceRequest(s, td, needs, share.provider, launchType);
    const constraints = [...request.constraints, ...network.constraints];
    for (let left = share.count; left > 0; ) {
      const r = await placeTasks(ctx, { ...request, constraints, subnetByZone: network.subnetByZone, count: Math.min(BATCH, left), makeTask: make(share.provider) });
      out.push(...r.tasks);
      left -= r.tasks.length;
      if (onDemand(share.provider) && r.tasks.length > 0 && left === 0) releaseSpotHold(ctx);
      const f = r.result.failures[0];
      if (f) {
        if (onDemand(share.provider)) await reclaimSpotCapacity(ctx, needs, left);
        return { tasks: out, failure: failureInfo(f) };
      }
    }
  }
  return { tasks: out };
}

/**
 * One DAEMON task on a given instance, through the same placement path (every filter applies,
 * the commit re-checks the instance).
 */
export async function launchOnInstance(ctx: ControlContext, s: ServiceRecord, d: ServiceDeploymentRecord, instanceId: string): Promise<LaunchResult> {
  const { td, needs, make, network, launchType } = launchInputs(ctx, s, d);
  const request = serviceRequest(s, td, needs, undefined, launchType);
  const r = await placeTasks(ctx, { ...request, constraints: [...request.constraints, ...network.constraints], subnetByZone: network.subnetByZone, count: 1, on: [instanceId], makeTask: make() });
  const f = r.result.failures[0];
  return f ? { tasks: r.tasks, failure: failureInfo(f) } : { tasks: r.tasks };
}

/**
 * What the scheduler is asked for one of the service's tasks (through `provider`, if given), run
 * as `launchType` (its deployment's; the service's by default).
 */
export function serviceRequest(s: ServiceRecord, td: TaskDefinitionRecord, needs: ResourceNeeds, provider?: string, launchType = s.launchType) {
  const fargate = launchType === 'FARGATE';
  const where = provider ? providerPlacement(provider) : { capacity: capacityOf({ launchType, wharf: s.wharf }), requiredAttributes: [] };
  return {
    cluster: s.wharf.cluster,
    capacity: where.capacity ?? s.wharf.cluster,
    needs,
    group: `service:${s.serviceName}`,
    service: s.serviceName,
    constraints: fargate ? [] : constraintsOf(s, td),
    strategies: fargate ? FARGATE_STRATEGY : s.placementStrategy ?? [],
    requiredAttributes: [...(td.requiresAttributes ?? []).map((a) => ({ name: a.name, value: a.value })), ...where.requiredAttributes],
  };
}

function failureInfo(f: PlacementFailure): PlacementFailureInfo {
  // A failure's arn is the closest (or named) instance's; its id is the ARN's last segment.
  return f.arn ? { reason: f.reason, instanceId: f.arn.split('/').pop() } : { reason: f.reason };
}
