/**
 * Capacity providers: CreateCapacityProvider, DescribeCapacityProviders, UpdateCapacityProvider,
 * DeleteCapacityProvider, and the rules clusters and launches follow when they name providers.
 *
 * FARGATE and FARGATE_SPOT are built in (every account has them; they are never stored, created,
 * updated or deleted) and both run on the region's Fargate pool (core/fargate-pool.ts). Every
 * other provider is an Auto Scaling group provider. Wharf has no Auto Scaling groups: the group
 * the ARN names (`arn:aws:autoscaling:<region>:<account>:autoScalingGroup:<uuid>:
 * autoScalingGroupName/<group>`) is a Wharf instance group, the container instances whose agent
 * was started with `wharf agent --capacity-provider <provider name>`; they carry the attribute
 * CAPACITY_PROVIDER_ATTRIBUTE, and tasks launched through the provider are placed only on them.
 *
 * Lifecycle: ACTIVE --DeleteCapacityProvider--> INACTIVE (updateStatus DELETE_COMPLETE); the
 * name can then be created again. Deleting a provider a cluster still has fails as ECS does: the
 * provider stays ACTIVE with updateStatus DELETE_FAILED and the reason.
 */
import { capacityProviderArn, clusterNameOf, parseArn } from '../core/arn';
import { FARGATE_PROVIDERS, countByProvider, isFargateProvider, launchStrategyProblem, splitTasks, strategyProblem } from '../core/capacity-provider-strategy';
import { FARGATE_POOL } from '../core/fargate-pool';
import { WharfError, clusterNotFound, invalidParameter } from '../core/errors';
import { keys, type CapacityProviderRecord, type ClusterRecord } from '../core/resources';
import type {
  AutoScalingGroupProvider,
  CapacityProvider,
  CapacityProviderStrategyItem,
  CreateCapacityProviderRequest,
  CreateCapacityProviderResponse,
  DeleteCapacityProviderRequest,
  DeleteCapacityProviderResponse,
  DescribeCapacityProvidersRequest,
  DescribeCapacityProvidersResponse,
  Failure,
  ManagedScaling,
  UpdateCapacityProviderRequest,
  UpdateCapacityProviderResponse,
} from '../core/shapes/ecs';
import { validateTags } from '../core/tags';
import { casUpdate } from '../store/store';
import { committed, type ControlContext } from './context';
import { paginate } from './pagination';

import { CAPACITY_PROVIDER_ATTRIBUTE } from '../core/capacity-provider-strategy';
export { CAPACITY_PROVIDER_ATTRIBUTE };

/** Most providers one cluster may have (ECS's quota). */
export const MAX_CLUSTER_PROVIDERS = 20;

const NAME_RE = /^[A-Za-z0-9_-]{1,255}$/;
const ASG_ARN_RE = /^arn:(aws|aws-cn|aws-us-gov):autoscaling:([a-z0-9-]+):(\d{12}):autoScalingGroup:[0-9a-fA-F-]{36}:autoScalingGroupName\/([A-Za-z0-9_.\-]{1,255})$/;

const notFoundMessage = 'The specified capacity provider does not exist. Specify a valid name or ARN and try again.';
const builtInMessage = (name: string) => `The ${name} capacity provider is built in and cannot be changed or deleted.`;

/** The group name an Auto Scaling group ARN names (Wharf's instance group). */
export function groupNameOf(asgArn: string): string | undefined {
  return ASG_ARN_RE.exec(asgArn)?.[4];
}

/** The name a capacityProvider parameter names (a name, or the provider's ARN). */
function nameOf(ref: string): string {
  const a = parseArn(ref);
  return a && a.type === 'capacity-provider' ? a.resource : ref;
}

/** The ACTIVE Auto Scaling group provider of that name, if any. */
export function activeProvider(ctx: ControlContext, name: string): CapacityProviderRecord | undefined {
  const p = ctx.state.capacityProviders.get('', name)?.value;
  return p && p.status === 'ACTIVE' ? p : undefined;
}

/** Whether a provider of that name exists (built in, or an ACTIVE Auto Scaling group provider). */
export function providerExists(ctx: ControlContext, name: string): boolean {
  return isFargateProvider(name) || activeProvider(ctx, name) !== undefined;
}

function builtInToWire(ctx: ControlContext, name: string, include: readonly string[]): CapacityProvider {
  const out: CapacityProvider = { capacityProviderArn: capacityProviderArn(ctx.partition, name), name, status: 'ACTIVE', type: name as 'FARGATE' | 'FARGATE_SPOT' };
  if (include.includes('TAGS')) out.tags = [];
  return out;
}

export function capacityProviderToWire(p: CapacityProviderRecord, include: readonly string[] = []): CapacityProvider {
  const out: CapacityProvider = {
    capacityProviderArn: p.capacityProviderArn,
    name: p.name,
    status: p.status,
    type: p.type,
    autoScalingGroupProvider: p.autoScalingGroupProvider,
  };
  if (p.updateStatus) out.updateStatus = p.updateStatus;
  if (p.updateStatusReason) out.updateStatusReason = p.updateStatusReason;
  if (include.includes('TAGS')) out.tags = p.tags;
  return out;
}

function checkRange(field: string, v: number | undefined, lo: number, hi: number): void {
  if (v !== undefined && (!Number.isInteger(v) || v < lo || v > hi)) throw invalidParameter(`${field} must be between ${lo} and ${hi}.`);
}

/** managedScaling with ECS's defaults filled in, checked. */
function managedScalingOf(m: ManagedScaling | undefined, prev?: ManagedScaling): Required<ManagedScaling> {
  const base: Required<ManagedScaling> = { status: 'DISABLED', targetCapacity: 100, minimumScalingStepSize: 1, maximumScalingStepSize: 10000, instanceWarmupPeriod: 300, ...prev };
  const out = { ...base, ...Object.fromEntries(Object.entries(m ?? {}).filter(([, v]) => v !== undefined)) } as Required<ManagedScaling>;
  if (out.status !== 'ENABLED' && out.status !== 'DISABLED') throw invalidParameter('managedScaling status must be ENABLED or DISABLED.');
  checkRange('targetCapacity', out.targetCapacity, 1, 100);
  checkRange('minimumScalingStepSize', out.minimumScalingStepSize, 1, 10000);
  checkRange('maximumScalingStepSize', out.maximumScalingStepSize, 1, 10000);
  checkRange('instanceWarmupPeriod', out.instanceWarmupPeriod, 0, 10000);
  if (out.minimumScalingStepSize > out.maximumScalingStepSize) throw invalidParameter('minimumScalingStepSize must be less than or equal to maximumScalingStepSize.');
  return out;
}

function checkEnabledDisabled(field: string, v: string | undefined): void {
  if (v !== undefined && v !== 'ENABLED' && v !== 'DISABLED') throw invalidParameter(`${field} must be ENABLED or DISABLED.`);
}

/** The group settings as stored: defaults filled in, termination protection only with scaling. */
function groupProviderOf(
  asgArn: string,
  input: { managedScaling?: ManagedScaling; managedTerminationProtection?: string; managedDraining?: string },
  prev?: AutoScalingGroupProvider,
): AutoScalingGroupProvider {
  checkEnabledDisabled('managedTerminationProtection', input.managedTerminationProtection);
  checkEnabledDisabled('managedDraining', input.managedDraining);
  const managedScaling = managedScalingOf(input.managedScaling, prev?.managedScaling);
  const managedTerminationProtection = (input.managedTerminationProtection ?? prev?.managedTerminationProtection ?? 'DISABLED') as 'ENABLED' | 'DISABLED';
  const managedDraining = (input.managedDraining ?? prev?.managedDraining ?? 'ENABLED') as 'ENABLED' | 'DISABLED';
  if (managedTerminationProtection === 'ENABLED' && managedScaling.status !== 'ENABLED') {
    throw invalidParameter('The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, managed scaling must also be enabled.');
  }
  return { autoScalingGroupArn: asgArn, managedScaling, managedTerminationProtection, managedDraining };
}

export async function createCapacityProvider(ctx: ControlContext, input: CreateCapacityProviderRequest): Promise<CreateCapacityProviderResponse> {
  const name = input.name;
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw invalidParameter('The capacity provider name can contain up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens.');
  }
  if (/^(aws|ecs|fargate)/i.test(name)) {
    throw invalidParameter('The capacity provider name cannot begin with "aws", "ecs", or "fargate". Specify a different name and try again.');
  }
  if (input.managedInstancesProvider !== undefined) {
    throw new WharfError('UnsupportedFeatureException', 'Amazon ECS Managed Instances capacity providers are not available in Wharf; use an autoScalingGroupProvider.');
  }
  if (input.cluster !== undefined) throw invalidParameter('cluster is only valid for Amazon ECS Managed Instances capacity providers.');
  const asg = input.autoScalingGroupProvider;
  if (!asg?.autoScalingGroupArn) throw invalidParameter('autoScalingGroupProvider must be specified.');
  const m = ASG_ARN_RE.exec(asg.autoScalingGroupArn);
  if (!m) {
    throw invalidParameter('The specified Auto Scaling group ARN is not valid. Wharf expects arn:aws:autoscaling:<region>:<account>:autoScalingGroup:<uuid>:autoScalingGroupName/<group name>.');
  }
  if (m[2] !== ctx.partition.region) throw invalidParameter('The specified Auto Scaling group must be in the same Region as the capacity provider.');
  const groupProvider = groupProviderOf(asg.autoScalingGroupArn, asg);
  const tags = validateTags(input.tags);
  for (const e of ctx.state.capacityProviders.all()) {
    const p = e.value;
    if (p.status === 'ACTIVE' && p.name !== name && p.autoScalingGroupProvider.autoScalingGroupArn === asg.autoScalingGroupArn) {
      throw new WharfError('ClientException', 'The specified Auto Scaling group ARN is already being used by another capacity provider. Specify a unique Auto Scaling group ARN and try again.');
    }
  }
  const record: CapacityProviderRecord = {
    capacityProviderArn: capacityProviderArn(ctx.partition, name),
    name,
    status: 'ACTIVE',
    type: 'EC2_AUTOSCALING',
    autoScalingGroupProvider: groupProvider,
    tags,
    wharf: { createdAt: ctx.clock.now() },
  };
  const { value, revision } = await casUpdate<CapacityProviderRecord>(ctx.store, keys.capacityProvider(name), (cur) => {
    if (cur && cur.value.status === 'ACTIVE') {
      throw new WharfError('ClientException', 'The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.');
    }
    return record;
  });
  await committed(ctx, revision);
  return { capacityProvider: capacityProviderToWire(value!, ['TAGS']) };
}

export async function describeCapacityProviders(ctx: ControlContext, input: DescribeCapacityProvidersRequest): Promise<DescribeCapacityProvidersResponse> {
  const include = input.include ?? [];
  for (const i of include) if (i !== 'TAGS') throw invalidParameter(`Invalid include value '${i}'. Valid values: TAGS.`);
  let all: CapacityProvider[] = [];
  const failures: Failure[] = [];
  if (input.capacityProviders && input.capacityProviders.length > 0) {
    if (input.capacityProviders.length > 100) throw invalidParameter('At most 100 capacity providers can be described at once.');
    for (const ref of input.capacityProviders) {
      const name = nameOf(ref);
      const p = ctx.state.capacityProviders.get('', name)?.value;
      if (isFargateProvider(name)) all.push(builtInToWire(ctx, name, include));
      else if (p) all.push(capacityProviderToWire(p, include));
      else failures.push({ arn: capacityProviderArn(ctx.partition, name), reason: 'MISSING' });
    }
  } else {
    for (const n of FARGATE_PROVIDERS) all.push(builtInToWire(ctx, n, include));
    for (const e of ctx.state.capacityProviders.all()) if (e.value.status === 'ACTIVE') all.push(capacityProviderToWire(e.value, include));
  }
  if (input.cluster !== undefined) {
    // Only the providers that cluster has.
    const c = ctx.state.clusters.get('', clusterNameOf(input.cluster))?.value;
    if (!c || c.status !== 'ACTIVE') throw clusterNotFound();
    const has = new Set(c.capacityProviders ?? []);
    all = all.filter((p) => has.has(p.name!));
  }
  const { page, nextToken } = paginate(all, (p) => p.name!, input, { default: 10, max: 10, operation: 'DescribeCapacityProviders' });
  return { capacityProviders: page, failures, nextToken };
}

export async function updateCapacityProvider(ctx: ControlContext, input: UpdateCapacityProviderRequest): Promise<UpdateCapacityProviderResponse> {
  const name = nameOf(input.name);
  if (isFargateProvider(name)) throw new WharfError('ClientException', builtInMessage(name));
  if (input.cluster !== undefined) throw invalidParameter('cluster is only valid for Amazon ECS Managed Instances capacity providers.');
  if (input.managedInstancesProvider !== undefined) throw new WharfError('UnsupportedFeatureException', 'Amazon ECS Managed Instances capacity providers are not available in Wharf.');
  const update = input.autoScalingGroupProvider;
  if (!update) throw invalidParameter('autoScalingGroupProvider must be specified.');
  const { value, revision } = await casUpdate<CapacityProviderRecord>(ctx.store, keys.capacityProvider(name), (cur) => {
    if (!cur || cur.value.status !== 'ACTIVE') throw new WharfError('ClientException', notFoundMessage);
    const prev = cur.value.autoScalingGroupProvider;
    return {
      ...cur.value,
      autoScalingGroupProvider: groupProviderOf(prev.autoScalingGroupArn, update, prev),
      updateStatus: 'UPDATE_COMPLETE',
      updateStatusReason: undefined,
    };
  });
  await committed(ctx, revision);
  return { capacityProvider: capacityProviderToWire(value!) };
}

/** The ACTIVE clusters that have this provider. */
function clustersWith(ctx: ControlContext, name: string): ClusterRecord[] {
  return [...ctx.state.clusters.all()].map((e) => e.value).filter((c) => c.status === 'ACTIVE' && (c.capacityProviders ?? []).includes(name));
}

export async function deleteCapacityProvider(ctx: ControlContext, input: DeleteCapacityProviderRequest): Promise<DeleteCapacityProviderResponse> {
  const name = nameOf(input.capacityProvider);
  if (isFargateProvider(name)) throw new WharfError('ClientException', builtInMessage(name));
  if (input.cluster !== undefined) throw invalidParameter('cluster is only valid for Amazon ECS Managed Instances capacity providers.');
  const users = clustersWith(ctx, name);
  const { value, revision } = await casUpdate<CapacityProviderRecord>(ctx.store, keys.capacityProvider(name), (cur) => {
    if (!cur || cur.value.status !== 'ACTIVE') throw new WharfError('ClientException', notFoundMessage);
    if (users.length > 0) {
      return {
        ...cur.value,
        updateStatus: 'DELETE_FAILED',
        updateStatusReason: `The capacity provider cannot be deleted because it is associated with cluster: ${users[0]!.clusterName}. Remove the capacity provider from the cluster and try again.`,
      };
    }
    return { ...cur.value, status: 'INACTIVE', updateStatus: 'DELETE_COMPLETE', updateStatusReason: undefined, wharf: { ...cur.value.wharf, deletedAt: ctx.clock.now() } };
  });
  await committed(ctx, revision);
  return { capacityProvider: capacityProviderToWire(value!) };
}

/**
 * What a cluster may be given (CreateCluster, PutClusterCapacityProviders): existing providers,
 * at most MAX_CLUSTER_PROVIDERS, an Auto Scaling group provider in no other cluster, and a
 * default strategy over those providers.
 */
export function checkClusterProviders(
  ctx: ControlContext,
  clusterName: string,
  providers: readonly string[] | undefined,
  strategy: readonly CapacityProviderStrategyItem[] | undefined,
): void {
  const list = providers ?? [];
  if (list.length > MAX_CLUSTER_PROVIDERS) throw invalidParameter('The maximum number of capacity providers per cluster has been exceeded.');
  const twice = list.find((p, i) => list.indexOf(p) !== i);
  if (twice !== undefined) throw invalidParameter(`The capacity provider '${twice}' is specified more than once. Specify each capacity provider once and try again.`);
  for (const p of list) {
    if (!providerExists(ctx, p)) throw invalidParameter('The specified capacity provider was not found. Specify a valid capacity provider and try again.');
    if (!isFargateProvider(p) && clustersWith(ctx, p).some((c) => c.clusterName !== clusterName)) {
      throw invalidParameter(`The specified capacity provider '${p}' is already associated with another cluster. An Auto Scaling group capacity provider can be associated with one cluster only.`);
    }
  }
  checkStrategyAgainst(list, strategy ?? [], false);
}

function checkStrategyAgainst(providers: readonly string[], strategy: readonly CapacityProviderStrategyItem[], launch: boolean): void {
  for (const s of strategy) {
    if (!providers.includes(s.capacityProvider)) {
      throw invalidParameter('The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.');
    }
  }
  const problem = launch ? launchStrategyProblem(strategy) : strategyProblem(strategy);
  if (problem) throw invalidParameter(problem);
}

/** ECS's answer to a launch through a cluster default strategy whose weights are all zero. */
const NO_DEFAULT_WEIGHT =
  "There are no capacity providers with a weight value greater than zero defined in the default capacity provider strategy. At least one capacity provider must have a weight value greater than zero specified. Update the cluster's default capacity provider strategy or specify a valid capacity provider strategy and try again.";

/** A cluster's default strategy as stored and shown: every item with its weight and base. */
export function normalizeDefaultStrategy(strategy: readonly CapacityProviderStrategyItem[] | undefined): CapacityProviderStrategyItem[] {
  return (strategy ?? []).map((s) => ({ capacityProvider: s.capacityProvider, weight: s.weight ?? 0, base: s.base ?? 0 }));
}

/**
 * The strategy a launch (RunTask, CreateService) uses, checked against its cluster: the
 * request's own, else the cluster's default when no launch type is given (undefined: the launch
 * type applies, EC2 when none is given).
 */
export function launchStrategy(
  ctx: ControlContext,
  cluster: ClusterRecord,
  input: { launchType?: string; capacityProviderStrategy?: CapacityProviderStrategyItem[] },
): CapacityProviderStrategyItem[] | undefined {
  const own = input.capacityProviderStrategy ?? [];
  if (input.launchType && own.length > 0) {
    throw invalidParameter('Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.');
  }
  const strategy = own.length > 0 ? own : !input.launchType ? cluster.defaultCapacityProviderStrategy ?? [] : [];
  if (strategy.length === 0) return undefined;
  // The cluster accepts such a default; launching through it is what ECS refuses.
  if (own.length === 0 && !strategy.some((s) => (s.weight ?? 0) > 0)) throw invalidParameter(NO_DEFAULT_WEIGHT);
  const normalized = strategy.map((s) => ({ capacityProvider: nameOf(s.capacityProvider), weight: s.weight ?? 0, base: s.base ?? 0 }));
  checkStrategyAgainst(cluster.capacityProviders ?? [], normalized, true);
  for (const s of normalized) {
    if (!providerExists(ctx, s.capacityProvider)) throw invalidParameter('The specified capacity provider was not found. Specify a valid capacity provider and try again.');
  }
  return normalized;
}

/**
 * Where a provider's tasks are placed, as options of the one placement path (placeTasks): the
 * Fargate pool for FARGATE and FARGATE_SPOT, the provider's own instances of the cluster for
 * an Auto Scaling group provider (a required attribute, so the scheduler's filters and its
 * failure reasons apply unchanged).
 */
export function providerPlacement(name: string): { capacity?: string; requiredAttributes: { name: string; value: string }[] } {
  if (isFargateProvider(name)) return { capacity: FARGATE_POOL, requiredAttributes: [] };
  return { requiredAttributes: [{ name: CAPACITY_PROVIDER_ATTRIBUTE, value: name }] };
}

/** How many of `count` new tasks each provider takes, in strategy order (core's split). */
export function providerGroups(strategy: readonly CapacityProviderStrategyItem[], count: number, existing?: ReadonlyMap<string, number>): { provider: string; count: number }[] {
  const n = countByProvider(splitTasks(strategy, count, existing));
  return strategy.filter((s) => (n.get(s.capacityProvider) ?? 0) > 0).map((s) => ({ provider: s.capacityProvider, count: n.get(s.capacityProvider)! }));
}
