/**
 * The one way tasks are placed and committed, for every caller (RunTask, StartTask, a service's
 * REPLICA and DAEMON launches): the scheduler decides on the cluster's snapshot, either choosing
 * instances (`place`) or checking the instances the caller names (`placeOn`: StartTask, a daemon
 * task), then a store transaction creates the tasks and debits each chosen instance's
 * remaining resources (its usage record, compare-and-swapped with its registration's revision
 * checked). Placements asked for while a transaction is in flight are decided together and
 * written in one transaction (group commit: control/placement-batch.ts). If another placement
 * touched one of those instances first, the transaction fails and the decision is made again on
 * the fresh snapshot, so no instance is ever overbooked however many placements race.
 *
 * Tasks that cannot be placed come back as failures (values, with ECS's reasons), never as
 * thrown errors: each caller says what they mean to its own user (RunTask refuses a cluster
 * without instances, a service writes an event).
 */
import { SANDBOX_ATTRIBUTE } from '../core/fargate-pool';
import type { TaskRecord } from '../core/resources';
import type { Failure, PlacementConstraint, PlacementStrategy, Resource } from '../core/shapes/ecs';
import type { ResourceNeeds } from '../core/task-definition-resources';
import { place, placeOn, Reason, type InMemoryClusterSnapshot, type PlacementRequest, type PlacementResult } from '../scheduler';
import type { TxnOp } from '../store/store';
import type { ControlContext } from './context';
import { placementBatcher, type Decision } from './placement-batch';
import { reservationOf, taskKey, withEniSubnet } from './task-records';

export interface PlaceTasksInput {
  cluster: string;
  needs: ResourceNeeds;
  count: number;
  group: string;
  service?: string;
  constraints: PlacementConstraint[];
  strategies: PlacementStrategy[];
  requiredAttributes: { name: string; value?: string }[];
  /**
   * The cluster whose instances take the tasks, when not `cluster` itself: FARGATE_POOL for
   * Fargate tasks, which belong to the user's cluster and run on the region's pool. Such tasks
   * carry no containerInstanceArn (as on ECS); their record names the pool host.
   */
  capacity?: string;
  /** Place task i on on[i] instead of letting the scheduler choose (count is then on.length). */
  on?: readonly string[];
  /**
   * Decides, once the scheduler has answered, whether anything is written. Default: write the
   * tasks placed (and extraOps). RunTask writes nothing when the cluster has no instance.
   */
  commitIf?: (result: PlacementResult) => boolean;
  /**
   * awsvpc: the subnet of each zone the task may run in (control/task-network.ts). The task's ENI
   * takes the subnet of the zone of the host it lands on.
   */
  subnetByZone?: Record<string, string>;
  /** Makes the task record for the i-th placed task (not yet placed). */
  makeTask: (i: number) => TaskRecord;
  /**
   * When the i-th task already exists unplaced (waiting in PROVISIONING for capacity): the
   * revision its record has, so the commit updates it (compare-and-swap) instead of creating it.
   */
  existingRevision?: (i: number) => number | undefined;
  /** More writes to commit in the same transaction as the tasks (e.g. an idempotency token). */
  extraOps?: (tasks: TaskRecord[], failures: Failure[]) => TxnOp[];
}

export interface PlaceTasksResult {
  tasks: TaskRecord[];
  failures: Failure[];
  /** The scheduler's answer of the last attempt (for service events). */
  result: PlacementResult;
}

/** Whether a placement found the cluster without any ACTIVE instance. */
export function foundNoInstances(result: PlacementResult): boolean {
  return result.failures.some((f) => f.reason === Reason.NO_INSTANCES);
}

/** What the scheduler is asked, from a placement input. */
export function placementRequest(input: Omit<PlaceTasksInput, 'makeTask'>): PlacementRequest {
  return {
    needs: { cpu: input.needs.cpu, memory: input.needs.memory, tcpPorts: input.needs.portsTcp, udpPorts: input.needs.portsUdp, gpus: input.needs.gpus },
    count: input.count,
    group: input.group,
    service: input.service,
    constraints: input.constraints,
    strategies: input.strategies,
    requiredAttributes: input.requiredAttributes,
  };
}

export function placeTasks(ctx: ControlContext, input: PlaceTasksInput): Promise<PlaceTasksResult> {
  const request = placementRequest(input);
  const capacity = input.capacity ?? input.cluster;
  return placementBatcher(ctx).submit<PlaceTasksResult>(ctx, capacity, (snapshot) => decide(ctx, input, request, capacity, snapshot));
}

/**
 * One decision on the snapshot (which shows the placements decided before it in the same
 * group commit): the task records, what each takes of its instance, and the caller's other writes.
 */
function decide(
  ctx: ControlContext,
  input: PlaceTasksInput,
  request: PlacementRequest,
  capacity: string,
  snapshot: InMemoryClusterSnapshot,
): { write: Decision<PlaceTasksResult> } | { answer: PlaceTasksResult } {
  const pooled = capacity !== input.cluster;
  const result = input.on ? placeOn(request, input.on, snapshot) : place(request, snapshot);
  if (input.commitIf && !input.commitIf(result)) return { answer: { tasks: [], failures: failuresOf(result), result } };
  const tasks: TaskRecord[] = [];
  const takes: Decision<PlaceTasksResult>['takes'] = [];
  const ops: TxnOp[] = [];
  for (const p of result.placements) {
    const t = input.makeTask(p.taskIndex);
    const rev = input.existingRevision?.(p.taskIndex);
    const reservation = reservationOf(input.needs, { tcp: p.tcpPorts, udp: p.udpPorts }, p.gpuIds);
    if (pooled) t.wharf = { ...t.wharf, instanceId: p.instanceId, instanceCluster: capacity, reservation };
    else {
      t.containerInstanceArn = p.instanceArn;
      t.wharf = { ...t.wharf, instanceId: p.instanceId, reservation };
    }
    const rec = ctx.state.instances.get(capacity, p.instanceId)?.value;
    if (!rec) throw new Error(`placement chose unknown instance ${p.instanceId}`);
    const az = rec.attributes?.find((a) => a.name === 'ecs.availability-zone')?.value;
    if (az) t.availabilityZone = az;
    const subnet = az ? input.subnetByZone?.[az] : undefined;
    if (subnet) t.attachments = withEniSubnet(t.attachments ?? [], subnet);
    const sandbox = pooled ? rec.attributes?.find((a) => a.name === SANDBOX_ATTRIBUTE)?.value : undefined;
    if (sandbox) t.attributes = [...(t.attributes ?? []), { name: SANDBOX_ATTRIBUTE, value: sandbox }];
    takes.push({ capacity, instanceId: p.instanceId, reservation });
    tasks.push(t);
    ops.push(rev === undefined ? { op: 'create', key: taskKey(t), value: t } : { op: 'update', key: taskKey(t), value: t, expectedRevision: rev });
  }
  const failures = failuresOf(result);
  ops.unshift(...(input.extraOps?.(tasks, failures) ?? []));
  const answer = { tasks, failures, result };
  if (ops.length === 0) return { answer };
  return { write: { answer, ops, takes, request, result, capacity, rebaseable: input.constraints.length === 0 } };
}

function failuresOf(r: PlacementResult): Failure[] {
  return r.failures.map((f) => (f.arn ? { arn: f.arn, reason: f.reason } : { reason: f.reason }));
}
