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
import { requireActiveCluster } from './clusters';
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
  const launchType = s.launchType === 'FARGATE' ? 'FARGATE' : 'EC2';
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
  const make = () =>
    newTaskRecord({
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
  const network = zones ? { constraints: [zoneConstraint(Object.keys(zones))], subnetByZone: zones } : { constraints: [], subnetByZone: undefined };
  return { cluster, td, needs, make, network };
}

export function constraintsOf(s: ServiceRecord, td: TaskDefinitionRecord) {
  return [...(td.placementConstraints ?? []), ...(s.placementConstraints ?? [])];
}

export async function launchReplicaTasks(ctx: ControlContext, s: ServiceRecord, d: ServiceDeploymentRecord, count: number): Promise<LaunchResult> {
  const { td, needs, make, network } = launchInputs(ctx, s, d);
  const out: TaskRecord[] = [];
  const request = serviceRequest(s, td, needs);
  for (let left = count; left > 0; ) {
    const r = await placeTasks(ctx, { ...request, constraints: [...request.constraints, ...network.constraints], subnetByZone: network.subnetByZone, count: Math.min(BATCH, left), makeTask: make });
    out.push(...r.tasks);
    left -= r.tasks.length;
    const f = r.result.failures[0];
    if (f) return { tasks: out, failure: failureInfo(f) };
  }
  return { tasks: out };
}

/**
 * One DAEMON task on a given instance, through the same placement path (every filter applies,
 * the commit re-checks the instance).
 */
export async function launchOnInstance(ctx: ControlContext, s: ServiceRecord, d: ServiceDeploymentRecord, instanceId: string): Promise<LaunchResult> {
  const { td, needs, make, network } = launchInputs(ctx, s, d);
  const request = serviceRequest(s, td, needs);
  const r = await placeTasks(ctx, { ...request, constraints: [...request.constraints, ...network.constraints], subnetByZone: network.subnetByZone, count: 1, on: [instanceId], makeTask: make });
  const f = r.result.failures[0];
  return f ? { tasks: r.tasks, failure: failureInfo(f) } : { tasks: r.tasks };
}

/** What the scheduler is asked for one of the service's tasks. */
export function serviceRequest(s: ServiceRecord, td: TaskDefinitionRecord, needs: ResourceNeeds) {
  const fargate = s.launchType === 'FARGATE';
  return {
    cluster: s.wharf.cluster,
    capacity: capacityOf(s),
    needs,
    group: `service:${s.serviceName}`,
    service: s.serviceName,
    constraints: fargate ? [] : constraintsOf(s, td),
    strategies: fargate ? FARGATE_STRATEGY : s.placementStrategy ?? [],
    requiredAttributes: (td.requiresAttributes ?? []).map((a) => ({ name: a.name, value: a.value })),
  };
}

function failureInfo(f: PlacementFailure): PlacementFailureInfo {
  // A failure's arn is the closest (or named) instance's; its id is the ARN's last segment.
  return f.arn ? { reason: f.reason, instanceId: f.arn.split('/').pop() } : { reason: f.reason };
}
