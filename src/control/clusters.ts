/**
 * Clusters: CreateCluster (idempotent for an ACTIVE name), DescribeClusters, ListClusters,
 * DeleteCluster (refused while anything is in it), UpdateCluster, UpdateClusterSettings,
 * PutClusterCapacityProviders.
 *
 * Lifecycle, as ECS has it:
 *
 *   ACTIVE --DeleteCluster--> INACTIVE --(INACTIVE_CLUSTER_VISIBLE_MS; task reaper)--> gone
 *     ^                          |
 *     +------CreateCluster-------+   (same name and ARN, ACTIVE again with the request's
 *                                      settings and tags, like a new cluster)
 *
 * An INACTIVE cluster stays in ListClusters and DescribeClusters (status INACTIVE) for an
 * hour: ECS keeps deleted clusters "discoverable in your account for a period of time" without
 * saying how long, and an hour matches how long Wharf keeps STOPPED tasks. Every operation that
 * needs a live cluster (RunTask, CreateService, RegisterContainerInstance, ListTasks...) goes
 * through requireActiveCluster and answers ClusterNotFoundException for it, as ECS does;
 * TagResource answers InvalidParameterException (see control/tags.ts).
 */
import { clusterArn, clusterNameOf, iamArn } from '../core/arn';
import { WharfError, clusterNotFound, invalidParameter } from '../core/errors';
import { keys, type ClusterRecord } from '../core/resources';
import { ExecuteCommandLoggingValues } from '../core/shapes/ecs';
import type {
  Cluster,
  ClusterConfiguration,
  ClusterSetting,
  CreateClusterRequest,
  CreateClusterResponse,
  DeleteClusterRequest,
  DeleteClusterResponse,
  DescribeClustersRequest,
  DescribeClustersResponse,
  ListClustersRequest,
  ListClustersResponse,
  PutClusterCapacityProvidersRequest,
  PutClusterCapacityProvidersResponse,
  UpdateClusterRequest,
  UpdateClusterResponse,
  UpdateClusterSettingsRequest,
  UpdateClusterSettingsResponse,
} from '../core/shapes/ecs';
import { validateTags } from '../core/tags';
import { casUpdate } from '../store/store';
import { effectiveSetting } from './account-settings';
import { checkClusterProviders, normalizeDefaultStrategy } from './capacity-providers';
import { committed, type Caller, type ControlContext } from './context';
import { paginate } from './pagination';

const NAME_RE = /^[A-Za-z0-9_-]{1,255}$/;
const ACTIVE_TASK = (lastStatus: string) => lastStatus !== 'STOPPED' && lastStatus !== 'DELETED';

/** How long a deleted (INACTIVE) cluster stays listed and describable before it is removed. */
export const INACTIVE_CLUSTER_VISIBLE_MS = 60 * 60 * 1000;

/** Whether a cluster record is still shown: ACTIVE, or INACTIVE for less than the window. */
export function clusterVisible(c: ClusterRecord, now: number): boolean {
  if (c.status !== 'INACTIVE') return true;
  return c.wharf.deletedAt === undefined || now < c.wharf.deletedAt + INACTIVE_CLUSTER_VISIBLE_MS;
}

/** The ACTIVE cluster a request names, or ClusterNotFoundException. */
export function requireActiveCluster(ctx: ControlContext, ref: string | undefined): ClusterRecord {
  const name = clusterNameOf(ref);
  const c = ctx.state.clusters.get('', name)?.value;
  if (!c) throw clusterNotFound();
  if (c.status !== 'ACTIVE') throw clusterNotFound('The referenced cluster was inactive.');
  return c;
}

function validateSettings(settings: ClusterSetting[] | undefined): ClusterSetting[] | undefined {
  if (!settings) return undefined;
  for (const s of settings) {
    if (s.name !== 'containerInsights') throw invalidParameter(`Unknown cluster setting name '${s.name}'.`);
    if (!['enabled', 'disabled', 'enhanced'].includes(s.value ?? '')) {
      throw invalidParameter(`containerInsights must be 'enabled', 'disabled' or 'enhanced', not '${s.value}'.`);
    }
  }
  return settings.map((s) => ({ name: s.name, value: s.value }));
}

/**
 * ECS's rules for executeCommandConfiguration (CreateCluster, UpdateCluster): logging is NONE,
 * DEFAULT or OVERRIDE; OVERRIDE needs a logConfiguration (the message is the API reference's
 * sentence, no ECS error text found), and a logConfiguration is only taken with OVERRIDE (ECS's
 * own error text).
 */
function checkConfiguration(configuration: ClusterConfiguration | undefined): void {
  const e = configuration?.executeCommandConfiguration;
  if (!e) return;
  if (e.logging !== undefined && !ExecuteCommandLoggingValues.includes(e.logging)) {
    throw invalidParameter(`Invalid executeCommandConfiguration logging '${String(e.logging)}': expected NONE, DEFAULT or OVERRIDE.`);
  }
  if (e.logging === 'OVERRIDE' && !e.logConfiguration) {
    throw invalidParameter('If the OVERRIDE logging option is specified, the logConfiguration is required.');
  }
  if (e.logConfiguration && e.logging !== 'OVERRIDE') throw invalidParameter("You must set logging to 'OVERRIDE' when you supply a log configuration");
}

function mergeSettings(existing: ClusterSetting[] | undefined, added: ClusterSetting[]): ClusterSetting[] {
  const m = new Map((existing ?? []).map((s) => [s.name, s.value]));
  for (const s of added) m.set(s.name, s.value);
  return [...m].map(([name, value]) => ({ name, value }));
}

function counters(ctx: ControlContext, name: string) {
  let registered = 0;
  for (const e of ctx.state.instances.children(name).values()) {
    if (e.value.status === 'ACTIVE' || e.value.status === 'DRAINING') registered++;
  }
  const stats = ctx.state.taskCountsOf(name);
  const svc = { activeEC2: 0, activeFargate: 0, drainingEC2: 0, drainingFargate: 0 };
  for (const e of ctx.state.services.children(name).values()) {
    const fargate = e.value.launchType === 'FARGATE';
    if (e.value.status === 'ACTIVE') fargate ? svc.activeFargate++ : svc.activeEC2++;
    else if (e.value.status === 'DRAINING') fargate ? svc.drainingFargate++ : svc.drainingEC2++;
  }
  return { registered, stats, svc };
}

export type ClusterInclude = 'ATTACHMENTS' | 'CONFIGURATIONS' | 'SETTINGS' | 'STATISTICS' | 'TAGS';

/** The wire form of a cluster, with the counters ECS computes and the sections asked for. */
export function clusterToWire(ctx: ControlContext, c: ClusterRecord, include: readonly string[] = []): Cluster {
  const n = counters(ctx, c.clusterName);
  const out: Cluster = {
    clusterArn: c.clusterArn,
    clusterName: c.clusterName,
    status: c.status,
    registeredContainerInstancesCount: n.registered,
    runningTasksCount: n.stats.runningEC2 + n.stats.runningFargate,
    pendingTasksCount: n.stats.pendingEC2 + n.stats.pendingFargate,
    activeServicesCount: n.svc.activeEC2 + n.svc.activeFargate,
    capacityProviders: c.capacityProviders ?? [],
    defaultCapacityProviderStrategy: c.defaultCapacityProviderStrategy ?? [],
  };
  if (c.serviceConnectDefaults) out.serviceConnectDefaults = c.serviceConnectDefaults;
  if (include.includes('STATISTICS')) {
    out.statistics = [
      ['runningEC2TasksCount', n.stats.runningEC2],
      ['runningFargateTasksCount', n.stats.runningFargate],
      ['pendingEC2TasksCount', n.stats.pendingEC2],
      ['pendingFargateTasksCount', n.stats.pendingFargate],
      ['activeEC2ServiceCount', n.svc.activeEC2],
      ['activeFargateServiceCount', n.svc.activeFargate],
      ['drainingEC2ServiceCount', n.svc.drainingEC2],
      ['drainingFargateServiceCount', n.svc.drainingFargate],
    ].map(([name, value]) => ({ name: String(name), value: String(value) }));
  }
  if (include.includes('SETTINGS')) out.settings = c.settings ?? [{ name: 'containerInsights', value: 'disabled' }];
  if (include.includes('CONFIGURATIONS') && c.configuration) out.configuration = c.configuration;
  if (include.includes('TAGS')) out.tags = c.tags;
  if (include.includes('ATTACHMENTS')) out.attachments = c.attachments ?? [];
  if (c.attachmentsStatus) out.attachmentsStatus = c.attachmentsStatus;
  return out;
}

const ALL_SECTIONS = ['SETTINGS', 'CONFIGURATIONS', 'TAGS'];

/**
 * A new cluster's settings: the request's, with containerInsights (when the request does not set
 * it) from the caller's effective containerInsights account setting (PutAccountSetting, else
 * PutAccountSettingDefault, else disabled), as ECS takes it. Without a caller (the default
 * cluster an instance's registration makes) the account default applies.
 */
function clusterSettings(ctx: ControlContext, given: ClusterSetting[] | undefined, caller: Caller | undefined): ClusterSetting[] {
  const out = [...(given ?? [])];
  if (!out.some((s) => s.name === 'containerInsights')) {
    const principal = caller?.principalArn ?? iamArn(ctx.partition, 'root');
    out.push({ name: 'containerInsights', value: effectiveSetting(ctx, 'containerInsights', principal).value });
  }
  return out;
}

export async function createCluster(ctx: ControlContext, input: CreateClusterRequest, caller?: Caller): Promise<CreateClusterResponse> {
  const name = input.clusterName ?? 'default';
  if (!NAME_RE.test(name)) {
    throw invalidParameter('Cluster name can only contain up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens.');
  }
  const settings = validateSettings(input.settings);
  const tags = validateTags(input.tags);
  checkConfiguration(input.configuration);
  checkClusterProviders(ctx, name, input.capacityProviders, input.defaultCapacityProviderStrategy);
  const existing = ctx.state.clusters.get('', name);
  if (existing && existing.value.status === 'ACTIVE') {
    // ECS answers an existing ACTIVE cluster's name with that cluster, unchanged.
    return { cluster: clusterToWire(ctx, existing.value, ALL_SECTIONS) };
  }
  const record: ClusterRecord = {
    clusterArn: clusterArn(ctx.partition, name),
    clusterName: name,
    status: 'ACTIVE',
    settings: clusterSettings(ctx, settings, caller),
    configuration: input.configuration,
    capacityProviders: input.capacityProviders ?? [],
    defaultCapacityProviderStrategy: normalizeDefaultStrategy(input.defaultCapacityProviderStrategy),
    serviceConnectDefaults: input.serviceConnectDefaults?.namespace ? { namespace: input.serviceConnectDefaults.namespace } : undefined,
    tags,
    wharf: { createdAt: ctx.clock.now() },
  };
  const { value, revision } = await casUpdate<ClusterRecord>(ctx.store, keys.cluster(name), (cur) =>
    cur && cur.value.status === 'ACTIVE' ? undefined : record,
  );
  await committed(ctx, revision);
  return { cluster: clusterToWire(ctx, value!, ALL_SECTIONS) };
}

export async function describeClusters(ctx: ControlContext, input: DescribeClustersRequest): Promise<DescribeClustersResponse> {
  const refs = input.clusters && input.clusters.length > 0 ? input.clusters : ['default'];
  if (refs.length > 100) throw invalidParameter('At most 100 clusters can be described at once.');
  const include = input.include ?? [];
  const clusters: Cluster[] = [];
  const failures = [];
  for (const ref of refs) {
    const name = clusterNameOf(ref);
    const c = ctx.state.clusters.get('', name)?.value;
    if (c && clusterVisible(c, ctx.clock.now())) clusters.push(clusterToWire(ctx, c, include));
    // An ARN is named as given (an ARN of another kind is no cluster name to build one from).
    else failures.push({ arn: ref.startsWith('arn:') ? ref : clusterArn(ctx.partition, name), reason: 'MISSING' });
  }
  return { clusters, failures };
}

export async function listClusters(ctx: ControlContext, input: ListClustersRequest): Promise<ListClustersResponse> {
  const arns: string[] = [];
  const now = ctx.clock.now();
  for (const e of ctx.state.clusters.all()) if (clusterVisible(e.value, now)) arns.push(e.value.clusterArn);
  const { page, nextToken } = paginate(arns, (a) => a, input, { default: 100, max: 100, operation: 'ListClusters' });
  return { clusterArns: page, nextToken };
}

export async function deleteCluster(ctx: ControlContext, input: DeleteClusterRequest): Promise<DeleteClusterResponse> {
  const c = requireActiveCluster(ctx, input.cluster);
  const name = c.clusterName;
  for (const e of ctx.state.instances.children(name).values()) {
    if (e.value.status === 'ACTIVE' || e.value.status === 'DRAINING' || e.value.status === 'REGISTERING') {
      throw new WharfError('ClusterContainsContainerInstancesException', 'The Cluster cannot be deleted while Container Instances are active or draining.');
    }
  }
  for (const e of ctx.state.services.children(name).values()) {
    if (e.value.status === 'ACTIVE' || e.value.status === 'DRAINING') {
      throw new WharfError('ClusterContainsServicesException', 'The Cluster cannot be deleted while Services are active.');
    }
  }
  for (const e of ctx.state.tasks.children(name).values()) {
    if (ACTIVE_TASK(e.value.lastStatus) || e.value.desiredStatus === 'RUNNING') {
      throw new WharfError('ClusterContainsTasksException', 'The Cluster cannot be deleted while Tasks are active.');
    }
  }
  const { value, revision } = await casUpdate<ClusterRecord>(ctx.store, keys.cluster(name), (cur) => {
    if (!cur || cur.value.status !== 'ACTIVE') throw clusterNotFound();
    return { ...cur.value, status: 'INACTIVE', wharf: { ...cur.value.wharf, deletedAt: ctx.clock.now() } };
  });
  await committed(ctx, revision);
  return { cluster: clusterToWire(ctx, value!, ALL_SECTIONS) };
}

async function mutateCluster(ctx: ControlContext, ref: string | undefined, f: (c: ClusterRecord) => ClusterRecord): Promise<Cluster> {
  const name = requireActiveCluster(ctx, ref).clusterName;
  const { value, revision } = await casUpdate<ClusterRecord>(ctx.store, keys.cluster(name), (cur) => {
    if (!cur || cur.value.status !== 'ACTIVE') throw clusterNotFound();
    return f(cur.value);
  });
  await committed(ctx, revision);
  return clusterToWire(ctx, value!, ALL_SECTIONS);
}

export async function updateCluster(ctx: ControlContext, input: UpdateClusterRequest): Promise<UpdateClusterResponse> {
  const settings = validateSettings(input.settings);
  checkConfiguration(input.configuration);
  const cluster = await mutateCluster(ctx, input.cluster, (c) => ({
    ...c,
    settings: settings ? mergeSettings(c.settings, settings) : c.settings,
    configuration: input.configuration ? { ...c.configuration, ...input.configuration } : c.configuration,
    serviceConnectDefaults: input.serviceConnectDefaults?.namespace
      ? { namespace: input.serviceConnectDefaults.namespace }
      : c.serviceConnectDefaults,
  }));
  return { cluster };
}

export async function updateClusterSettings(ctx: ControlContext, input: UpdateClusterSettingsRequest): Promise<UpdateClusterSettingsResponse> {
  const settings = validateSettings(input.settings)!;
  const cluster = await mutateCluster(ctx, input.cluster, (c) => ({ ...c, settings: mergeSettings(c.settings, settings) }));
  return { cluster };
}

export async function putClusterCapacityProviders(ctx: ControlContext, input: PutClusterCapacityProvidersRequest): Promise<PutClusterCapacityProvidersResponse> {
  const c = requireActiveCluster(ctx, input.cluster);
  if (!Array.isArray(input.capacityProviders)) throw invalidParameter('capacityProviders must be specified.');
  if (!Array.isArray(input.defaultCapacityProviderStrategy)) throw invalidParameter('defaultCapacityProviderStrategy must be specified.');
  checkClusterProviders(ctx, c.clusterName, input.capacityProviders, input.defaultCapacityProviderStrategy);
  // Full replacement: a provider left out is removed, unless a task or service still uses it.
  const keep = new Set(input.capacityProviders);
  const inUse = () => new WharfError('ResourceInUseException', 'The specified capacity provider is in use and cannot be removed.');
  for (const e of ctx.state.tasks.children(c.clusterName).values()) {
    const cp = e.value.capacityProviderName;
    if (cp && !keep.has(cp) && e.value.lastStatus !== 'STOPPED') throw inUse();
  }
  for (const e of ctx.state.services.children(c.clusterName).values()) {
    if (e.value.status === 'INACTIVE') continue;
    if ((e.value.capacityProviderStrategy ?? []).some((s) => !keep.has(s.capacityProvider))) throw inUse();
  }
  const cluster = await mutateCluster(ctx, input.cluster, (cur) => ({
    ...cur,
    capacityProviders: input.capacityProviders,
    defaultCapacityProviderStrategy: normalizeDefaultStrategy(input.defaultCapacityProviderStrategy),
  }));
  return { cluster };
}
