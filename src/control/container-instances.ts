/**
 * Container instances: RegisterContainerInstance (also re-registration of the same instance
 * after an agent restart), DescribeContainerInstances, ListContainerInstances,
 * DeregisterContainerInstance and UpdateContainerInstancesState. The attribute operations live
 * in attributes.ts; `containerInstanceHandlers` exposes both to the API table.
 *
 * Status:  ACTIVE <-> DRAINING  (UpdateContainerInstancesState)
 *             \         /
 *              INACTIVE        (DeregisterContainerInstance; final)
 *
 * `agentConnected` is written by the agent gateway and the liveness controller, never here
 * (except that a deregistered instance is no longer connected).
 */
import { FARGATE_POOL } from '../core/fargate-pool';
import { clusterNameOf, containerInstanceArn, idOf, parseArn } from '../core/arn';
import { parseClusterQuery, evaluateClusterQuery, type QuerySubject } from '../core/cluster-query';
import { clientError, invalidParameter } from '../core/errors';
import { registeredResourcesFrom, reserve } from '../core/instance-resources';
import { keys, type ContainerInstanceRecord, type InstanceUsageRecord, type TaskRecord } from '../core/resources';
import type {
  Attribute,
  ContainerInstance,
  DeregisterContainerInstanceRequest,
  DeregisterContainerInstanceResponse,
  DescribeContainerInstancesRequest,
  DescribeContainerInstancesResponse,
  Failure,
  ListContainerInstancesRequest,
  ListContainerInstancesResponse,
  OperationName,
  RegisterContainerInstanceRequest,
  RegisterContainerInstanceResponse,
  UpdateContainerInstancesStateRequest,
  UpdateContainerInstancesStateResponse,
} from '../core/shapes/ecs';
import { mergeTags, validateTags } from '../core/tags';
import { STOPPED_TASK_RETENTION_MS, isTerminal } from '../core/task-status';
import { epochSeconds, hexId } from '../lib';
import type { Entry, State } from '../state/state';
import { StoreConflictError, casUpdate, type TxnOp } from '../store/store';
import * as attributes from './attributes';
import { CAPACITY_PROVIDER_ATTRIBUTE } from '../core/capacity-provider-strategy';
import { createCluster, requireActiveCluster } from './clusters';
import { committed, type Caller, type ControlContext } from './context';
import { INSTANCE_CREDENTIAL_MEMBER, newInstanceKey, type InstanceKey } from './instance-credentials';
import { paginate } from './pagination';

/** Same shape as ecs-api's EcsHandler (not imported, so ecs-api can import this file). */
type Handler = (input: any, caller: Caller) => Promise<unknown>;

const MAX_DESCRIBE = 100;
const MAX_UPDATE_STATE = 10;

/** Statuses ListContainerInstances shows when no status filter is given. */
const LISTED_BY_DEFAULT = new Set(['ACTIVE', 'DRAINING', 'REGISTERING', 'DEREGISTERING', 'REGISTRATION_FAILED']);
const PENDING_STATUSES = new Set(['PROVISIONING', 'PENDING', 'ACTIVATING']);

const instanceNotFound = (ref: string) => invalidParameter(`Container instance not found: ${ref}`);

/**
 * The instance a reference (32-hex id or ARN) names in a cluster. An ARN naming another cluster
 * names nothing here, as in ECS.
 */
export function findInstance(ctx: Pick<ControlContext, 'state'>, cluster: string, ref: string): Entry<ContainerInstanceRecord> | undefined {
  const a = parseArn(ref);
  if (a && a.type !== 'container-instance') return undefined;
  const { id, cluster: inArn } = idOf(ref, 'container-instance');
  if (inArn !== undefined && inArn !== cluster) return undefined;
  return ctx.state.instances.get(cluster, id);
}

/** Tasks placed on an instance that still hold its resources (not yet STOPPED and released). */
export function tasksOnInstance(state: State, instanceId: string): TaskRecord[] {
  const out: TaskRecord[] = [];
  for (const [id, cluster] of state.tasksByInstance.get(instanceId) ?? []) {
    const t = state.tasks.get(cluster, id)?.value;
    if (t) out.push(t);
  }
  return out;
}

export interface InstanceTaskCounts {
  /** Tasks whose desiredStatus is RUNNING (ECS's runningTasksCount). */
  running: number;
  /** Tasks not yet started (PROVISIONING, PENDING, ACTIVATING). */
  pending: number;
  /** Task group -> tasks of the group not told to stop (the `task:group` query subject). */
  byGroup: Map<string, number>;
}

export function taskCounts(state: State, cluster: string, instanceId: string): InstanceTaskCounts {
  const c: InstanceTaskCounts = { running: 0, pending: 0, byGroup: new Map() };
  for (const t of tasksOnInstance(state, instanceId)) {
    if (t.desiredStatus === 'RUNNING') c.running++;
    if (PENDING_STATUSES.has(t.lastStatus)) c.pending++;
    if (t.desiredStatus !== 'STOPPED' && t.group) c.byGroup.set(t.group, (c.byGroup.get(t.group) ?? 0) + 1);
  }
  return c;
}

/** The wire form: computed counters added, Wharf's bookkeeping removed, tags only if asked. */
export function instanceToWire(ctx: ControlContext, rec: ContainerInstanceRecord, include: readonly string[] = []): ContainerInstance {
  const { wharf, tags, ...rest } = rec;
  const counts = taskCounts(ctx.state, wharf.cluster, wharf.id);
  const out: ContainerInstance = {
    ...rest,
    agentConnected: rec.agentConnected ?? false,
    runningTasksCount: counts.running,
    pendingTasksCount: counts.pending,
    attributes: rec.attributes ?? [],
    attachments: rec.attachments ?? [],
  };
  // The instance's Auto Scaling group provider (`wharf agent --capacity-provider`), as ECS shows it.
  const provider = rec.attributes?.find((a) => a.name === CAPACITY_PROVIDER_ATTRIBUTE)?.value;
  if (provider !== undefined) out.capacityProviderName = provider;
  if (include.includes('TAGS')) out.tags = tags ?? [];
  if (include.includes('CONTAINER_INSTANCE_HEALTH')) {
    // Wharf watches only the agent channel, so that is the one health signal it can report.
    const now = epochSeconds(ctx.clock.now());
    const status = rec.agentConnected ? 'OK' : 'IMPAIRED';
    out.healthStatus = {
      overallStatus: status,
      details: [{ type: 'CONTAINER_RUNTIME', status, lastUpdated: now, lastStatusChange: rec.wharf.lastSeenAt ? epochSeconds(rec.wharf.lastSeenAt) : now }],
    };
  }
  return out;
}

/** The instance as the cluster query language sees it (ListContainerInstances' `filter`). */
export function querySubjectOf(ctx: ControlContext, rec: ContainerInstanceRecord): QuerySubject {
  const counts = taskCounts(ctx.state, rec.wharf.cluster, rec.wharf.id);
  const attrs = new Map<string, string | undefined>();
  for (const a of rec.attributes ?? []) attrs.set(a.name, a.value);
  return {
    attributes: attrs,
    agentConnected: rec.agentConnected ?? false,
    ...(rec.versionInfo?.agentVersion !== undefined ? { agentVersion: rec.versionInfo.agentVersion } : {}),
    ...(rec.ec2InstanceId !== undefined ? { ec2InstanceId: rec.ec2InstanceId } : {}),
    registeredAt: Math.round((rec.registeredAt ?? 0) * 1000),
    runningTasksCount: counts.running,
    tasksByGroup: counts.byGroup,
  };
}

// ---------------------------------------------------------------------------------------------
// RegisterContainerInstance

interface IdentityDocument {
  instanceId?: string;
  availabilityZone?: string;
  instanceType?: string;
  imageId?: string;
}

/**
 * What ECS derives from an EC2 instance identity document. Wharf hosts are not EC2 instances, so
 * the document is optional and anything that is not a JSON object is ignored.
 */
function identityOf(doc: string | undefined): { ec2InstanceId?: string; attributes: Attribute[] } {
  if (!doc) return { attributes: [] };
  let d: IdentityDocument;
  try {
    const parsed: unknown = JSON.parse(doc);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { attributes: [] };
    d = parsed as IdentityDocument;
  } catch {
    return { attributes: [] };
  }
  const attrs: Attribute[] = [];
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  const az = str(d.availabilityZone);
  const type = str(d.instanceType);
  const ami = str(d.imageId);
  if (az) attrs.push({ name: 'ecs.availability-zone', value: az });
  if (type) attrs.push({ name: 'ecs.instance-type', value: type });
  if (ami) attrs.push({ name: 'ecs.ami-id', value: ami });
  const id = str(d.instanceId);
  return id ? { ec2InstanceId: id, attributes: attrs } : { attributes: attrs };
}

/** The remaining resources of a (re-)registered instance: its total minus what its tasks hold. */
/**
 * An instance as the API shows it after a write of its registration: the state cache's merged
 * record (registration and usage, state.ts), or the written record if the cache has none.
 */
function mergedInstance(ctx: ControlContext, cluster: string, id: string, written: ContainerInstanceRecord): ContainerInstanceRecord {
  return ctx.state.instances.get(cluster, id)?.value ?? written;
}

function remainingAfterTasks(ctx: ControlContext, cluster: string, id: string, registered: ContainerInstanceRecord['registeredResources']) {
  let remaining = registered ?? [];
  for (const t of tasksOnInstance(ctx.state, id)) {
    if (t.wharf.reservation && !t.wharf.released) remaining = reserve(remaining, t.wharf.reservation);
  }
  return remaining;
}

export async function registerContainerInstance(
  ctx: ControlContext,
  input: RegisterContainerInstanceRequest,
  caller?: Caller,
): Promise<RegisterContainerInstanceResponse> {
  // Agents register with a join token, users with their own key; both may register (which
  // cluster a token may join, and who may register an existing instance again, is decided
  // before this runs: agent-authorization.ts).
  const registeredResources = registeredResourcesFrom(input.totalResources);
  const identity = identityOf(input.instanceIdentityDocument);
  // Attributes the agent sends win over the ones derived from the identity document.
  const given = attributes.registrationAttributes(input.attributes);
  const sentAttributes = attributes.mergeAttributes(identity.attributes, given);
  const tags = validateTags(input.tags);
  const now = ctx.clock.now();
  const clusterName = clusterNameOf(input.cluster);
  const existing = ctx.state.clusters.get('', clusterName)?.value;
  if (clusterName === 'default' && (!existing || existing.status !== 'ACTIVE')) {
    // ECS creates the default cluster when the first instance registers to it.
    await createCluster(ctx, { clusterName: 'default' });
  }
  // A Fargate pool host (`wharf agent --fargate`) joins the region's hidden pool, which has no
  // cluster record: no user-facing operation can name it (core/fargate-pool.ts).
  const poolName = clusterName === FARGATE_POOL ? FARGATE_POOL : requireActiveCluster(ctx, clusterName).clusterName;

  if (input.containerInstanceArn !== undefined) {
    return reRegister(ctx, poolName, input, { registeredResources, sentAttributes, tags, identity, now, caller });
  }

  const id = hexId();
  const cluster = { clusterName: poolName };
  const rec: ContainerInstanceRecord = {
    containerInstanceArn: containerInstanceArn(ctx.partition, cluster.clusterName, id),
    version: 1,
    versionInfo: input.versionInfo ?? {},
    registeredResources,
    remainingResources: registeredResources,
    status: 'ACTIVE',
    agentConnected: false,
    attributes: sentAttributes,
    registeredAt: epochSeconds(now),
    attachments: [],
    tags,
    // A new instance gets its own credential, handed back once (withCredential).
    wharf: { id, cluster: cluster.clusterName, agentKey: newInstanceKey() },
  };
  if (identity.ec2InstanceId) rec.ec2InstanceId = identity.ec2InstanceId;
  const revision = await ctx.store.create(keys.instance(cluster.clusterName, id), rec);
  await committed(ctx, revision);
  ctx.log.info({ containerInstanceArn: rec.containerInstanceArn }, 'container instance registered');
  return withCredential({ containerInstance: instanceToWire(ctx, rec, ['TAGS']) }, rec.wharf.agentKey);
}

/**
 * RegisterContainerInstance's answer with the instance credential as a Wharf extension member
 * (`wharfInstanceCredential`): AWS tools parse only the members of the ECS model and ignore it,
 * `wharf agent` keeps it in its data dir and signs everything after with it. Shown only when it
 * was just made: a re-registration with its own credential gets nothing it does not have.
 */
function withCredential(out: RegisterContainerInstanceResponse, key: InstanceKey | undefined): RegisterContainerInstanceResponse {
  return key ? { ...out, [INSTANCE_CREDENTIAL_MEMBER]: key } as RegisterContainerInstanceResponse : out;
}

/**
 * An agent that kept its containerInstanceArn registers again after a restart: same identity,
 * new resources, version info and built-in attributes; custom attributes put through the API,
 * status (ACTIVE or DRAINING), tags and the tasks placed on it are kept.
 */
async function reRegister(
  ctx: ControlContext,
  cluster: string,
  input: RegisterContainerInstanceRequest,
  p: { registeredResources: ContainerInstanceRecord['registeredResources']; sentAttributes: Attribute[]; tags: ReturnType<typeof validateTags>; identity: ReturnType<typeof identityOf>; now: number; caller?: Caller },
): Promise<RegisterContainerInstanceResponse> {
  let issued: InstanceKey | undefined;
  const ref = input.containerInstanceArn!;
  const parsed = parseArn(ref);
  const { id, cluster: inArn } = idOf(ref, 'container-instance');
  if ((parsed && parsed.type !== 'container-instance') || (inArn !== undefined && inArn !== cluster)) {
    throw clientError(`The container instance ${ref} is not registered in cluster ${cluster}.`);
  }
  const key = keys.instance(cluster, id);
  for (let attempt = 0; ; attempt++) {
    const cur = await ctx.store.get<ContainerInstanceRecord>(key);
    if (!cur) throw clientError(`The container instance ${ref} is not registered in cluster ${cluster}.`);
    if (cur.value.status === 'INACTIVE') {
      throw clientError(`The container instance ${ref} was deregistered (INACTIVE); register without containerInstanceArn to join as a new instance.`);
    }
    const custom = (cur.value.attributes ?? []).filter((a) => !attributes.isBuiltinAttribute(a.name));
    const attrs = attributes.mergeAttributes(custom, p.sentAttributes);
    attributes.registrationAttributes(attrs); // the custom-attribute limit, over the merged set
    const next: ContainerInstanceRecord = {
      ...cur.value,
      version: cur.value.version + 1,
      versionInfo: input.versionInfo ?? cur.value.versionInfo ?? {},
      registeredResources: p.registeredResources,
      remainingResources: p.registeredResources,
      attributes: attrs,
      tags: p.tags.length > 0 ? mergeTags(cur.value.tags, p.tags) : cur.value.tags ?? [],
    };
    // An instance registered before credentials were bound to instances gets one now (whoever
    // re-registers it holds a join token of its cluster or a user's key); one that has its own
    // keeps it, and only its own credential may get here with a join token refused.
    issued = undefined;
    if (!cur.value.wharf.agentKey) {
      issued = newInstanceKey();
      next.wharf = { ...cur.value.wharf, agentKey: issued };
    }
    if (p.identity.ec2InstanceId) next.ec2InstanceId = p.identity.ec2InstanceId;
    // The resources may have changed: what is left is the new total less the tasks still placed
    // here, written to the usage record in the same transaction (a placement racing this one
    // fails its compare-and-swap and decides again).
    const use = ctx.state.usage.get(cluster, id);
    const usage: InstanceUsageRecord = { remainingResources: remainingAfterTasks(ctx, cluster, id, p.registeredResources), version: (use?.value.version ?? 0) + 1 };
    const usageKey = keys.instanceUsage(cluster, id);
    try {
      const revision = await ctx.store.txn([
        { op: 'update', key, value: next, expectedRevision: cur.modRevision },
        use ? { op: 'update', key: usageKey, value: usage, expectedRevision: use.modRevision } : { op: 'create', key: usageKey, value: usage },
      ]);
      await committed(ctx, revision);
      break;
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
      await committed(ctx, await ctx.store.revision());
    }
  }
  const value = ctx.state.instances.get(cluster, id)!.value;
  ctx.log.info({ containerInstanceArn: value.containerInstanceArn, newCredential: issued !== undefined, by: p.caller?.principal?.kind }, 'container instance re-registered');
  return withCredential({ containerInstance: instanceToWire(ctx, value, ['TAGS']) }, issued);
}

// ---------------------------------------------------------------------------------------------
// Describe / List

export async function describeContainerInstances(
  ctx: ControlContext,
  input: DescribeContainerInstancesRequest,
): Promise<DescribeContainerInstancesResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  const refs = input.containerInstances ?? [];
  if (refs.length === 0) throw clientError('Container instance cannot be empty.');
  // ECS's own words (the request member is `containerInstances`, the message says instanceIds).
  if (refs.length > MAX_DESCRIBE) throw invalidParameter(`instanceIds can have at most ${MAX_DESCRIBE} items.`);
  const include = input.include ?? [];
  const containerInstances: ContainerInstance[] = [];
  const failures: Failure[] = [];
  for (const ref of refs) {
    const e = findInstance(ctx, cluster, ref);
    if (e) containerInstances.push(instanceToWire(ctx, e.value, include));
    else failures.push({ arn: parseArn(ref) ? ref : containerInstanceArn(ctx.partition, cluster, ref), reason: 'MISSING' });
  }
  return { containerInstances, failures };
}

export async function listContainerInstances(ctx: ControlContext, input: ListContainerInstancesRequest): Promise<ListContainerInstancesResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  const query = input.filter !== undefined ? parseClusterQuery(input.filter) : undefined;
  const wanted = (status: string) => (input.status !== undefined ? status === input.status : LISTED_BY_DEFAULT.has(status));
  const arns: string[] = [];
  for (const e of ctx.state.instances.children(cluster).values()) {
    const rec = e.value;
    if (!wanted(rec.status)) continue;
    if (query && !evaluateClusterQuery(query, querySubjectOf(ctx, rec))) continue;
    arns.push(rec.containerInstanceArn);
  }
  const { page, nextToken } = paginate(arns, (a) => a, input, { default: 100, max: 100, operation: 'ListContainerInstances' });
  return { containerInstanceArns: page, nextToken };
}

// ---------------------------------------------------------------------------------------------
// Deregister

/**
 * A task left behind on a force-deregistered instance. ECS stops tracking it ("orphaned"): it
 * may keep running on the host, but the cluster no longer counts it, so it reads as STOPPED and
 * a service replaces it elsewhere. Its resources go with the instance.
 */
export function orphanedTask(t: TaskRecord, now: number): TaskRecord {
  const nowS = epochSeconds(now);
  return {
    ...t,
    desiredStatus: 'STOPPED',
    lastStatus: 'STOPPED',
    stoppedReason: 'Container instance deregistered: the task is no longer tracked (its containers may still run on the host).',
    stoppingAt: t.stoppingAt ?? nowS,
    stoppedAt: nowS,
    executionStoppedAt: t.executionStoppedAt ?? nowS,
    containers: (t.containers ?? []).map((c) => ({ ...c, lastStatus: 'STOPPED' })),
    attachments: (t.attachments ?? []).map((a) => ({ ...a, status: 'DELETED' })),
    version: t.version + 1,
    wharf: { ...t.wharf, released: true, expiresAt: now + STOPPED_TASK_RETENTION_MS },
  };
}

export async function deregisterContainerInstance(
  ctx: ControlContext,
  input: DeregisterContainerInstanceRequest,
): Promise<DeregisterContainerInstanceResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  if (typeof input.containerInstance !== 'string' || input.containerInstance === '') throw invalidParameter('containerInstance is required.');
  const found = findInstance(ctx, cluster, input.containerInstance);
  if (!found || found.value.status === 'INACTIVE') throw instanceNotFound(input.containerInstance);
  const id = found.value.wharf.id;
  for (let attempt = 0; ; attempt++) {
    const cur = await ctx.store.get<ContainerInstanceRecord>(keys.instance(cluster, id));
    if (!cur || cur.value.status === 'INACTIVE') throw instanceNotFound(input.containerInstance);
    const live = tasksOnInstance(ctx.state, id).filter((t) => !isTerminal(t.lastStatus));
    if (live.length > 0 && !input.force) throw invalidParameter('Found running tasks on the instance.');
    const now = ctx.clock.now();
    const next: ContainerInstanceRecord = { ...cur.value, status: 'INACTIVE', agentConnected: false, version: cur.value.version + 1 };
    const ops: TxnOp[] = [{ op: 'update', key: keys.instance(cluster, id), value: next, expectedRevision: cur.modRevision }];
    for (const t of live) {
      const e = ctx.state.tasks.get(cluster, t.wharf.id)!;
      ops.push({ op: 'update', key: keys.task(cluster, t.wharf.id), value: orphanedTask(t, now), expectedRevision: e.modRevision });
    }
    try {
      const revision = await ctx.store.txn(ops);
      await committed(ctx, revision);
      ctx.log.info({ containerInstanceArn: next.containerInstanceArn, orphanedTasks: live.length }, 'container instance deregistered');
      return { containerInstance: instanceToWire(ctx, mergedInstance(ctx, cluster, id, next), ['TAGS']) };
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// UpdateContainerInstancesState

export async function updateContainerInstancesState(
  ctx: ControlContext,
  input: UpdateContainerInstancesStateRequest,
): Promise<UpdateContainerInstancesStateResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  const refs = input.containerInstances ?? [];
  if (refs.length === 0) throw invalidParameter('containerInstances must hold at least one container instance.');
  if (refs.length > MAX_UPDATE_STATE) throw invalidParameter(`instanceIds can have at most ${MAX_UPDATE_STATE} items.`);
  const status = input.status as string;
  if (status !== 'ACTIVE' && status !== 'DRAINING') {
    throw invalidParameter(`Container instances can only be set to ACTIVE or DRAINING, not ${status}.`);
  }
  const containerInstances: ContainerInstance[] = [];
  const failures: Failure[] = [];
  for (const ref of refs) {
    const arnOf = () => (parseArn(ref) ? ref : containerInstanceArn(ctx.partition, cluster, ref));
    const found = findInstance(ctx, cluster, ref);
    if (!found) {
      failures.push({ arn: arnOf(), reason: 'MISSING' });
      continue;
    }
    let refusal: Failure | undefined;
    const { value, revision } = await casUpdate<ContainerInstanceRecord>(ctx.store, found.key, (cur) => {
      refusal = undefined;
      if (!cur) {
        refusal = { arn: arnOf(), reason: 'MISSING' };
        return undefined;
      }
      const s = cur.value.status;
      if (s === status) return undefined;
      if (s !== 'ACTIVE' && s !== 'DRAINING') {
        refusal = {
          arn: cur.value.containerInstanceArn,
          reason: s === 'INACTIVE' ? 'INACTIVE' : 'INVALID_STATE',
          detail: `The container instance is ${s}; only ACTIVE and DRAINING instances can change state.`,
        };
        return undefined;
      }
      return { ...cur.value, status, version: cur.value.version + 1 };
    });
    if (refusal) {
      failures.push(refusal);
      continue;
    }
    await committed(ctx, revision);
    containerInstances.push(instanceToWire(ctx, mergedInstance(ctx, cluster, value!.wharf.id, value!)));
  }
  return { containerInstances, failures };
}

/** The operations of this file and attributes.ts, for the ECS API table. */
export function containerInstanceHandlers(ctx: ControlContext): Partial<Record<OperationName, Handler>> {
  return {
    RegisterContainerInstance: (i, c) => registerContainerInstance(ctx, i, c),
    DescribeContainerInstances: (i) => describeContainerInstances(ctx, i),
    ListContainerInstances: (i) => listContainerInstances(ctx, i),
    DeregisterContainerInstance: (i) => deregisterContainerInstance(ctx, i),
    UpdateContainerInstancesState: (i) => updateContainerInstancesState(ctx, i),
    PutAttributes: (i) => attributes.putAttributes(ctx, i),
    DeleteAttributes: (i) => attributes.deleteAttributes(ctx, i),
    ListAttributes: (i) => attributes.listAttributes(ctx, i),
  };
}

