/**
 * Launching a service's tasks: REPLICA tasks through the scheduler (placeTasks, with the
 * service's constraints and strategies), DAEMON tasks on one named instance each. Both commit
 * the task and the instance's debit in one transaction, so a crash never leaves one without the
 * other. Tasks carry group `service:<name>`, startedBy `<deployment id>` and wharf.serviceName.
 */
import { isWharfError } from '../core/errors';
import { fits, reserve } from '../core/instance-resources';
import type { ServiceDeploymentRecord, ServiceRecord, TaskDefinitionRecord, TaskRecord } from '../core/resources';
import { resolveResourceNeeds } from '../core/task-definition-resources';
import { Reason } from '../scheduler';
import { StoreConflictError } from '../store/store';
import { committed, type ControlContext } from './context';
import { usageOps } from './instance-usage';
import { placeTasks } from './placement';
import { findTaskDefinition } from './task-definitions';
import { newTaskRecord, reservationOf, taskKey } from './task-records';
import { requireActiveCluster } from './clusters';
import { taskTags } from './tasks';

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
  const vpc = revision?.networkConfiguration?.awsvpcConfiguration;
  const awsvpc = vpc ? { subnets: vpc.subnets, securityGroups: vpc.securityGroups ?? [], assignPublicIp: vpc.assignPublicIp } : undefined;
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
      launchType: 'EC2',
      group: `service:${s.serviceName}`,
      startedBy: d.id,
      tags,
      now: ctx.clock.now(),
      serviceName: s.serviceName,
      awsvpc,
    });
  return { cluster, td, needs, make };
}

export function constraintsOf(s: ServiceRecord, td: TaskDefinitionRecord) {
  return [...(td.placementConstraints ?? []), ...(s.placementConstraints ?? [])];
}

export async function launchReplicaTasks(ctx: ControlContext, s: ServiceRecord, d: ServiceDeploymentRecord, count: number): Promise<LaunchResult> {
  const { td, needs, make } = launchInputs(ctx, s, d);
  const out: TaskRecord[] = [];
  for (let left = count; left > 0; ) {
    const n = Math.min(BATCH, left);
    try {
      const r = await placeTasks(ctx, {
        cluster: s.wharf.cluster,
        needs,
        count: n,
        group: `service:${s.serviceName}`,
        service: s.serviceName,
        constraints: constraintsOf(s, td),
        strategies: s.placementStrategy ?? [],
        requiredAttributes: (td.requiresAttributes ?? []).map((a) => ({ name: a.name, value: a.value })),
        makeTask: make,
      });
      out.push(...r.tasks);
      left -= r.tasks.length;
      const f = r.result.failures[0];
      if (f) return { tasks: out, failure: { reason: f.reason, instanceId: f.arn?.split('/').pop() } };
    } catch (e) {
      if (isWharfError(e, 'InvalidParameterException') && e.message === Reason.NO_INSTANCES) return { tasks: out, failure: { reason: Reason.NO_INSTANCES } };
      throw e;
    }
  }
  return { tasks: out };
}

/** One DAEMON task on a given instance (resources re-checked in the transaction). */
export async function launchOnInstance(ctx: ControlContext, s: ServiceRecord, d: ServiceDeploymentRecord, instanceId: string): Promise<LaunchResult> {
  const { needs, make } = launchInputs(ctx, s, d);
  for (let attempt = 0; ; attempt++) {
    const e = ctx.state.instances.get(s.wharf.cluster, instanceId);
    if (!e || e.value.status !== 'ACTIVE') return { tasks: [], failure: { reason: 'INACTIVE', instanceId } };
    if (!e.value.agentConnected) return { tasks: [], failure: { reason: Reason.AGENT, instanceId } };
    const reservation = reservationOf(needs);
    const why = fits(e.value.remainingResources ?? [], reservation);
    if (why) return { tasks: [], failure: { reason: why, instanceId } };
    const t = make();
    t.containerInstanceArn = e.value.containerInstanceArn;
    t.wharf = { ...t.wharf, instanceId, reservation };
    const az = e.value.attributes?.find((a) => a.name === 'ecs.availability-zone')?.value;
    if (az) t.availabilityZone = az;
    try {
      const rev = await ctx.store.txn([
        ...usageOps(ctx, s.wharf.cluster, instanceId, reserve(e.value.remainingResources ?? [], reservation)),
        { op: 'create', key: taskKey(t), value: t },
      ]);
      await committed(ctx, rev);
      return { tasks: [t] };
    } catch (err) {
      if (!(err instanceof StoreConflictError) || attempt >= 20) throw err;
      await committed(ctx, await ctx.store.revision());
    }
  }
}
