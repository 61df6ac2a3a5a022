/**
 * What an API call is in IAM's terms: its action (`ecs:RunTask`), the resources it acts on and
 * the condition context (`ecs:cluster`), so an identity policy can be evaluated against it
 * (core/iam-policy.ts) before the handler runs.
 *
 * For ECS this follows the Service Authorization Reference ("Actions, resources, and condition
 * keys for Amazon Elastic Container Service"):
 *   - cluster operations (Create/Delete/Describe/UpdateCluster, PutClusterCapacityProviders,
 *     ListContainerInstances, RegisterContainerInstance, Submit*StateChange): the cluster ARN;
 *   - RunTask, StartTask: the task definition's ARN (a family without revision means its latest
 *     ACTIVE revision, as ECS resolves it), with `ecs:cluster`;
 *   - StopTask, DescribeTasks, Get/UpdateTaskProtection: each task's ARN, with `ecs:cluster`;
 *   - Create/Update/Delete/DescribeServices, ListServiceDeployments: each service's ARN, with
 *     `ecs:cluster`;
 *   - DescribeContainerInstances, UpdateContainerInstancesState, DeregisterContainerInstance:
 *     each container instance's ARN, with `ecs:cluster`;
 *   - ListTasks: the container instance named, else `*`, with `ecs:cluster`; ListServices and
 *     ListAttributes, PutAttributes, DeleteAttributes: `*` with `ecs:cluster`;
 *   - capacity provider operations: the capacity provider's ARN; tagging: the resource's ARN;
 *   - task definitions (Register/Describe/Deregister/Delete/List*), ListClusters, account
 *     settings, DiscoverPollEndpoint: `*` (no resource-level permissions).
 * Every reference (a name, an id, a short or long ARN) becomes the long ARN in the request's
 * region, so a policy written with ARNs matches however the caller named the resource.
 *
 * The other services Wharf speaks are authorised by action, against the ARNs their input names
 * (ELBv2's load balancer / target group / listener / rule ARNs, a Secrets Manager SecretId as
 * its secret's full ARN, or as given when it is an ARN of no known secret), else against `*`: EC2's and Cloud Map's operations here are all `*`.
 */
import { arn, capacityProviderArn, clusterArn, clusterNameOf, containerInstanceArn, idOf, serviceArn, serviceNameOf, taskArn, taskDefinitionArn, taskDefinitionRefOf, type Partition } from '../core/arn';
import type { ControlContext } from './context';
import { findSecret } from './secrets';

/**
 * The service condition keys this mapping puts in a request's context (beside the global keys of
 * core/iam-condition-keys.ts): `ecs:cluster` for the ECS calls listed above that act in a cluster,
 * `ecs:CreateAction` for the ecs:TagResource check of a create that carries tags (TAG_ON_CREATE).
 * A policy naming any other key is refused when a user is created (cmd/users.ts).
 */
export const SERVICE_CONDITION_KEYS = ['ecs:cluster', 'ecs:CreateAction'] as const;

export interface IamRequest {
  /** `service:Operation`. */
  action: string;
  /** Every resource the call acts on (each must be allowed); `['*']` when none applies. */
  resources: string[];
  context: Record<string, string>;
  /** Further checks the call must pass as well (ecs:TagResource for a create with tags). */
  alsoRequires?: IamRequest[];
}

/** What the mapping reads of the region's state. */
export interface IamLookups {
  /** The latest ACTIVE revision of a task definition family. */
  latestRevision(family: string): number | undefined;
  /** The full ARN of the secret a SecretId (name or ARN) names. */
  secretArn?(secretId: string): string | undefined;
}

/** The lookups of one region, read from its cache. */
export function iamLookups(ctx: Pick<ControlContext, 'state'>): IamLookups {
  return {
    latestRevision: (family) => ctx.state.latestActiveRevision.get(family),
    secretArn: (id) => findSecret(ctx, id)?.arn,
  };
}

type Input = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : []);

const CLUSTER_RESOURCE = new Set([
  'DeleteCluster', 'UpdateCluster', 'UpdateClusterSettings', 'PutClusterCapacityProviders', 'ListContainerInstances',
  'RegisterContainerInstance', 'SubmitTaskStateChange', 'SubmitContainerStateChange', 'SubmitAttachmentStateChanges',
]);
const SERVICE_RESOURCE = new Set(['UpdateService', 'DeleteService', 'ListServiceDeployments']);
const TASKS_RESOURCE = new Set(['DescribeTasks', 'GetTaskProtection', 'UpdateTaskProtection']);
const INSTANCES_RESOURCE = new Set(['DescribeContainerInstances', 'UpdateContainerInstancesState']);
const CLUSTER_CONTEXT_ONLY = new Set(['ListServices', 'ListAttributes', 'PutAttributes', 'DeleteAttributes']);

/**
 * The creates that may tag what they create ("Grant permission to tag resources on creation", ECS
 * developer guide): when the request carries tags, the caller must also be allowed ecs:TagResource,
 * evaluated with `ecs:CreateAction` = the operation, or the request fails. Its resource is the
 * created resource's ARN; where the id is made by the create itself (a task, a container instance)
 * the ARN ends in `*`, which `task/<cluster>/*` patterns match, and a task definition is its
 * family's ARN without revision, as ECS names it in that refusal.
 */
const TAG_ON_CREATE = new Set(['CreateCluster', 'CreateService', 'CreateCapacityProvider', 'RegisterTaskDefinition', 'RunTask', 'StartTask', 'RegisterContainerInstance']);

/** An ECS call in IAM's terms. `input` has passed model validation. */
export function ecsIamRequest(p: Partition, op: string, input: Input, lookups?: IamLookups): IamRequest {
  const request = ecsCallIamRequest(p, op, input, lookups);
  if (!TAG_ON_CREATE.has(op) || !Array.isArray(input.tags) || input.tags.length === 0) return request;
  const clusterName = clusterNameOf(str(input.cluster));
  const created =
    op === 'CreateCluster' || op === 'CreateService' || op === 'CreateCapacityProvider' ? request.resources[0]!
    : op === 'RegisterTaskDefinition' ? arn(p, 'task-definition', str(input.family) ?? '')
    : op === 'RegisterContainerInstance' ? containerInstanceArn(p, clusterName, '*')
    : taskArn(p, clusterName, '*');
  return { ...request, alsoRequires: [{ action: 'ecs:TagResource', resources: [created], context: { 'ecs:CreateAction': op } }] };
}

function ecsCallIamRequest(p: Partition, op: string, input: Input, lookups?: IamLookups): IamRequest {
  const action = `ecs:${op}`;
  const clusterName = clusterNameOf(str(input.cluster));
  const cluster = clusterArn(p, clusterName);
  const inCluster = (resources: string[]): IamRequest => ({ action, resources, context: { 'ecs:cluster': cluster } });
  const task = (ref: string) => {
    const t = idOf(ref, 'task');
    return taskArn(p, t.cluster ?? clusterName, t.id);
  };
  const instance = (ref: string) => {
    const c = idOf(ref, 'container-instance');
    return containerInstanceArn(p, c.cluster ?? clusterName, c.id);
  };
  const service = (ref: string) => {
    const s = serviceNameOf(ref);
    return serviceArn(p, s.cluster ?? clusterName, s.name);
  };
  const taskDefinition = (ref: string | undefined) => {
    const td = ref ? taskDefinitionRefOf(ref) : undefined;
    if (!td) return '*';
    const revision = td.revision ?? lookups?.latestRevision(td.family);
    // A family with no ACTIVE revision: the call fails in its handler anyway; the family's ARN
    // without a revision is what a policy can still match with `task-definition/family*`.
    return revision === undefined ? arn(p, 'task-definition', td.family) : taskDefinitionArn(p, td.family, revision);
  };

  if (op === 'CreateCluster') return { action, resources: [clusterArn(p, str(input.clusterName) ?? 'default')], context: {} };
  if (op === 'DescribeClusters') {
    const names = strs(input.clusters);
    return { action, resources: (names.length > 0 ? names : ['default']).map((c) => clusterArn(p, clusterNameOf(c))), context: {} };
  }
  if (CLUSTER_RESOURCE.has(op)) return { action, resources: [cluster], context: {} };
  if (op === 'RunTask' || op === 'StartTask') return inCluster([taskDefinition(str(input.taskDefinition))]);
  if (op === 'StopTask') return inCluster([task(str(input.task) ?? '')]);
  if (TASKS_RESOURCE.has(op)) return inCluster(strs(input.tasks).map(task));
  if (op === 'CreateService') return inCluster([service(str(input.serviceName) ?? '')]);
  if (SERVICE_RESOURCE.has(op)) return inCluster([service(str(input.service) ?? '')]);
  if (op === 'DescribeServices') return inCluster(strs(input.services).map(service));
  if (INSTANCES_RESOURCE.has(op)) return inCluster(strs(input.containerInstances).map(instance));
  if (op === 'DeregisterContainerInstance') return inCluster([instance(str(input.containerInstance) ?? '')]);
  if (op === 'ListTasks') {
    const ci = str(input.containerInstance);
    return inCluster([ci ? instance(ci) : '*']);
  }
  if (CLUSTER_CONTEXT_ONLY.has(op)) return inCluster(['*']);
  if (op === 'CreateCapacityProvider' || op === 'UpdateCapacityProvider') return { action, resources: [capacityProviderArn(p, str(input.name) ?? '')], context: {} };
  if (op === 'DeleteCapacityProvider') return { action, resources: [providerArn(p, str(input.capacityProvider) ?? '')], context: {} };
  if (op === 'DescribeCapacityProviders') {
    const names = strs(input.capacityProviders);
    return { action, resources: names.length > 0 ? names.map((n) => providerArn(p, n)) : ['*'], context: {} };
  }
  if (op === 'TagResource' || op === 'UntagResource' || op === 'ListTagsForResource') return { action, resources: [str(input.resourceArn) ?? '*'], context: {} };
  return { action, resources: ['*'], context: {} };
}

/**
 * Opening the agent channel, in IAM's terms: ECS's `ecs:Poll` (what the ECS agent's channel
 * needs) on the container instance, with `ecs:cluster`. A user key must be allowed it to act as an
 * agent, since the channel carries the instance's tasks with their secrets resolved.
 */
export function agentChannelIamRequest(p: Partition, cluster: string | undefined, containerInstance: string): IamRequest {
  // The instance is named as DeregisterContainerInstance names it: same resource, same context.
  return { ...ecsIamRequest(p, 'DeregisterContainerInstance', { cluster, containerInstance }), action: 'ecs:Poll' };
}

function providerArn(p: Partition, ref: string): string {
  return ref.startsWith('arn:') ? ref : capacityProviderArn(p, ref);
}

/** The ARN-valued members of ELBv2 inputs that name what a call acts on. */
const ELB_ARN_MEMBERS = ['LoadBalancerArn', 'TargetGroupArn', 'ListenerArn', 'RuleArn'];
const ELB_ARN_LISTS = ['LoadBalancerArns', 'TargetGroupArns', 'ListenerArns', 'RuleArns', 'ResourceArns'];

/**
 * A call of the other services in IAM's terms: `service` is the IAM prefix (ELBv2's is
 * `elasticloadbalancing`, which is also its signing name).
 */
export function serviceIamRequest(service: string, op: string, input: Input, lookups?: IamLookups): IamRequest {
  const action = `${service}:${op}`;
  let resources: string[] = [];
  if (service === 'elasticloadbalancing') {
    for (const m of ELB_ARN_MEMBERS) if (str(input[m])) resources.push(input[m] as string);
    for (const m of ELB_ARN_LISTS) resources.push(...strs(input[m]));
  } else if (service === 'secretsmanager') {
    // A secret named by name is authorised on its full ARN when it exists, so `secret:db-*`
    // policies work however the caller names it.
    const id = str(input.SecretId);
    const known = id ? lookups?.secretArn?.(id) : undefined;
    if (known) resources.push(known);
    else if (id?.startsWith('arn:')) resources.push(id);
  }
  resources = [...new Set(resources)];
  return { action, resources: resources.length > 0 ? resources : ['*'], context: {} };
}
