/**
 * Tasks: RunTask, StartTask, StopTask. (DescribeTasks/ListTasks are in task-queries.ts, the
 * agent's state changes in task-state-changes.ts.)
 */
import { createHash } from 'node:crypto';
import { idOf } from '../core/arn';
import { isFargateProvider } from '../core/capacity-provider-strategy';
import { FARGATE_PLATFORM_VERSIONS, FARGATE_POOL } from '../core/fargate-pool';
import { WharfError, invalidParameter } from '../core/errors';
import { keys, type ClusterRecord, type TaskDefinitionRecord, type TaskRecord } from '../core/resources';
import type {
  CapacityProviderStrategyItem,
  Failure,
  PlacementStrategy,
  RunTaskRequest,
  RunTaskResponse,
  StartTaskRequest,
  StartTaskResponse,
  StopTaskRequest,
  StopTaskResponse,
  Tag,
} from '../core/shapes/ecs';
import { isFargateSize } from '../core/task-definition-fargate';
import { resolveResourceNeeds } from '../core/task-definition-resources';
import { STOP, isTerminal } from '../core/task-status';
import { mergeTags, validateTags } from '../core/tags';
import { epochSeconds } from '../lib';
import { StoreConflictError, type TxnOp } from '../store/store';
import { launchStrategy, providerGroups, providerPlacement } from './capacity-providers';
import { requireActiveCluster } from './clusters';
import { committed, type ControlContext } from './context';
import { foundNoInstances, placeTasks } from './placement';
import { Reason } from '../scheduler';
import { requireActiveTaskDefinition } from './task-definitions';
import { newTaskRecord, taskKey, taskToWire } from './task-records';
import { asWaiting, waitsForCapacity } from './capacity-waiting';
import { requestStop } from './task-stop';
import { announceDrain } from './task-drain';
import { heldBack, isOnDemandFargate, reclaimSpotCapacity, releaseSpotHold } from './spot-capacity';
import { resolveNetwork, subnetByZone, zoneConstraint } from './task-network';

export { resolveNetwork } from './task-network';

const MAX_COUNT = 10;
/** ECS's limit on RunTask/StartTask overrides, JSON formatting characters included. */
const MAX_OVERRIDES_CHARS = 8192;

type LaunchType = 'EC2' | 'FARGATE' | 'EXTERNAL';

/**
 * Which launch type a request runs with, and the capacity provider strategy it launches through
 * (its own, or the cluster's default when it names no launch type). A strategy of FARGATE /
 * FARGATE_SPOT runs as FARGATE, one of Auto Scaling group providers as EC2.
 */
export function resolveLaunchType(
  ctx: ControlContext,
  cluster: ClusterRecord,
  td: TaskDefinitionRecord,
  input: { launchType?: string; capacityProviderStrategy?: CapacityProviderStrategyItem[] },
): { launchType: LaunchType; strategy?: CapacityProviderStrategyItem[] } {
  const strategy = launchStrategy(ctx, cluster, input);
  if (input.launchType === 'EXTERNAL') {
    throw new WharfError('UnsupportedFeatureException', 'The EXTERNAL launch type is not available in Wharf yet; use launchType EC2 or FARGATE.');
  }
  const launchType = strategy ? (isFargateProvider(strategy[0]!.capacityProvider) ? 'FARGATE' : 'EC2') : input.launchType === 'FARGATE' ? 'FARGATE' : 'EC2';
  if (!(td.compatibilities ?? []).includes(launchType)) {
    throw invalidParameter(`Task definition does not support launch_type ${launchType}.`);
  }
  return strategy ? { launchType, strategy } : { launchType };
}

/**
 * The rules a request must follow to run on Fargate, beyond its task definition's: a known
 * platform version, and no placement constraints or strategies (Fargate places tasks itself).
 */
export function checkFargateRequest(input: { platformVersion?: string; placementConstraints?: unknown[]; placementStrategy?: unknown[] }): void {
  if (input.platformVersion !== undefined && !FARGATE_PLATFORM_VERSIONS.includes(input.platformVersion)) {
    throw new WharfError('PlatformUnknownException', `The specified platform version (${input.platformVersion}) does not exist. Wharf runs Fargate platform version ${FARGATE_PLATFORM_VERSIONS.join(' / ')}.`);
  }
  if ((input.placementConstraints?.length ?? 0) > 0) throw invalidParameter('Task placement constraints are not supported for tasks using the FARGATE launch type.');
  if ((input.placementStrategy?.length ?? 0) > 0) throw invalidParameter('Task placement strategies are not supported for tasks using the FARGATE launch type.');
}

/** Where Fargate spreads a region's tasks: over the pool's availability zones, then packed. */
export const FARGATE_STRATEGY: PlacementStrategy[] = [
  { type: 'spread', field: 'attribute:ecs.availability-zone' },
  { type: 'binpack', field: 'memory' },
];

/**
 * How a Fargate placement failure reads: the pool is Wharf's, so no instance is named; when it
 * has no room (or no host at all) the task is not placed, as when Fargate has no capacity.
 */
export const FARGATE_CAPACITY_REASON = 'Capacity is unavailable at this time. Please try again later or in a different availability zone';

/** The tags a new task gets: its own, then propagated ones, then ECS-managed ones. */
export function taskTags(
  requestTags: Tag[] | undefined,
  opts: { propagateTags?: string; td: TaskDefinitionRecord; serviceTags?: Tag[]; managed?: { cluster: string; service?: string } },
): Tag[] {
  let tags = validateTags(requestTags);
  if (opts.propagateTags === 'TASK_DEFINITION') tags = mergeTags(opts.td.tags, tags);
  else if (opts.propagateTags === 'SERVICE') tags = mergeTags(opts.serviceTags ?? [], tags);
  if (opts.managed) {
    const m: Tag[] = [{ key: 'aws:ecs:clusterName', value: opts.managed.cluster }];
    if (opts.managed.service) m.push({ key: 'aws:ecs:serviceName', value: opts.managed.service });
    tags = mergeTags(tags, m);
  }
  return tags;
}

/** Options of RunTask/StartTask that Wharf cannot honour yet are refused, never ignored. */
function refuseUnsupportedTaskOptions(input: { enableExecuteCommand?: boolean; volumeConfigurations?: unknown[] }): void {
  if (input.enableExecuteCommand) throw new WharfError('UnsupportedFeatureException', 'ExecuteCommand is not available in Wharf yet, so enableExecuteCommand cannot be true.');
  if (input.volumeConfigurations?.length) throw new WharfError('UnsupportedFeatureException', 'volumeConfigurations (Amazon EBS volumes) are not available in Wharf.');
}

/** A task run by hand has no service whose tags it could take. */
function refuseServicePropagation(propagateTags?: string): void {
  if (propagateTags === 'SERVICE') throw invalidParameter('propagateTags SERVICE is only valid for tasks started by a service.');
}

/**
 * Task-level overrides checked as RegisterTaskDefinition checks the definition's own values: on
 * Fargate the cpu/memory after overrides must be one of Fargate's sizes, and an ephemeralStorage
 * override (Fargate only) 21-200 GiB. They were taken as given (a 300-cpu Fargate task ran).
 */
function checkTaskOverrides(td: TaskDefinitionRecord, overrides: { cpu?: string; memory?: string; ephemeralStorage?: { sizeInGiB?: number } } | undefined, fargate: boolean): void {
  if (!overrides) return;
  if (overrides.ephemeralStorage !== undefined) {
    if (!fargate) throw invalidParameter('The ephemeralStorage override is only supported for tasks using the FARGATE launch type.');
    const size = overrides.ephemeralStorage.sizeInGiB;
    if (!Number.isInteger(size) || size! < 21 || size! > 200) throw invalidParameter("Invalid 'ephemeralStorage.sizeInGiB' setting. It must be an integer between 21 and 200.");
  }
  if (fargate && (overrides.cpu !== undefined || overrides.memory !== undefined)) {
    const windows = (td.runtimePlatform?.operatingSystemFamily ?? 'LINUX') !== 'LINUX';
    if (!isFargateSize(Number(overrides.cpu ?? td.cpu), Number(overrides.memory ?? td.memory), windows)) throw invalidParameter('No Fargate configuration exists for given values.');
  }
}

function checkOverridesLength(overrides: unknown): void {
  if (overrides !== undefined && JSON.stringify(overrides).length > MAX_OVERRIDES_CHARS) {
    throw invalidParameter(`Container Overrides length must be at most ${MAX_OVERRIDES_CHARS}`);
  }
}

function checkStartedByAndGroup(startedBy?: string, group?: string): void {
  if (startedBy !== undefined && (startedBy.length > 128 || !/^[A-Za-z0-9_\-/:.#]*$/.test(startedBy))) {
    throw invalidParameter('startedBy may contain up to 128 letters (uppercase and lowercase), numbers, hyphens, underscores, colons, periods, slashes and number signs.');
  }
  if (group !== undefined && (group.length < 1 || group.length > 255)) throw invalidParameter('group must be between 1 and 255 characters.');
}

function fingerprint(input: object): string {
  const { clientToken: _t, ...rest } = input as Record<string, unknown>;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

/**
 * How long a RunTask clientToken is remembered. The AWS SDKs fill in a fresh token on every call,
 * so tokens must expire or they would pile up; a retry of the same call comes within seconds.
 */
export const CLIENT_TOKEN_TTL_MS = 60 * 60 * 1000;

export interface TokenRecord {
  /** Epoch ms after which the token is forgotten (reaped). */
  expiresAt: number;
  fingerprint: string;
  taskArns: string[];
  failures: Failure[];
}

export async function runTask(ctx: ControlContext, input: RunTaskRequest): Promise<RunTaskResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster);
  const count = input.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) throw invalidParameter(`count must be between 1 and ${MAX_COUNT}.`);
  if (input.clientToken !== undefined && (input.clientToken.length < 1 || input.clientToken.length > 64)) {
    throw invalidParameter('clientToken must be between 1 and 64 characters.');
  }
  const tokenKey = input.clientToken ? keys.clientToken('RunTask', input.clientToken) : undefined;
  const fp = fingerprint(input);
  const replay = tokenKey ? answerFromToken(ctx, tokenKey, fp, cluster.clusterName) : undefined;
  if (replay) return replay;

  const td = requireActiveTaskDefinition(ctx, input.taskDefinition);
  const { launchType, strategy } = resolveLaunchType(ctx, cluster, td, input);
  const fargate = launchType === 'FARGATE';
  if (fargate) checkFargateRequest(input);
  else if (input.platformVersion !== undefined) invalidParameterFor('platformVersion', 'the FARGATE launch type');
  refuseUnsupportedTaskOptions(input);
  const awsvpc = resolveNetwork(ctx, td, input.networkConfiguration, launchType);
  checkOverridesLength(input.overrides);
  checkTaskOverrides(td, input.overrides, fargate);
  const needs = resolveResourceNeeds(td, input.overrides);
  const group = input.group ?? `family:${td.family}`;
  checkStartedByAndGroup(input.startedBy, group);
  refuseServicePropagation(input.propagateTags);
  const tags = taskTags(input.tags, {
    propagateTags: input.propagateTags,
    td,
    managed: input.enableECSManagedTags ? { cluster: cluster.clusterName } : undefined,
  });
  const constraints = [...(td.placementConstraints ?? []), ...(input.placementConstraints ?? [])];
  // awsvpc: only hosts in the zones of the task's subnets; its ENI takes that zone's subnet.
  const zones = awsvpc ? subnetByZone(ctx, awsvpc) : undefined;
  const zoneConstraints = zones ? [zoneConstraint(Object.keys(zones))] : [];
  const now = ctx.clock.now();
  // Without a strategy all tasks go one way; with one, each provider's share is placed in turn
  // (the idempotency token is written with the last share, naming every task).
  const shares: { provider?: string; count: number }[] = strategy ? providerGroups(strategy, count) : [{ count }];
  const tasks: TaskRecord[] = [];
  const failures: Failure[] = [];
  const failuresOut = (f: Failure[]) => (fargate ? fargateFailures(f) : f);
  // Spot shares wait while on-demand tasks take the room reclaimed from Spot (spot-capacity.ts).
  const placing = shares.filter((sh) => !heldBack(ctx, sh.provider));
  for (const sh of shares) if (!placing.includes(sh)) failures.push(...heldFailures(sh.count));
  const tokenValue = (all: TaskRecord[], failed: Failure[]): TokenRecord => ({ fingerprint: fp, taskArns: all.map((t) => t.taskArn), failures: failuresOut(failed), expiresAt: now + CLIENT_TOKEN_TTL_MS });
  try {
    if (placing.length === 0 && tokenKey) await committed(ctx, await ctx.store.txn([{ op: 'create', key: tokenKey, value: tokenValue([], failures) }]));
    for (const [i, share] of placing.entries()) {
      const last = i === placing.length - 1;
      const where = share.provider ? providerPlacement(share.provider) : { capacity: fargate ? FARGATE_POOL : undefined, requiredAttributes: [] };
      const makeTask = () => {
        const t = newTaskRecord({
          partition: ctx.partition,
          cluster,
          td,
          needs,
          overrides: input.overrides,
          launchType,
          group,
          startedBy: input.startedBy,
          tags,
          now,
          clientToken: input.clientToken,
          awsvpc,
        });
        if (share.provider) t.capacityProviderName = share.provider;
        return t;
      };
      // An Auto Scaling group provider with managed scaling: what its group cannot take now waits
      // in PROVISIONING for an instance (capacity-waiting.ts) instead of failing.
      const wait = waitsForCapacity(ctx, share.provider);
      const waitRules = { constraints: [...(fargate ? [] : constraints), ...zoneConstraints], strategies: input.placementStrategy ?? [] };
      let waiting: TaskRecord[] = [];
      const placed = await placeTasks(ctx, {
        cluster: cluster.clusterName,
        capacity: where.capacity,
        needs,
        count: share.count,
        group,
        constraints: [...(fargate ? [] : constraints), ...zoneConstraints],
        subnetByZone: zones,
        strategies: fargate ? FARGATE_STRATEGY : input.placementStrategy ?? [],
        requiredAttributes: [...(td.requiresAttributes ?? []).map((a) => ({ name: a.name, value: a.value })), ...where.requiredAttributes],
        makeTask,
        // An EC2 cluster without instances is refused below, and the refusal is not remembered.
        commitIf: (result) => fargate || strategy !== undefined || !foundNoInstances(result),
        extraOps: (placedNow, failedNow) => {
          waiting = wait ? failedNow.map(() => asWaiting(makeTask(), waitRules)) : [];
          const left = wait ? [] : failedNow;
          const ops: TxnOp[] = waiting.map((t) => ({ op: 'create', key: taskKey(t), value: t }));
          if (tokenKey && last) ops.push({ op: 'create', key: tokenKey, value: tokenValue([...tasks, ...placedNow, ...waiting], [...failures, ...left]) });
          return ops;
        },
      });
      if (!fargate && !strategy && foundNoInstances(placed.result)) throw invalidParameter(Reason.NO_INSTANCES);
      tasks.push(...placed.tasks, ...waiting);
      if (!wait) failures.push(...placed.failures);
      if (isOnDemandFargate(launchType, share.provider)) {
        // The pool is short: interrupt Spot tasks so that a retry (or the service) finds room.
        if (placed.failures.length > 0) await reclaimSpotCapacity(ctx, needs, placed.failures.length);
        else if (placed.tasks.length > 0) releaseSpotHold(ctx);
      }
    }
    return { tasks: tasks.map((t) => taskToWire(t)), failures: failuresOut(failures) };
  } catch (e) {
    // A concurrent call with the same token won: answer as it did.
    if (e instanceof StoreConflictError && tokenKey && e.key === tokenKey) {
      await committed(ctx, await ctx.store.revision());
      const again = answerFromToken(ctx, tokenKey, fp, cluster.clusterName);
      if (again) return again;
    }
    throw e;
  }
}

function heldFailures(count: number): Failure[] {
  return Array.from({ length: count }, () => ({ reason: FARGATE_CAPACITY_REASON }));
}

/**
 * Why no Fargate capacity can ever take a task: its definition requires attributes no pool host
 * has (a runtimePlatform of another architecture or OS). Not "try again later": no retry helps.
 */
export const FARGATE_ATTRIBUTE_DETAIL = "No Fargate capacity in this region has the attributes the task definition requires (requiresAttributes, such as its runtimePlatform's cpu architecture or operating system).";

/**
 * Fargate failures name no instance (the pool is not the user's to see): a missing attribute
 * says so, anything else is Fargate's capacity answer.
 */
function fargateFailures(failures: Failure[]): Failure[] {
  return failures.map((f) => (f.reason === Reason.ATTRIBUTE ? { reason: Reason.ATTRIBUTE, detail: FARGATE_ATTRIBUTE_DETAIL } : { reason: FARGATE_CAPACITY_REASON }));
}

function invalidParameterFor(field: string, what: string): never {
  throw invalidParameter(`${field} is only valid for ${what}.`);
}

function answerFromToken(ctx: ControlContext, tokenKey: string, fp: string, cluster: string): RunTaskResponse | undefined {
  const tok = ctx.state.tokens.get(tokenKey.slice('tokens/'.length, tokenKey.lastIndexOf('/')), tokenKey.slice(tokenKey.lastIndexOf('/') + 1))?.value as TokenRecord | undefined;
  if (!tok || tok.expiresAt <= ctx.clock.now()) return undefined;
  if (tok.fingerprint !== fp) {
    throw new WharfError('ConflictException', 'The clientToken is already in use with a different RunTask request.', { resourceIds: tok.taskArns });
  }
  const tasks = tok.taskArns
    .map((a) => ctx.state.tasks.get(cluster, idOf(a, 'task').id)?.value)
    .filter((t): t is TaskRecord => t !== undefined)
    .map((t) => taskToWire(t));
  return { tasks, failures: tok.failures };
}

export async function startTask(ctx: ControlContext, input: StartTaskRequest): Promise<StartTaskResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster);
  const refs = input.containerInstances ?? [];
  if (refs.length < 1 || refs.length > 10) throw invalidParameter('containerInstances must contain between 1 and 10 container instances.');
  const td = requireActiveTaskDefinition(ctx, input.taskDefinition);
  if (!(td.compatibilities ?? []).includes('EC2')) throw invalidParameter('Task definition does not support launch_type EC2.');
  refuseUnsupportedTaskOptions(input);
  const awsvpc = resolveNetwork(ctx, td, input.networkConfiguration, 'EC2');
  checkOverridesLength(input.overrides);
  checkTaskOverrides(td, input.overrides, false);
  const needs = resolveResourceNeeds(td, input.overrides);
  const group = input.group ?? `family:${td.family}`;
  checkStartedByAndGroup(input.startedBy, group);
  refuseServicePropagation(input.propagateTags);
  const tags = taskTags(input.tags, {
    propagateTags: input.propagateTags,
    td,
    managed: input.enableECSManagedTags ? { cluster: cluster.clusterName } : undefined,
  });
  // Each task goes on the instance named for it, checked by the scheduler's filters (resources,
  // host ports, GPUs, required attributes); StartTask takes no placement constraints.
  const placed = await placeTasks(ctx, {
    cluster: cluster.clusterName,
    needs,
    count: refs.length,
    on: refs.map((ref) => idOf(ref, 'container-instance').id),
    group,
    // The named instance must be in one of the subnets' zones, as for RunTask.
    constraints: awsvpc ? [zoneConstraint(Object.keys(subnetByZone(ctx, awsvpc)))] : [],
    subnetByZone: awsvpc ? subnetByZone(ctx, awsvpc) : undefined,
    strategies: [],
    requiredAttributes: (td.requiresAttributes ?? []).map((a) => ({ name: a.name, value: a.value })),
    makeTask: () =>
      newTaskRecord({ partition: ctx.partition, cluster, td, needs, overrides: input.overrides, launchType: 'EC2', group, startedBy: input.startedBy, tags, now: ctx.clock.now(), awsvpc }),
  });
  return { tasks: placed.tasks.map((t) => taskToWire(t)), failures: placed.failures };
}

/** The task a `task` parameter names in a cluster, or InvalidParameterException as ECS answers. */
export function requireTask(ctx: ControlContext, clusterName: string, ref: string): TaskRecord {
  const { id, cluster } = idOf(ref, 'task');
  if (cluster && cluster !== clusterName) throw invalidParameter('The referenced task was not found in the given cluster.');
  const t = ctx.state.tasks.get(clusterName, id)?.value;
  if (!t) throw invalidParameter('The referenced task was not found.');
  return t;
}

export { requestStop } from './task-stop';

export async function stopTask(ctx: ControlContext, input: StopTaskRequest): Promise<StopTaskResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster);
  if (input.reason !== undefined && input.reason.length > 1024) throw invalidParameter('reason must be at most 1024 characters.');
  const t = requireTask(ctx, cluster.clusterName, input.task);
  const stopped = await requestStop(ctx, cluster.clusterName, t.wharf.id, {
    stopCode: STOP.userInitiated.stopCode,
    reason: input.reason ?? STOP.userInitiated.reason,
  });
  if (stopped.lastStatus === 'DEACTIVATING' && t.lastStatus !== 'DEACTIVATING') await announceDrain(ctx, stopped);
  return { task: taskToWire(stopped) };
}

