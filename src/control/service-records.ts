/**
 * Services as stored and as described: lookups, the computed counters (runningCount and
 * pendingCount are always counted from the tasks, never stored), the wire forms of a service,
 * its deployments, service deployments and revisions, and the builders of new deployments.
 */
import { FARGATE_POOL, capacityOf } from '../core/fargate-pool';
import { arn, clusterNameOf, serviceArn, serviceNameOf } from '../core/arn';
import { WharfError } from '../core/errors';
import type {
  ContainerInstanceRecord,
  ServiceDeploymentHistoryRecord,
  ServiceDeploymentRecord,
  ServiceRecord,
  ServiceRevisionRecord,
  TaskRecord,
} from '../core/resources';
import { rolloutReason } from '../core/service-events';
import { circuitBreakerThreshold } from '../core/service-math';
import type { Deployment, Service, ServiceDeployment, ServiceRevision, ServiceRevisionSummary } from '../core/shapes/ecs';
import { isTerminal } from '../core/task-status';
import { digitId } from '../lib';
import type { Entry } from '../state/state';
import type { ControlContext } from './context';

/**
 * The instance a task of the service runs on, by id: in the service's capacity (its cluster, or
 * the Fargate pool), else in the other, where the tasks of a deployment made before an
 * UpdateService moved the service between EC2 and Fargate still run.
 */
export function serviceInstanceLookup(ctx: ControlContext, s: ServiceRecord): (id: string) => Entry<ContainerInstanceRecord> | undefined {
  const own = capacityOf(s);
  const other = own === FARGATE_POOL ? s.wharf.cluster : FARGATE_POOL;
  return (id) => ctx.state.instances.get(own, id) ?? ctx.state.instances.get(other, id);
}

export const serviceNotFound = () => new WharfError('ServiceNotFoundException', 'Service not found.');
export const serviceNotActive = () => new WharfError('ServiceNotActiveException', 'Service was not ACTIVE.');

/** Bounds on what a service record keeps of its past. */
export const MAX_HISTORY = 50;

export const newDeploymentId = () => `ecs-svc/${digitId()}`;
export const digitsOf = (deploymentId: string) => deploymentId.slice(deploymentId.lastIndexOf('/') + 1);

export function serviceDeploymentArn(ctx: ControlContext, s: { wharf: { cluster: string }; serviceName: string }, deploymentId: string): string {
  return arn(ctx.partition, 'service-deployment', `${s.wharf.cluster}/${s.serviceName}/${digitsOf(deploymentId)}`);
}
export function serviceRevisionArn(ctx: ControlContext, s: { wharf: { cluster: string }; serviceName: string }, revisionId: string): string {
  return arn(ctx.partition, 'service-revision', `${s.wharf.cluster}/${s.serviceName}/${revisionId}`);
}

/** The service a `service` parameter names in a cluster (any status), or undefined. */
export function findService(ctx: ControlContext, cluster: string, ref: string): Entry<ServiceRecord> | undefined {
  const { name, cluster: inArn } = serviceNameOf(ref);
  if (inArn !== undefined && inArn !== cluster) return undefined;
  return ctx.state.services.get(cluster, name);
}

export function requireService(ctx: ControlContext, cluster: string, ref: string | undefined): Entry<ServiceRecord> {
  if (!ref) throw new WharfError('InvalidParameterException', 'service is required.');
  const e = findService(ctx, cluster, ref);
  if (!e) throw serviceNotFound();
  return e;
}

/** The tasks of a service in the cache (every status). */
export function tasksOfService(ctx: ControlContext, s: ServiceRecord): TaskRecord[] {
  const out: TaskRecord[] = [];
  for (const e of ctx.state.tasks.children(s.wharf.cluster).values()) if (e.value.wharf.serviceName === s.serviceName) out.push(e.value);
  return out;
}

const PENDING = new Set(['PROVISIONING', 'PENDING', 'ACTIVATING']);

/**
 * runningCount: tasks whose lastStatus is RUNNING, except tasks already told to stop whose
 * instance is gone or disconnected (nobody will ever report them, they are given up).
 * pendingCount: tasks not yet RUNNING that are still wanted.
 */
export function countTasks(tasks: readonly TaskRecord[], instance: (id: string) => ContainerInstanceRecord | undefined): { running: number; pending: number } {
  let running = 0;
  let pending = 0;
  for (const t of tasks) {
    if (isTerminal(t.lastStatus)) continue;
    if (t.lastStatus === 'RUNNING') {
      if (t.desiredStatus === 'STOPPED' && t.wharf.instanceId) {
        const i = instance(t.wharf.instanceId);
        if (!i || i.status === 'INACTIVE' || !i.agentConnected) continue;
      }
      running++;
    } else if (PENDING.has(t.lastStatus) && t.desiredStatus === 'RUNNING') {
      pending++;
    }
  }
  return { running, pending };
}

function revisionOf(s: ServiceRecord, id: string): ServiceRevisionRecord | undefined {
  return s.wharf.revisions.find((r) => r.id === id);
}

export function deploymentToWire(s: ServiceRecord, d: ServiceDeploymentRecord, counts: { running: number; pending: number }): Deployment {
  const r = revisionOf(s, d.revisionId);
  const out: Deployment = {
    id: d.id,
    status: d.status,
    taskDefinition: d.taskDefinition,
    desiredCount: d.desiredCount,
    pendingCount: counts.pending,
    runningCount: counts.running,
    failedTasks: d.failedTasks,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    rolloutState: d.rolloutState,
    rolloutStateReason: d.rolloutStateReason,
  };
  if (r?.capacityProviderStrategy?.length) out.capacityProviderStrategy = r.capacityProviderStrategy;
  else out.launchType = r?.launchType ?? 'EC2';
  if (r?.platformVersion) out.platformVersion = r.platformVersion;
  if (r?.platformFamily) out.platformFamily = r.platformFamily;
  if (r?.networkConfiguration) out.networkConfiguration = r.networkConfiguration;
  return out;
}

export function serviceToWire(ctx: ControlContext, s: ServiceRecord, include: readonly string[] = []): Service {
  const { wharf, tags, ...rest } = s;
  const tasks = tasksOfService(ctx, s);
  const lookup = serviceInstanceLookup(ctx, s);
  const instance = (id: string) => lookup(id)?.value;
  const byDeployment = new Map<string, TaskRecord[]>();
  for (const t of tasks) {
    const k = t.startedBy ?? '';
    let l = byDeployment.get(k);
    if (!l) byDeployment.set(k, (l = []));
    l.push(t);
  }
  const total = countTasks(tasks, instance);
  const deployments = wharf.deployments.map((d) => deploymentToWire(s, d, countTasks(byDeployment.get(d.id) ?? [], instance)));
  const out: Service = {
    ...rest,
    runningCount: total.running,
    pendingCount: total.pending,
    deployments,
    events: s.events ?? [],
    loadBalancers: s.loadBalancers ?? [],
    serviceRegistries: s.serviceRegistries ?? [],
    placementConstraints: s.placementConstraints ?? [],
    placementStrategy: s.placementStrategy ?? [],
  };
  const primary = wharf.deployments[0];
  if (primary && s.status !== 'INACTIVE') {
    out.currentServiceDeployment = serviceDeploymentArn(ctx, s, primary.id);
    out.currentServiceRevisions = wharf.deployments.map((d) => {
      const c = countTasks(byDeployment.get(d.id) ?? [], instance);
      return { arn: serviceRevisionArn(ctx, s, d.revisionId), requestedTaskCount: d.desiredCount, runningTaskCount: c.running, pendingTaskCount: c.pending };
    });
  }
  if (out.capacityProviderStrategy?.length) delete out.launchType;
  if (include.includes('TAGS')) out.tags = tags ?? [];
  return out;
}

export function revisionToWire(ctx: ControlContext, s: ServiceRecord, r: ServiceRevisionRecord): ServiceRevision {
  const out: ServiceRevision = {
    serviceRevisionArn: serviceRevisionArn(ctx, s, r.id),
    serviceArn: s.serviceArn,
    clusterArn: s.clusterArn,
    taskDefinition: r.taskDefinition,
    loadBalancers: r.loadBalancers,
    serviceRegistries: r.serviceRegistries,
    createdAt: r.createdAt,
  };
  if (r.capacityProviderStrategy?.length) out.capacityProviderStrategy = r.capacityProviderStrategy;
  else out.launchType = r.launchType ?? 'EC2';
  if (r.platformVersion) out.platformVersion = r.platformVersion;
  if (r.platformFamily) out.platformFamily = r.platformFamily;
  if (r.networkConfiguration) out.networkConfiguration = r.networkConfiguration;
  const td = ctx.state.taskDefinitions.get(r.taskDefinition.split('/').pop()!.replace(/:\d+$/, ''), r.taskDefinition.split(':').pop()!.padStart(10, '0'))?.value;
  if (td) out.containerImages = (td.containerDefinitions ?? []).map((c) => ({ containerName: c.name, image: c.image }));
  return out;
}

export function serviceDeploymentToWire(ctx: ControlContext, s: ServiceRecord, h: ServiceDeploymentHistoryRecord): ServiceDeployment {
  const tasks = tasksOfService(ctx, s);
  const lookup = serviceInstanceLookup(ctx, s);
  const instance = (id: string) => lookup(id)?.value;
  const summary = (revisionId: string): ServiceRevisionSummary => {
    const ids = new Set(s.wharf.deployments.filter((d) => d.revisionId === revisionId).map((d) => d.id));
    const c = countTasks(tasks.filter((t) => t.startedBy !== undefined && ids.has(t.startedBy)), instance);
    const requested = s.wharf.deployments.filter((d) => d.revisionId === revisionId).reduce((n, d) => n + d.desiredCount, 0);
    return { arn: serviceRevisionArn(ctx, s, revisionId), requestedTaskCount: requested, runningTaskCount: c.running, pendingTaskCount: c.pending };
  };
  const live = s.wharf.deployments.find((d) => d.id === h.id);
  const cb = h.deploymentConfiguration.deploymentCircuitBreaker;
  const threshold = h.circuitBreakerThreshold ?? circuitBreakerThreshold(live?.desiredCount ?? s.desiredCount);
  const out: ServiceDeployment = {
    serviceDeploymentArn: serviceDeploymentArn(ctx, s, h.id),
    serviceArn: s.serviceArn,
    clusterArn: s.clusterArn,
    createdAt: h.createdAt,
    startedAt: h.startedAt,
    updatedAt: h.updatedAt,
    sourceServiceRevisions: h.sourceRevisionIds.map(summary),
    targetServiceRevision: summary(h.targetRevisionId),
    status: h.status,
    deploymentConfiguration: h.deploymentConfiguration,
    deploymentCircuitBreaker: cb?.enable
      ? {
          status: h.status === 'IN_PROGRESS' ? 'MONITORING' : h.status === 'SUCCESSFUL' ? 'MONITORING_COMPLETE' : live?.rolloutState === 'FAILED' || h.status.startsWith('ROLLBACK') ? 'TRIGGERED' : 'MONITORING_COMPLETE',
          failureCount: live?.failedTasks ?? h.failedTasks ?? 0,
          threshold,
        }
      : { status: 'DISABLED', failureCount: live?.failedTasks ?? h.failedTasks ?? 0, threshold },
  };
  if (h.statusReason) out.statusReason = h.statusReason;
  if (h.finishedAt !== undefined) out.finishedAt = h.finishedAt;
  if (h.stoppedAt !== undefined) out.stoppedAt = h.stoppedAt;
  if (h.rollback) out.rollback = { reason: h.rollback.reason, startedAt: h.rollback.startedAt, serviceRevisionArn: serviceRevisionArn(ctx, s, h.rollback.revisionId) };
  return out;
}

/** A new PRIMARY deployment of a revision. */
export function newDeployment(id: string, revision: ServiceRevisionRecord, desiredCount: number, nowS: number): ServiceDeploymentRecord {
  return {
    id,
    status: 'PRIMARY',
    revisionId: revision.id,
    taskDefinition: revision.taskDefinition,
    desiredCount,
    failedTasks: 0,
    createdAt: nowS,
    updatedAt: nowS,
    rolloutState: 'IN_PROGRESS',
    rolloutStateReason: rolloutReason.inProgress(id),
    judged: [],
    startFailures: 0,
  };
}

/** Keeps the newest history entries and every revision something still refers to. */
export function pruneHistory(s: ServiceRecord): ServiceRecord {
  const history = s.wharf.history.slice(-MAX_HISTORY);
  const used = new Set<string>();
  for (const d of s.wharf.deployments) used.add(d.revisionId);
  for (const h of history) {
    used.add(h.targetRevisionId);
    for (const r of h.sourceRevisionIds) used.add(r);
    if (h.rollback) used.add(h.rollback.revisionId);
  }
  if (s.wharf.lastCompleted) used.add(s.wharf.lastCompleted.revisionId);
  const revisions = s.wharf.revisions.filter((r) => used.has(r.id));
  return { ...s, wharf: { ...s.wharf, history, revisions } };
}

/** `service-deployment/<cluster>/<service>/<id>` or `service-revision/...` -> its parts. */
export function parseServiceChildArn(ref: string, type: 'service-deployment' | 'service-revision'): { cluster: string; service: string; id: string } | undefined {
  const m = /^arn:aws[a-z-]*:ecs:[a-z0-9-]*:\d*:([a-z-]+)\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(ref);
  if (!m || m[1] !== type) return undefined;
  return { cluster: m[2]!, service: m[3]!, id: m[4]! };
}


