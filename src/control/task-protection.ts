/**
 * Task scale-in protection: UpdateTaskProtection and GetTaskProtection. A protected task of a
 * service is neither stopped when the service scales in nor replaced by a deployment until its
 * protection expires or is removed (the service planner reads `wharf.protectedUntil`, and wakes
 * when the earliest protection expires).
 *
 *   protectionEnabled=true  [expiresInMinutes 1..2880, default 120]  -> protectedUntil = now + m
 *   protectionEnabled=false                                           -> protectedUntil removed
 *   now >= protectedUntil                                             -> reads as not protected
 *
 * Only tasks of a service can be protected; a standalone task is a `TASK_NOT_VALID` failure and
 * an unknown one `MISSING`, as ECS answers them. Expiry needs no write: whoever reads compares
 * with the clock, so a protection can never outlive its time because a timer was lost.
 *
 * An agent (cluster join token) may call these for the tasks of the container instance it speaks
 * for (the signed `x-wharf-container-instance` header, `Caller.containerInstanceArn`): that is how
 * a container protects itself through `$ECS_AGENT_URI/task-protection/v1/state`.
 */
import { idOf, taskArn } from '../core/arn';
import { WharfError, invalidParameter } from '../core/errors';
import { keys, type TaskRecord } from '../core/resources';
import type {
  Failure,
  GetTaskProtectionRequest,
  GetTaskProtectionResponse,
  ProtectedTask,
  UpdateTaskProtectionRequest,
  UpdateTaskProtectionResponse,
} from '../core/shapes/ecs';
import { instanceClusterOf } from '../core/fargate-pool';
import { epochSeconds } from '../lib';
import { casUpdate } from '../store/store';
import { requireActiveCluster } from './clusters';
import { committed, type Caller, type ControlContext } from './context';

export const DEFAULT_PROTECTION_MINUTES = 120;
export const MAX_PROTECTION_MINUTES = 2880;
const MAX_UPDATE = 10;
const MAX_GET = 100;

/** Whether a task is protected at `now` (epoch ms). */
export function isProtected(t: Pick<TaskRecord, 'wharf'>, now: number): boolean {
  return t.wharf.protectedUntil !== undefined && t.wharf.protectedUntil > now;
}

function protectedTask(t: TaskRecord, now: number): ProtectedTask {
  return isProtected(t, now)
    ? { taskArn: t.taskArn, protectionEnabled: true, expirationDate: epochSeconds(t.wharf.protectedUntil!) }
    : { taskArn: t.taskArn, protectionEnabled: false };
}

type Resolved = { task: TaskRecord } | { failure: Failure };

function resolve(ctx: ControlContext, cluster: string, ref: string): Resolved {
  const { id, cluster: named } = idOf(ref, 'task');
  const t = !named || named === cluster ? ctx.state.tasks.get(cluster, id)?.value : undefined;
  const arn = t?.taskArn ?? (ref.startsWith('arn:') ? ref : taskArn(ctx.partition, cluster, id));
  if (!t) return { failure: { arn, reason: 'MISSING' } };
  if (!t.wharf.serviceName) return { failure: { arn, reason: 'TASK_NOT_VALID', detail: 'The task is not part of a service.' } };
  return { task: t };
}

/**
 * A join token speaks for one container instance: it may touch only the tasks placed there. A
 * user's key may touch any task.
 */
function checkAgentScope(ctx: ControlContext, caller: Caller | undefined, operation: string, cluster: string, refs: readonly string[]): void {
  if (!caller?.isAgent) return;
  const inst = caller.containerInstanceArn ? idOf(caller.containerInstanceArn, 'container-instance') : undefined;
  for (const ref of refs) {
    const { id, cluster: named } = idOf(ref, 'task');
    const t = !named || named === cluster ? ctx.state.tasks.get(cluster, id)?.value : undefined;
    if (!t) continue; // answered as a MISSING failure, which reveals nothing
    // A Fargate task's instance is in the region's pool (FARGATE_POOL), not in the task's cluster.
    const mine = inst !== undefined && (inst.cluster === undefined || inst.cluster === instanceClusterOf(t)) && t.wharf.instanceId === inst.id;
    if (!mine) {
      throw new WharfError(
        'AccessDeniedException',
        `User: ${caller.principalArn} is not authorized to perform: ecs:${operation} on resource: ${t.taskArn} (a cluster join token may only act on the tasks of the container instance it speaks for).`,
      );
    }
  }
}

export async function updateTaskProtection(ctx: ControlContext, input: UpdateTaskProtectionRequest, caller?: Caller): Promise<UpdateTaskProtectionResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  if (input.tasks.length === 0) throw invalidParameter('Tasks cannot be empty.');
  if (input.tasks.length > MAX_UPDATE) throw invalidParameter(`At most ${MAX_UPDATE} tasks can be updated at once.`);
  const minutes = input.expiresInMinutes ?? DEFAULT_PROTECTION_MINUTES;
  if (input.protectionEnabled && (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_PROTECTION_MINUTES)) {
    throw invalidParameter(`expiresInMinutes must be between 1 and ${MAX_PROTECTION_MINUTES}.`);
  }
  checkAgentScope(ctx, caller, 'UpdateTaskProtection', cluster, input.tasks);
  const protectedTasks: ProtectedTask[] = [];
  const failures: Failure[] = [];
  let last = 0;
  for (const ref of input.tasks) {
    const r = resolve(ctx, cluster, ref);
    if ('failure' in r) {
      failures.push(r.failure);
      continue;
    }
    // Every call restarts the clock, so a task extends its protection by calling again.
    const now = ctx.clock.now();
    const until = input.protectionEnabled ? now + minutes * 60_000 : undefined;
    const { value, revision } = await casUpdate<TaskRecord>(ctx.store, keys.task(cluster, r.task.wharf.id), (cur) => {
      if (!cur) return undefined;
      const wharf = { ...cur.value.wharf };
      if (until === undefined) {
        if (wharf.protectedUntil === undefined) return undefined;
        delete wharf.protectedUntil;
      } else wharf.protectedUntil = until;
      return { ...cur.value, wharf };
    });
    last = Math.max(last, revision);
    if (!value) failures.push({ arn: r.task.taskArn, reason: 'MISSING' });
    else protectedTasks.push(protectedTask(value, now));
  }
  if (last > 0) await committed(ctx, last);
  return { protectedTasks, failures };
}

export async function getTaskProtection(ctx: ControlContext, input: GetTaskProtectionRequest, caller?: Caller): Promise<GetTaskProtectionResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  const now = ctx.clock.now();
  if (input.tasks === undefined) {
    // Without a list: every task of the cluster that is protected now.
    if (caller?.isAgent) throw invalidParameter('An agent must name the tasks it asks about.');
    const protectedTasks: ProtectedTask[] = [];
    for (const e of ctx.state.tasks.children(cluster).values()) if (isProtected(e.value, now)) protectedTasks.push(protectedTask(e.value, now));
    return { protectedTasks, failures: [] };
  }
  if (input.tasks.length > MAX_GET) throw invalidParameter(`At most ${MAX_GET} tasks can be described at once.`);
  checkAgentScope(ctx, caller, 'GetTaskProtection', cluster, input.tasks);
  const protectedTasks: ProtectedTask[] = [];
  const failures: Failure[] = [];
  for (const ref of input.tasks) {
    const r = resolve(ctx, cluster, ref);
    if ('failure' in r) failures.push(r.failure);
    else protectedTasks.push(protectedTask(r.task, now));
  }
  return { protectedTasks, failures };
}
