/**
 * Services: CreateService, UpdateService, DeleteService, DescribeServices, ListServices (the
 * deployment and revision queries are in service-deployments.ts). These operations only write
 * desired state; the ServiceController (controllers/service-controller.ts) makes it true.
 *
 * Status:  ACTIVE ──DeleteService──> DRAINING ──(all tasks stopping or stopped)──> INACTIVE
 *          (an INACTIVE service stays describable and its name may be used again)
 *
 * UpdateService makes a new PRIMARY deployment when what the tasks run changes (task definition,
 * network, platform version, load balancers, service registries, capacity provider strategy: the
 * last only with forceNewDeployment, as ECS requires) or forceNewDeployment is set;
 * desiredCount, deploymentConfiguration, placement, grace period and tags only change the record.
 */
import { createHash } from 'node:crypto';
import { iamArn, serviceArn, serviceNameOf, shortServiceArn } from '../core/arn';
import { WharfError, invalidParameter } from '../core/errors';
import { keys, type ClusterRecord, type ServiceDeploymentHistoryRecord, type ServiceRecord, type ServiceRevisionRecord, type TaskDefinitionRecord } from '../core/resources';
import { normalizeDeploymentConfiguration } from '../core/service-math';
import type {
  CapacityProviderStrategyItem,
  CreateServiceRequest,
  CreateServiceResponse,
  DeleteServiceRequest,
  DeleteServiceResponse,
  DescribeServicesRequest,
  DescribeServicesResponse,
  Failure,
  ListServicesRequest,
  ListServicesResponse,
  LoadBalancer,
  NetworkConfiguration,
  OperationName,
  PlacementConstraint,
  PlacementStrategy,
  Service,
  ServiceRegistry,
  UpdateServiceRequest,
  UpdateServiceResponse,
} from '../core/shapes/ecs';
import { validateTags } from '../core/tags';
import { effectiveNetworkMode } from '../core/task-definition';
import { normalizeConstraints, normalizeStrategies, MAX_CONSTRAINTS } from '../scheduler';
import { digitId, epochSeconds } from '../lib';
import { StoreConflictError } from '../store/store';
import { requireActiveCluster } from './clusters';
import { committed, type Caller, type ControlContext } from './context';
import { paginate } from './pagination';
import {
  findService,
  newDeployment,
  newDeploymentId,
  pruneHistory,
  requireService,
  serviceNotActive,
  serviceNotFound,
  serviceToWire,
} from './service-records';
import * as deploymentsApi from './service-deployments';
import { validateLoadBalancers } from './service-load-balancers';
import { validateRegistries } from './service-registries';
import { findTaskDefinition, requireActiveTaskDefinition } from './task-definitions';
import { checkFargateRequest, resolveLaunchType, resolveNetwork } from './tasks';
import { FARGATE_PLATFORM_FAMILY } from '../core/fargate-pool';

type Handler = (input: any, caller: Caller) => Promise<unknown>;

const NAME_RE = /^[A-Za-z0-9_-]{1,255}$/;
const MAX_DESCRIBE = 10;
const MAX_DESIRED = 5000;
const MAX_GRACE = 2_147_483_647;

const unsupported = (msg: string) => new WharfError('UnsupportedFeatureException', msg);

function checkDeploymentController(dc: { type?: string } | undefined): void {
  const type = dc?.type ?? 'ECS';
  if (type === 'ECS') return;
  if (type === 'CODE_DEPLOY' || type === 'EXTERNAL') {
    throw unsupported(`The ${type} deployment controller is not available in Wharf yet; use the ECS deployment controller (rolling updates).`);
  }
  throw invalidParameter(`Invalid deployment controller type '${type}': expected ECS, CODE_DEPLOY or EXTERNAL.`);
}

function checkUnsupportedExtras(input: { enableExecuteCommand?: boolean; serviceConnectConfiguration?: { enabled?: boolean }; volumeConfigurations?: unknown[]; vpcLatticeConfigurations?: unknown[] }): void {
  if (input.enableExecuteCommand) throw unsupported('ExecuteCommand is not available in Wharf yet, so enableExecuteCommand cannot be true.');
  if (input.serviceConnectConfiguration?.enabled) throw unsupported('Service Connect is not available in Wharf yet.');
  if (input.volumeConfigurations?.length) throw unsupported('volumeConfigurations (Amazon EBS volumes) are not available in Wharf.');
  if (input.vpcLatticeConfigurations?.length) throw unsupported('VPC Lattice is not available in Wharf.');
}

/** A DAEMON service runs one task per instance: ECS refuses a desiredCount rather than ignore it. */
const daemonDesiredCount = () =>
  invalidParameter('The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again');

function validatePlacement(td: TaskDefinitionRecord, constraints: PlacementConstraint[] | undefined, strategies: PlacementStrategy[] | undefined, scheduling: 'REPLICA' | 'DAEMON') {
  const c = constraints ?? [];
  const all = [...(td.placementConstraints ?? []), ...c];
  if (all.length > MAX_CONSTRAINTS) throw invalidParameter(`The number of placement constraints cannot exceed ${MAX_CONSTRAINTS}, counting the task definition's.`);
  normalizeConstraints(all as PlacementConstraint[]);
  const s = strategies ?? [];
  if (scheduling === 'DAEMON' && s.length > 0) throw invalidParameter('Placement strategies are not supported with the DAEMON scheduling strategy.');
  normalizeStrategies(s);
  return { placementConstraints: c.map((x) => ({ ...x })), placementStrategy: s.map((x) => ({ ...x })) };
}

/**
 * The service's network configuration as stored and shown: checked against the VPC (the caller
 * made the region's default network exist), with the groups the tasks get (the VPC's default
 * group when none is named).
 */
function networkOf(ctx: ControlContext, td: TaskDefinitionRecord, nc: NetworkConfiguration | undefined, launchType?: string): NetworkConfiguration | undefined {
  const v = resolveNetwork(ctx, td, nc, launchType === 'FARGATE' ? 'FARGATE' : 'EC2');
  return v ? { awsvpcConfiguration: { subnets: v.subnets, securityGroups: v.securityGroups, assignPublicIp: v.assignPublicIp ?? 'DISABLED' } } : undefined;
}

function checkGrace(g: number | undefined): void {
  if (g !== undefined && (!Number.isInteger(g) || g < 0 || g > MAX_GRACE)) throw invalidParameter(`healthCheckGracePeriodSeconds must be between 0 and ${MAX_GRACE}.`);
}

function checkPropagate(p: string | undefined): void {
  if (p !== undefined && !['TASK_DEFINITION', 'SERVICE', 'NONE'].includes(p)) throw invalidParameter(`Invalid propagateTags '${p}': expected TASK_DEFINITION, SERVICE or NONE.`);
}

function checkDesired(n: number | undefined): void {
  if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > MAX_DESIRED)) throw invalidParameter(`desiredCount must be between 0 and ${MAX_DESIRED}.`);
}

function roleArnOf(ctx: ControlContext, role: string | undefined): string | undefined {
  if (!role) return undefined;
  return role.startsWith('arn:') ? role : iamArn(ctx.partition, `role/${role}`);
}

function fingerprint(input: object): string {
  const { clientToken: _t, ...rest } = input as Record<string, unknown>;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

function makeRevision(td: TaskDefinitionRecord, p: { launchType?: 'EC2' | 'FARGATE' | 'EXTERNAL'; strategy?: CapacityProviderStrategyItem[]; loadBalancers: LoadBalancer[]; serviceRegistries: ServiceRegistry[]; networkConfiguration?: NetworkConfiguration; platformVersion?: string }, nowS: number): ServiceRevisionRecord {
  const r: ServiceRevisionRecord = {
    id: digitId(),
    taskDefinition: td.taskDefinitionArn,
    launchType: p.launchType ?? 'EC2',
    loadBalancers: p.loadBalancers,
    serviceRegistries: p.serviceRegistries,
    createdAt: nowS,
  };
  if (p.strategy) r.capacityProviderStrategy = p.strategy;
  if (p.networkConfiguration) r.networkConfiguration = p.networkConfiguration;
  if (p.platformVersion) r.platformVersion = p.platformVersion;
  return r;
}

function historyEntry(id: string, revisionId: string, sources: string[], config: ServiceRecord['deploymentConfiguration'], nowS: number): ServiceDeploymentHistoryRecord {
  return { id, status: 'IN_PROGRESS', targetRevisionId: revisionId, sourceRevisionIds: sources, deploymentConfiguration: config, createdAt: nowS, startedAt: nowS, updatedAt: nowS };
}

// ---------------------------------------------------------------------------------------------
// CreateService

export async function createService(ctx: ControlContext, input: CreateServiceRequest, caller?: Caller): Promise<CreateServiceResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster);
  const name = input.serviceName;
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw invalidParameter('Service name can only contain up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens.');
  }
  if (input.clientToken !== undefined && (input.clientToken.length < 1 || input.clientToken.length > 64)) throw invalidParameter('clientToken must be between 1 and 64 characters.');
  const fp = fingerprint(input);
  const existing = ctx.state.services.get(cluster.clusterName, name);
  if (existing && existing.value.status !== 'INACTIVE') return { service: idempotentAnswer(ctx, existing.value, fp, input.clientToken) };

  checkDeploymentController(input.deploymentController);
  checkUnsupportedExtras(input);
  const scheduling = input.schedulingStrategy ?? 'REPLICA';
  if (scheduling !== 'REPLICA' && scheduling !== 'DAEMON') throw invalidParameter(`Invalid schedulingStrategy '${scheduling}': expected REPLICA or DAEMON.`);
  if (scheduling === 'DAEMON' && input.desiredCount !== undefined) throw daemonDesiredCount();
  const td = requireActiveTaskDefinition(ctx, input.taskDefinition);
  const { launchType, strategy } = resolveLaunchType(ctx, cluster, td, input);
  if (launchType === 'FARGATE') {
    checkFargateRequest(input);
    if (scheduling === 'DAEMON') throw invalidParameter('The DAEMON scheduling strategy is not supported for services using the FARGATE launch type.');
  } else if (input.platformVersion !== undefined) throw invalidParameter('platformVersion is only valid for the FARGATE launch type.');
  checkDesired(input.desiredCount);
  checkGrace(input.healthCheckGracePeriodSeconds);
  checkPropagate(input.propagateTags);
  if (input.availabilityZoneRebalancing !== undefined && !['ENABLED', 'DISABLED'].includes(input.availabilityZoneRebalancing)) {
    throw invalidParameter('availabilityZoneRebalancing must be ENABLED or DISABLED.');
  }
  const deploymentConfiguration = normalizeDeploymentConfiguration(input.deploymentConfiguration, scheduling);
  const placement = validatePlacement(td, input.placementConstraints, input.placementStrategy, scheduling);
  const networkConfiguration = networkOf(ctx, td, input.networkConfiguration, launchType);
  const loadBalancers = validateLoadBalancers(ctx, input.loadBalancers, td, true);
  const serviceRegistries = validateRegistries(ctx, input.serviceRegistries, td);
  if (input.role && effectiveNetworkMode(td) === 'awsvpc') {
    throw invalidParameter('You cannot specify an IAM role for services that require a service linked role.');
  }
  const tags = validateTags(input.tags);

  const now = ctx.clock.now();
  const nowS = epochSeconds(now);
  const desiredCount = scheduling === 'DAEMON' ? 0 : input.desiredCount ?? 0;
  const platformVersion = launchType === 'FARGATE' ? input.platformVersion ?? 'LATEST' : undefined;
  const revision = makeRevision(td, { launchType, strategy, loadBalancers, serviceRegistries, networkConfiguration, platformVersion }, nowS);
  const deployment = newDeployment(newDeploymentId(), revision, desiredCount, nowS);
  const record: ServiceRecord = {
    serviceArn: serviceArn(ctx.partition, cluster.clusterName, name),
    serviceName: name,
    clusterArn: cluster.clusterArn,
    loadBalancers,
    serviceRegistries,
    status: 'ACTIVE',
    desiredCount,
    // Kept with a strategy too (FARGATE or EC2, what the providers run as) for the code that
    // asks where the service runs; the wire form then shows only the strategy, as ECS does.
    launchType,
    ...(strategy ? { capacityProviderStrategy: strategy } : {}),
    ...(platformVersion ? { platformVersion, platformFamily: FARGATE_PLATFORM_FAMILY } : {}),
    taskDefinition: td.taskDefinitionArn,
    deploymentConfiguration,
    events: [],
    createdAt: nowS,
    ...placement,
    healthCheckGracePeriodSeconds: input.healthCheckGracePeriodSeconds ?? 0,
    schedulingStrategy: scheduling,
    deploymentController: { type: 'ECS' },
    createdBy: caller?.principalArn,
    enableECSManagedTags: input.enableECSManagedTags ?? false,
    propagateTags: input.propagateTags ?? 'NONE',
    enableExecuteCommand: false,
    availabilityZoneRebalancing: input.availabilityZoneRebalancing ?? (scheduling === 'DAEMON' ? 'DISABLED' : 'ENABLED'),
    tags,
    wharf: {
      cluster: cluster.clusterName,
      deployments: [deployment],
      revisions: [revision],
      history: [historyEntry(deployment.id, revision.id, [], deploymentConfiguration, nowS)],
      fingerprint: fp,
      steady: false,
    },
  };
  if (networkConfiguration) record.networkConfiguration = networkConfiguration;
  const roleArn = roleArnOf(ctx, input.role);
  if (roleArn) record.roleArn = roleArn;
  if (input.clientToken) record.wharf.clientToken = input.clientToken;
  if (!record.createdBy) delete record.createdBy;
  try {
    const key = keys.service(cluster.clusterName, name);
    const rev = existing ? await ctx.store.update(key, record, existing.modRevision) : await ctx.store.create(key, record);
    await committed(ctx, rev);
  } catch (e) {
    if (!(e instanceof StoreConflictError)) throw e;
    // A concurrent CreateService of the same name won: answer as a retry of it would be.
    await committed(ctx, await ctx.store.revision());
    const now2 = ctx.state.services.get(cluster.clusterName, name);
    if (now2 && now2.value.status !== 'INACTIVE') return { service: idempotentAnswer(ctx, now2.value, fp, input.clientToken) };
    throw e;
  }
  ctx.log.info({ serviceArn: record.serviceArn, deployment: deployment.id }, 'service created');
  return { service: serviceToWire(ctx, record) };
}

/** An ACTIVE or DRAINING service of that name exists: a true retry gets it, anything else fails. */
function idempotentAnswer(ctx: ControlContext, s: ServiceRecord, fp: string, token: string | undefined): Service {
  const sameToken = token === undefined || s.wharf.clientToken === undefined || token === s.wharf.clientToken;
  if (s.status === 'ACTIVE' && s.wharf.fingerprint === fp && sameToken) return serviceToWire(ctx, s);
  // ECS's words for a name whose deleted service is still draining its tasks: tools that delete
  // and re-create a service (Terraform, CloudFormation replacements) wait and retry on it.
  if (s.status === 'DRAINING') throw invalidParameter('Unable to Start a service that is still Draining.');
  throw invalidParameter('Creation of service was not idempotent.');
}

// ---------------------------------------------------------------------------------------------
// UpdateService

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export async function updateService(ctx: ControlContext, input: UpdateServiceRequest): Promise<UpdateServiceResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster);
  const found = requireService(ctx, cluster.clusterName, input.service);
  if (found.value.schedulingStrategy === 'DAEMON' && input.desiredCount !== undefined) throw daemonDesiredCount();
  if (input.deploymentController !== undefined) checkDeploymentController(input.deploymentController);
  checkUnsupportedExtras(input);
  checkDesired(input.desiredCount);
  checkGrace(input.healthCheckGracePeriodSeconds);
  checkPropagate(input.propagateTags);
  if (input.availabilityZoneRebalancing !== undefined && !['ENABLED', 'DISABLED'].includes(input.availabilityZoneRebalancing)) {
    throw invalidParameter('availabilityZoneRebalancing must be ENABLED or DISABLED.');
  }
  const newTd = input.taskDefinition !== undefined ? requireActiveTaskDefinition(ctx, input.taskDefinition) : undefined;
  const key = found.key;
  for (let attempt = 0; ; attempt++) {
    const cur = ctx.state.services.get(cluster.clusterName, found.value.serviceName);
    if (!cur) throw serviceNotFound();
    if (cur.value.status !== 'ACTIVE') throw serviceNotActive();
    const next = applyUpdate(ctx, cluster, cur.value, input, newTd);
    try {
      const rev = await ctx.store.update(key, next, cur.modRevision);
      await committed(ctx, rev);
      return { service: serviceToWire(ctx, next) };
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
      await committed(ctx, await ctx.store.revision());
    }
  }
}

/** ECS's answer to a change of capacity provider strategy made without forceNewDeployment. */
const STRATEGY_NEEDS_FORCE =
  'When switching from launch type to capacity provider strategy on an existing service, or making a change to a capacity provider strategy on a service that is already using one, you must force a new deployment.';

/**
 * Where an updated service runs: its launch type and capacity provider strategy. A given
 * strategy replaces the service's (it may move a Fargate service to Auto Scaling group providers
 * or an EC2 one to Fargate providers: the new deployment's tasks run as its providers do); an
 * empty list returns the service to the launch type its providers run as (FARGATE for FARGATE /
 * FARGATE_SPOT, EC2 for Auto Scaling group providers). Any change needs forceNewDeployment.
 */
function updatedPlacement(ctx: ControlContext, cluster: ClusterRecord, s: ServiceRecord, td: TaskDefinitionRecord, input: UpdateServiceRequest): { launchType: 'EC2' | 'FARGATE'; strategy?: CapacityProviderStrategyItem[] } {
  const current = { launchType: s.launchType === 'FARGATE' ? 'FARGATE' as const : 'EC2' as const, strategy: s.capacityProviderStrategy };
  const given = input.capacityProviderStrategy;
  if (given === undefined) return current;
  let next: { launchType: 'EC2' | 'FARGATE'; strategy?: CapacityProviderStrategyItem[] };
  if (given.length === 0) next = { launchType: current.launchType };
  else {
    const r = resolveLaunchType(ctx, cluster, td, { capacityProviderStrategy: given });
    next = { launchType: r.launchType === 'FARGATE' ? 'FARGATE' : 'EC2', strategy: r.strategy };
  }
  if (same(next.strategy ?? [], current.strategy ?? [])) return current;
  if (input.forceNewDeployment !== true) throw invalidParameter(STRATEGY_NEEDS_FORCE);
  if (next.launchType === 'FARGATE' && s.schedulingStrategy === 'DAEMON') {
    throw invalidParameter('The DAEMON scheduling strategy is not supported for services using the FARGATE launch type.');
  }
  return next;
}

function applyUpdate(ctx: ControlContext, cluster: ClusterRecord, s: ServiceRecord, input: UpdateServiceRequest, newTd: TaskDefinitionRecord | undefined): ServiceRecord {
  const scheduling = s.schedulingStrategy;
  const td = newTd ?? findTaskDefinition(ctx, s.taskDefinition);
  if (!td) throw new WharfError('ClientException', 'Unable to describe task definition.');
  const { launchType, strategy } = updatedPlacement(ctx, cluster, s, td, input);
  const fargate = launchType === 'FARGATE';
  if (fargate) {
    // Moving to Fargate, the placement the service had on its instances cannot come along.
    const moving = s.launchType !== 'FARGATE';
    checkFargateRequest({
      platformVersion: input.platformVersion,
      placementConstraints: moving ? input.placementConstraints ?? s.placementConstraints : input.placementConstraints,
      placementStrategy: moving ? input.placementStrategy ?? s.placementStrategy : input.placementStrategy,
    });
  } else if (input.platformVersion !== undefined) throw invalidParameter('platformVersion is only valid for the FARGATE launch type.');
  if (newTd || launchType !== s.launchType) resolveLaunchType(ctx, cluster, td, strategy ? { capacityProviderStrategy: strategy } : { launchType });
  const nowS = epochSeconds(ctx.clock.now());
  const deploymentConfiguration = normalizeDeploymentConfiguration(input.deploymentConfiguration, scheduling, s.deploymentConfiguration);
  const placement = validatePlacement(td, input.placementConstraints ?? s.placementConstraints, input.placementStrategy ?? s.placementStrategy, scheduling);
  const networkConfiguration = networkOf(ctx, td, input.networkConfiguration ?? s.networkConfiguration, launchType);
  // The target groups are looked up again only if what they must fit is given anew.
  const loadBalancers = validateLoadBalancers(ctx, input.loadBalancers ?? s.loadBalancers, td, input.loadBalancers !== undefined || newTd !== undefined);
  const serviceRegistries = input.serviceRegistries !== undefined ? validateRegistries(ctx, input.serviceRegistries, td) : validateRegistries(ctx, s.serviceRegistries, td);
  const next: ServiceRecord = {
    ...s,
    deploymentConfiguration,
    ...placement,
    loadBalancers,
    serviceRegistries,
    wharf: { ...s.wharf },
  };
  if (networkConfiguration) next.networkConfiguration = networkConfiguration;
  else delete next.networkConfiguration;
  if (scheduling === 'REPLICA' && input.desiredCount !== undefined) next.desiredCount = input.desiredCount;
  next.launchType = launchType;
  if (!fargate) {
    delete next.platformVersion;
    delete next.platformFamily;
  } else if (s.launchType !== 'FARGATE') {
    next.platformVersion = input.platformVersion ?? 'LATEST';
    next.platformFamily = FARGATE_PLATFORM_FAMILY;
  } else if (input.platformVersion !== undefined) {
    // A new platform version is a new deployment, as on ECS, even though every version Wharf
    // accepts runs as 1.4.0: the deployment and its revision then name the version asked for.
    next.platformVersion = input.platformVersion;
  }
  if (input.healthCheckGracePeriodSeconds !== undefined) next.healthCheckGracePeriodSeconds = input.healthCheckGracePeriodSeconds;
  if (input.enableECSManagedTags !== undefined) next.enableECSManagedTags = input.enableECSManagedTags;
  if (input.propagateTags !== undefined) next.propagateTags = input.propagateTags;
  if (input.availabilityZoneRebalancing !== undefined) next.availabilityZoneRebalancing = input.availabilityZoneRebalancing;

  if (strategy) next.capacityProviderStrategy = strategy;
  else delete next.capacityProviderStrategy;
  const newDeploymentNeeded =
    input.forceNewDeployment === true ||
    !same(strategy ?? [], s.capacityProviderStrategy ?? []) ||
    td.taskDefinitionArn !== s.taskDefinition ||
    !same(networkConfiguration, s.networkConfiguration) ||
    !same(loadBalancers, s.loadBalancers ?? []) ||
    !same(serviceRegistries, s.serviceRegistries ?? []) ||
    next.platformVersion !== s.platformVersion;
  const deployments = s.wharf.deployments;
  if (newDeploymentNeeded) {
    const revision = makeRevision(td, { launchType, strategy, loadBalancers, serviceRegistries, networkConfiguration, platformVersion: next.platformVersion }, nowS);
    const d = newDeployment(newDeploymentId(), revision, next.desiredCount, nowS);
    const old = deployments[0];
    next.taskDefinition = td.taskDefinitionArn;
    next.wharf.deployments = [d, ...deployments.map((x) => (x.status === 'PRIMARY' ? { ...x, status: 'ACTIVE' as const, updatedAt: nowS } : x))];
    next.wharf.revisions = [...s.wharf.revisions, revision];
    let history = s.wharf.history;
    if (old && old.rolloutState === 'IN_PROGRESS') {
      const oldId = old.rollbackOf ?? old.id;
      history = history.map((h) => (h.id === old.id || h.id === oldId) && (h.status === 'IN_PROGRESS' || h.status === 'ROLLBACK_IN_PROGRESS')
        ? { ...h, status: 'STOPPED' as const, statusReason: 'Stopped by a newer service deployment.', updatedAt: nowS, stoppedAt: nowS, finishedAt: nowS }
        : h);
    }
    next.wharf.history = [...history, historyEntry(d.id, revision.id, [...new Set(deployments.map((x) => x.revisionId))], deploymentConfiguration, nowS)];
    next.wharf.steady = false;
    ctx.log.info({ serviceArn: s.serviceArn, deployment: d.id, taskDefinition: td.taskDefinitionArn }, 'new service deployment');
  } else if (scheduling === 'REPLICA' && deployments[0] && deployments[0].desiredCount !== next.desiredCount) {
    next.wharf.deployments = [{ ...deployments[0], desiredCount: next.desiredCount, updatedAt: nowS }, ...deployments.slice(1)];
  }
  return pruneHistory(next);
}

// ---------------------------------------------------------------------------------------------
// DeleteService

export async function deleteService(ctx: ControlContext, input: DeleteServiceRequest): Promise<DeleteServiceResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster);
  const found = requireService(ctx, cluster.clusterName, input.service);
  for (let attempt = 0; ; attempt++) {
    const cur = ctx.state.services.get(cluster.clusterName, found.value.serviceName);
    if (!cur || cur.value.status === 'INACTIVE') throw serviceNotFound();
    const s = cur.value;
    if (s.status === 'DRAINING') return { service: serviceToWire(ctx, s) };
    if (s.schedulingStrategy === 'REPLICA' && s.desiredCount > 0 && !input.force) {
      throw invalidParameter('The service cannot be stopped while it is scaled above 0.');
    }
    const now = ctx.clock.now();
    const nowS = epochSeconds(now);
    const primary = s.wharf.deployments[0];
    const next: ServiceRecord = {
      ...s,
      status: 'DRAINING',
      desiredCount: 0,
      wharf: {
        ...s.wharf,
        deletedAt: now,
        steady: false,
        deployments: s.wharf.deployments.map((d, i) => (i === 0 ? { ...d, desiredCount: 0, updatedAt: nowS } : d)),
        history: s.wharf.history.map((h) =>
          primary && h.id === primary.id && h.status === 'IN_PROGRESS' ? { ...h, status: 'STOPPED' as const, statusReason: 'The service was deleted.', updatedAt: nowS, stoppedAt: nowS, finishedAt: nowS } : h,
        ),
      },
    };
    try {
      const rev = await ctx.store.update(cur.key, next, cur.modRevision);
      await committed(ctx, rev);
      ctx.log.info({ serviceArn: s.serviceArn }, 'service deleted (draining)');
      return { service: serviceToWire(ctx, next) };
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
      await committed(ctx, await ctx.store.revision());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// DescribeServices / ListServices

export async function describeServices(ctx: ControlContext, input: DescribeServicesRequest): Promise<DescribeServicesResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster);
  const refs = input.services ?? [];
  if (refs.length < 1) throw invalidParameter(`services must contain between 1 and ${MAX_DESCRIBE} services.`);
  // ECS's own words for too many (quoted in public issues, e.g. panther-labs/panther#1526).
  if (refs.length > MAX_DESCRIBE) throw invalidParameter(`service names can have at most ${MAX_DESCRIBE} items.`);
  const include = input.include ?? [];
  const services: Service[] = [];
  const failures: Failure[] = [];
  for (const ref of refs) {
    const e = findService(ctx, cluster.clusterName, ref);
    if (e) services.push(serviceToWire(ctx, e.value, include));
    // ECS echoes a given ARN and names an unknown name by the short ARN, without the cluster.
    else failures.push({ arn: ref.startsWith('arn:') ? ref : shortServiceArn(ctx.partition, serviceNameOf(ref).name), reason: 'MISSING' });
  }
  return { services, failures };
}

export async function listServices(ctx: ControlContext, input: ListServicesRequest): Promise<ListServicesResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster);
  const arns: string[] = [];
  for (const e of ctx.state.services.children(cluster.clusterName).values()) {
    const s = e.value;
    if (s.status !== 'ACTIVE') continue;
    if (input.launchType !== undefined && (s.launchType ?? 'EC2') !== input.launchType) continue;
    if (input.schedulingStrategy !== undefined && s.schedulingStrategy !== input.schedulingStrategy) continue;
    if (input.resourceManagementType !== undefined && input.resourceManagementType !== 'CUSTOMER') continue;
    arns.push(s.serviceArn);
  }
  const { page, nextToken } = paginate(arns, (a) => a, input, { default: 10, max: 100, operation: 'ListServices' });
  return { serviceArns: page, nextToken };
}

/** The service operations, for the ECS API table. */
export function serviceHandlers(ctx: ControlContext): Partial<Record<OperationName, Handler>> {
  return {
    CreateService: (i, c) => createService(ctx, i, c),
    UpdateService: (i) => updateService(ctx, i),
    DeleteService: (i) => deleteService(ctx, i),
    DescribeServices: (i) => describeServices(ctx, i),
    ListServices: (i) => listServices(ctx, i),
    ListServiceDeployments: (i) => deploymentsApi.listServiceDeployments(ctx, i),
    DescribeServiceDeployments: (i) => deploymentsApi.describeServiceDeployments(ctx, i),
    DescribeServiceRevisions: (i) => deploymentsApi.describeServiceRevisions(ctx, i),
  };
}


