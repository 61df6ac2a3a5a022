/**
 * What an agent's key may do (issue 12, "agents bound to themselves"). Two kinds of agent key:
 *
 *   join token (`agent-token`)   may register a container instance into its one cluster (a
 *                                legacy token bound to none: into any), and ask for the poll
 *                                endpoint. Nothing else: it speaks for no instance yet.
 *   instance credential          what registration hands back, bound to one container instance:
 *   (`instance`)                 it may report on that instance and the tasks placed on it, drain
 *                                or deregister that instance, protect its tasks, re-register it
 *                                (an agent restart), and open that instance's channel. It can
 *                                never create clusters or touch another instance or its tasks.
 *
 * The server's transport refuses operations outside AGENT_OPERATIONS for both before this runs;
 * these rules decide, per operation, on the resources named in the request. Every refusal is an
 * AccessDeniedException in IAM's shape and a warn log naming the key, the instance and the
 * operation. Users are not judged here (their identity policies are).
 */
import { arn, clusterNameOf, idOf, parseArn } from '../core/arn';
import { WharfError } from '../core/errors';
import { FARGATE_POOL } from '../core/fargate-pool';
import type { TaskRecord } from '../core/resources';
import type { Caller, ControlContext, Principal } from './context';
import { findInstance } from './container-instances';

type AgentPrincipal = Extract<Principal, { kind: 'agent-token' | 'instance' }>;

/** Whether a caller's key is an agent's, and which. */
export function agentPrincipalOf(caller: Caller | undefined): AgentPrincipal | undefined {
  const p = caller?.principal;
  return p && (p.kind === 'agent-token' || p.kind === 'instance') ? p : undefined;
}

/** The refusal: logged (warn) with who, which instance and what, thrown as IAM words it. */
export function refuseAgent(ctx: Pick<ControlContext, 'log'>, caller: Pick<Caller, 'principalArn' | 'accessKeyId'>, p: AgentPrincipal, operation: string, resource: string, why: string): never {
  ctx.log.warn(
    {
      principal: caller.principalArn,
      accessKeyId: caller.accessKeyId,
      principalKind: p.kind,
      containerInstanceArn: p.kind === 'instance' ? p.containerInstanceArn : undefined,
      cluster: p.cluster,
      operation,
      resource,
    },
    `agent refused: ${why}`,
  );
  throw new WharfError('AccessDeniedException', `User: ${caller.principalArn} is not authorized to perform: ecs:${operation} on resource: ${resource} because ${why}`);
}

const clusterArnOf = (ctx: Pick<ControlContext, 'partition'>, name: string) => arn(ctx.partition, 'cluster', name);

/** The id of the instance an instance credential is bound to. */
function ownId(p: Extract<Principal, { kind: 'instance' }>): string {
  return idOf(p.containerInstanceArn, 'container-instance').id;
}

/** Whether `ref` (an id or ARN) in `clusterRef` names the credential's own instance. */
function isOwnInstance(ctx: Pick<ControlContext, 'state'>, p: Extract<Principal, { kind: 'instance' }>, clusterRef: string | undefined, ref: string): boolean {
  if (clusterNameOf(clusterRef) !== p.cluster) return false;
  const rec = findInstance(ctx, p.cluster, ref)?.value;
  return rec !== undefined && rec.wharf.id === ownId(p);
}

/** The task a report names, when it exists (a task ARN names its cluster; an id needs `clusterRef`). */
function reportedTask(ctx: Pick<ControlContext, 'state'>, clusterRef: string | undefined, ref: string): TaskRecord | undefined {
  const { id, cluster: inArn } = idOf(ref, 'task');
  return ctx.state.tasks.get(inArn ?? clusterNameOf(clusterRef), id)?.value;
}

/** Whether a task is placed on the credential's own instance (a Fargate task's instance is a pool host). */
function onOwnInstance(p: Extract<Principal, { kind: 'instance' }>, t: TaskRecord): boolean {
  return t.wharf.instanceId === ownId(p) && (t.wharf.instanceCluster ?? t.wharf.cluster) === p.cluster;
}

/**
 * Throws AccessDeniedException unless the agent key of `caller` may call `operation` with
 * `input`. Does nothing for users. For an instance credential it also pins
 * `caller.containerInstanceArn` to its own instance (the task-protection rules read it).
 */
export function authorizeAgent(ctx: Pick<ControlContext, 'state' | 'log' | 'partition'>, operation: string, input: Record<string, unknown>, caller: Caller | undefined): void {
  const p = agentPrincipalOf(caller);
  if (!p || !caller) return;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const cluster = str(input.cluster);
  const deny = (resource: string, why: string) => refuseAgent(ctx, caller, p, operation, resource, why);

  if (p.kind === 'agent-token') {
    if (operation === 'DiscoverPollEndpoint') return;
    if (operation !== 'RegisterContainerInstance') return deny('*', 'a join token may only register a container instance; the instance credential registration returns speaks for it');
    const name = clusterNameOf(cluster);
    if (p.cluster !== undefined && name !== p.cluster) {
      // The Fargate pool's own token is the one users miss: say how to get it.
      const hint = name === FARGATE_POOL ? ` (a Fargate host needs the pool's token: wharf credentials --agent --cluster '${FARGATE_POOL}')` : '';
      deny(clusterArnOf(ctx, name), `this join token belongs to cluster ${p.cluster}${hint}`);
    }
    if (p.region !== undefined && p.region !== ctx.partition.region) deny(clusterArnOf(ctx, name), `this join token belongs to cluster ${p.cluster ?? name} of region ${p.region}`);
    const ref = str(input.containerInstanceArn);
    if (ref !== undefined) {
      // Re-registering an existing instance speaks for it: only its own credential may. An
      // instance from before credentials were bound (none stored) may be claimed once.
      const rec = findInstance(ctx, name, ref)?.value;
      if (rec?.wharf.agentKey) deny(rec.containerInstanceArn, 'registering an existing container instance again requires its own instance credential');
    }
    return;
  }

  // An instance credential of another region names nothing here.
  const own = parseArn(p.containerInstanceArn);
  if (own && own.region !== ctx.partition.region) deny(p.containerInstanceArn, `this instance credential belongs to region ${own.region}`);
  const header = caller.containerInstanceArn;
  if (header !== undefined && header !== p.containerInstanceArn && idOf(header, 'container-instance').id !== ownId(p)) {
    deny(header, 'an instance credential speaks only for its own container instance');
  }
  caller.containerInstanceArn = p.containerInstanceArn;
  switch (operation) {
    case 'GetTaskProtection':
    case 'UpdateTaskProtection':
      // Scoped to the tasks of caller.containerInstanceArn, pinned above (task-protection.ts).
      return;
    case 'DiscoverPollEndpoint':
      if (cluster === undefined || clusterNameOf(cluster) === p.cluster) return;
      return deny(clusterArnOf(ctx, clusterNameOf(cluster)), 'an instance credential speaks only for its own cluster');
    case 'RegisterContainerInstance': {
      const ref = str(input.containerInstanceArn);
      if (ref !== undefined && isOwnInstance(ctx, p, cluster, ref)) return;
      return deny(ref ?? clusterArnOf(ctx, clusterNameOf(cluster)), 'an instance credential may only register its own container instance again');
    }
    case 'DeregisterContainerInstance': {
      const ref = str(input.containerInstance) ?? '';
      if (isOwnInstance(ctx, p, cluster, ref)) return;
      return deny(ref, 'an instance credential may only deregister its own container instance');
    }
    case 'UpdateContainerInstancesState': {
      const refs = Array.isArray(input.containerInstances) ? input.containerInstances : [];
      for (const ref of refs) {
        if (typeof ref !== 'string' || !isOwnInstance(ctx, p, cluster, ref)) deny(String(ref), 'an instance credential may only change the state of its own container instance');
      }
      return;
    }
    case 'SubmitTaskStateChange':
    case 'SubmitContainerStateChange': {
      const ref = str(input.task) ?? '';
      const t = reportedTask(ctx, cluster, ref);
      if (t && onOwnInstance(p, t)) return;
      // A task that does not exist is refused too: an agent reports only on what it was given.
      return deny(t?.taskArn ?? ref, 'an instance credential may only report on the tasks placed on its own container instance');
    }
    case 'SubmitAttachmentStateChanges': {
      const name = clusterNameOf(cluster);
      const wanted = new Set<string>();
      for (const a of Array.isArray(input.attachments) ? input.attachments : []) {
        const arn = str((a as { attachmentArn?: unknown } | null)?.attachmentArn);
        if (arn !== undefined) wanted.add(arn.slice(arn.lastIndexOf('/') + 1));
      }
      for (const e of ctx.state.tasks.children(name).values()) {
        if (!(e.value.attachments ?? []).some((a) => a.id !== undefined && wanted.has(a.id))) continue;
        if (!onOwnInstance(p, e.value)) deny(e.value.taskArn, 'an instance credential may only report on the attachments of tasks placed on its own container instance');
      }
      return;
    }
    default:
      return deny(clusterArnOf(ctx, clusterNameOf(cluster)), `an instance credential may not call ${operation}`);
  }
}

/** The agent channel's operation name in refusals and logs (ECS's agent polls with `ecs:Poll`). */
export const CHANNEL_OPERATION = 'Poll';

/**
 * Why `principal` may not open the agent channel of `instance` (undefined: it may). The channel
 * carries the instance's tasks with their secret values, so only that instance's own credential
 * opens it, and the account's root key (the built-in admin, which can read every secret anyway).
 * A join token speaks for no instance; a user with an identity policy is not an agent.
 */
export function channelRefusal(principal: Principal, instance: { containerInstanceArn: string; wharf: { id: string; cluster: string } }): string | undefined {
  switch (principal.kind) {
    case 'instance':
      if (principal.cluster === instance.wharf.cluster && ownId(principal) === instance.wharf.id) return undefined;
      return 'an instance credential may only open the channel of its own container instance';
    case 'agent-token':
      return 'a join token speaks for no container instance: register, then connect with the instance credential';
    case 'user':
      return principal.policy === undefined ? undefined : 'only a container instance agent may open the agent channel';
  }
}
