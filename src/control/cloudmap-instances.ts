/**
 * Cloud Map instances: what is registered under a service (an IP and port for DNS services,
 * any attributes for HTTP ones), their health, and DiscoverInstances. Register and deregister are
 * asynchronous on AWS; Wharf records the operation as SUCCESS in the same transaction, and counts
 * them in the service's InstancesRevision (DiscoverInstancesRevision), so they rewrite the service.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { WharfError } from '../core/errors';
import { StoreConflictError } from '../store/store';
import type { ControlContext } from './context';
import { page } from './cloudmap-namespaces';
import {
  findInstance,
  findNamespaceByName,
  instanceKey,
  instanceNotFound,
  instancesOf,
  invalidInput,
  operationOp,
  requireService,
  serviceKey,
  servicesOf,
  type CloudMapInstanceRecord,
  type CloudMapServiceRecord,
  type NamespaceRecord,
} from './cloudmap-records';

/** The attributes each DNS record type needs (Cloud Map's RegisterInstance rules). */
function checkAttributes(svc: CloudMapServiceRecord, attrs: Record<string, string>): void {
  const ipv4 = attrs.AWS_INSTANCE_IPV4;
  const ipv6 = attrs.AWS_INSTANCE_IPV6;
  const port = attrs.AWS_INSTANCE_PORT;
  if (ipv4 !== undefined && !isIPv4(ipv4)) throw invalidInput(`AWS_INSTANCE_IPV4 ${ipv4} is not a valid IPv4 address.`);
  if (ipv6 !== undefined && !isIPv6(ipv6)) throw invalidInput(`AWS_INSTANCE_IPV6 ${ipv6} is not a valid IPv6 address.`);
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) throw invalidInput(`AWS_INSTANCE_PORT ${port} is not a valid port (1-65535).`);
  const health = attrs.AWS_INIT_HEALTH_STATUS;
  if (health !== undefined) {
    if (health !== 'HEALTHY' && health !== 'UNHEALTHY') throw invalidInput('AWS_INIT_HEALTH_STATUS must be HEALTHY or UNHEALTHY.');
    if (!svc.HealthCheckCustomConfig) throw invalidInput('AWS_INIT_HEALTH_STATUS can be used only with a service that has HealthCheckCustomConfig.');
  }
  for (const r of svc.DnsConfig?.DnsRecords ?? []) {
    if (r.Type === 'A' && ipv4 === undefined) throw invalidInput('AWS_INSTANCE_IPV4 is required: the service has an A record.');
    if (r.Type === 'AAAA' && ipv6 === undefined) throw invalidInput('AWS_INSTANCE_IPV6 is required: the service has an AAAA record.');
    if (r.Type === 'CNAME' && attrs.AWS_INSTANCE_CNAME === undefined) throw invalidInput('AWS_INSTANCE_CNAME is required: the service has a CNAME record.');
    if (r.Type === 'SRV') {
      if (port === undefined) throw invalidInput('AWS_INSTANCE_PORT is required: the service has an SRV record.');
      if (ipv4 === undefined && ipv6 === undefined) throw invalidInput('AWS_INSTANCE_IPV4 or AWS_INSTANCE_IPV6 is required: the service has an SRV record.');
    }
  }
}

async function registerInstance(ctx: ControlContext, input: { ServiceId?: string; InstanceId?: string; CreatorRequestId?: string; Attributes?: Record<string, string> }) {
  const instanceId = input.InstanceId ?? '';
  const attrs = input.Attributes ?? {};
  for (let attempt = 0; ; attempt++) {
    const { svc, revision } = requireService(ctx, input.ServiceId ?? '');
    checkAttributes(svc, attrs);
    const existing = findInstance(ctx, svc.Id, instanceId);
    const inst: CloudMapInstanceRecord = {
      Id: instanceId,
      ServiceId: svc.Id,
      Attributes: { ...attrs },
      CreatorRequestId: input.CreatorRequestId,
      // Re-registering keeps the health a custom health check gave; a new instance starts with
      // AWS_INIT_HEALTH_STATUS (HEALTHY by default).
      HealthStatus: existing?.inst.HealthStatus ?? (attrs.AWS_INIT_HEALTH_STATUS === 'UNHEALTHY' ? 'UNHEALTHY' : 'HEALTHY'),
    };
    const { id: opId, op } = operationOp(ctx, 'REGISTER_INSTANCE', { INSTANCE: instanceId, SERVICE: svc.Id });
    try {
      await ctx.state.waitFor(await ctx.store.txn([
        // Rewriting the service makes a racing DeleteService conflict.
        { op: 'update', key: serviceKey(svc.NamespaceId, svc.Name), value: nextRevision(svc), expectedRevision: revision },
        { op: 'put', key: instanceKey(svc.Id, instanceId), value: inst },
        op,
      ]));
      return { OperationId: opId };
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
      await ctx.state.waitFor(await ctx.store.revision());
    }
  }
}

/** The service as a registration or deregistration leaves it: one more InstancesRevision. */
const nextRevision = (svc: CloudMapServiceRecord): CloudMapServiceRecord => ({ ...svc, InstancesRevision: (svc.InstancesRevision ?? 0) + 1 });

async function deregisterInstance(ctx: ControlContext, input: { ServiceId?: string; InstanceId?: string }) {
  const instanceId = input.InstanceId ?? '';
  for (let attempt = 0; ; attempt++) {
    const { svc, revision } = requireService(ctx, input.ServiceId ?? '');
    const found = findInstance(ctx, svc.Id, instanceId);
    if (!found) throw instanceNotFound(instanceId, svc.Id);
    const { id: opId, op } = operationOp(ctx, 'DEREGISTER_INSTANCE', { INSTANCE: instanceId, SERVICE: svc.Id });
    try {
      await ctx.state.waitFor(await ctx.store.txn([
        { op: 'update', key: serviceKey(svc.NamespaceId, svc.Name), value: nextRevision(svc), expectedRevision: revision },
        { op: 'delete', key: instanceKey(svc.Id, instanceId), expectedRevision: found.revision },
        op,
      ]));
      return { OperationId: opId };
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
      await ctx.state.waitFor(await ctx.store.revision());
    }
  }
}

function listInstances(ctx: ControlContext, input: { ServiceId?: string; MaxResults?: number; NextToken?: string }) {
  const { svc } = requireService(ctx, input.ServiceId ?? '');
  const all = instancesOf(ctx, svc.Id).map((e) => e.inst).sort((a, b) => (a.Id < b.Id ? -1 : a.Id > b.Id ? 1 : 0));
  const p = page(all, input.MaxResults, input.NextToken);
  return { ResourceOwner: ctx.partition.accountId, Instances: p.items.map((i) => ({ Id: i.Id, Attributes: i.Attributes, CreatedByAccount: ctx.partition.accountId })), NextToken: p.NextToken };
}

function getInstance(ctx: ControlContext, input: { ServiceId?: string; InstanceId?: string }) {
  const { svc } = requireService(ctx, input.ServiceId ?? '');
  const found = findInstance(ctx, svc.Id, input.InstanceId ?? '');
  if (!found) throw instanceNotFound(input.InstanceId ?? '', svc.Id);
  const i = found.inst;
  return { ResourceOwner: ctx.partition.accountId, Instance: { Id: i.Id, CreatorRequestId: i.CreatorRequestId, Attributes: i.Attributes, CreatedByAccount: ctx.partition.accountId } };
}

async function updateInstanceCustomHealthStatus(ctx: ControlContext, input: { ServiceId?: string; InstanceId?: string; Status?: 'HEALTHY' | 'UNHEALTHY' }) {
  for (let attempt = 0; ; attempt++) {
    const { svc } = requireService(ctx, input.ServiceId ?? '');
    if (!svc.HealthCheckCustomConfig) throw new WharfError('CustomHealthNotFound', `Service ${svc.Id} has no custom health check (HealthCheckCustomConfig).`);
    const found = findInstance(ctx, svc.Id, input.InstanceId ?? '');
    if (!found) throw instanceNotFound(input.InstanceId ?? '', svc.Id);
    if (found.inst.HealthStatus === input.Status) return {};
    try {
      await ctx.state.waitFor(await ctx.store.update(instanceKey(svc.Id, found.inst.Id), { ...found.inst, HealthStatus: input.Status }, found.revision));
      return {};
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
      await ctx.state.waitFor(await ctx.store.revision());
    }
  }
}

/** The instances a HealthStatus filter of DiscoverInstances keeps (HEALTHY when absent). */
export function byHealth<T extends { HealthStatus: string }>(all: T[], filter: string | undefined): T[] {
  const healthy = all.filter((i) => i.HealthStatus === 'HEALTHY');
  switch (filter ?? 'HEALTHY') {
    case 'HEALTHY': return healthy;
    case 'UNHEALTHY': return all.filter((i) => i.HealthStatus === 'UNHEALTHY');
    case 'ALL': return all;
    default: return healthy.length > 0 ? healthy : all; // HEALTHY_OR_ELSE_ALL
  }
}

/**
 * GetInstancesHealthStatus: the health of the instances named (all of them when none are, by id,
 * 100 a page). An instance's health is known only where Wharf keeps one, a custom health check
 * (UpdateInstanceCustomHealthStatus); other services' instances are UNKNOWN (Wharf runs no Route 53
 * health checks). An id that is not registered is InstanceNotFound.
 */
function getInstancesHealthStatus(ctx: ControlContext, input: { ServiceId?: string; Instances?: string[]; MaxResults?: number; NextToken?: string }) {
  const { svc } = requireService(ctx, input.ServiceId ?? '');
  const all = instancesOf(ctx, svc.Id).map((e) => e.inst).sort((a, b) => (a.Id < b.Id ? -1 : a.Id > b.Id ? 1 : 0));
  let chosen = all;
  if (input.Instances) {
    const byId = new Map(all.map((i) => [i.Id, i]));
    chosen = [...new Set(input.Instances)].map((id) => {
      const inst = byId.get(id);
      if (!inst) throw instanceNotFound(id, svc.Id);
      return inst;
    });
  }
  const p = page(chosen, input.MaxResults, input.NextToken);
  const health = (i: CloudMapInstanceRecord) => (svc.HealthCheckCustomConfig ? i.HealthStatus : 'UNKNOWN');
  return { Status: Object.fromEntries(p.items.map((i) => [i.Id, health(i)])), NextToken: p.NextToken };
}

/** The service DiscoverInstances and DiscoverInstancesRevision name (namespace by its HttpName). */
function discoveredService(ctx: ControlContext, namespaceName: string | undefined, serviceName: string | undefined): { ns: NamespaceRecord; svc: CloudMapServiceRecord } {
  const ns = findNamespaceByName(ctx, namespaceName ?? '');
  if (!ns) throw new WharfError('NamespaceNotFound', `Namespace not found: ${namespaceName}`);
  const svc = servicesOf(ctx, ns.Id).find((s) => s.Name.toLowerCase() === (serviceName ?? '').toLowerCase());
  if (!svc) throw new WharfError('ServiceNotFound', `Service not found: ${serviceName}`);
  return { ns, svc };
}

function discoverInstances(ctx: ControlContext, input: { NamespaceName?: string; ServiceName?: string; MaxResults?: number; QueryParameters?: Record<string, string>; OptionalParameters?: Record<string, string>; HealthStatus?: string }) {
  const { ns, svc } = discoveredService(ctx, input.NamespaceName, input.ServiceName);
  const entries = instancesOf(ctx, svc.Id);
  const matches = (i: CloudMapInstanceRecord, params: Record<string, string>) => Object.entries(params).every(([k, v]) => i.Attributes[k] === v);
  let list = byHealth(entries.map((e) => e.inst), input.HealthStatus).filter((i) => matches(i, input.QueryParameters ?? {}));
  // Optional parameters narrow the answer only when some instance matches them.
  const optional = list.filter((i) => matches(i, input.OptionalParameters ?? {}));
  if (optional.length > 0) list = optional;
  list = list.slice(0, input.MaxResults ?? 100);
  return {
    Instances: list.map((i) => ({ InstanceId: i.Id, NamespaceName: ns.Name, ServiceName: svc.Name, HealthStatus: i.HealthStatus, Attributes: i.Attributes })),
    InstancesRevision: svc.InstancesRevision ?? 0,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function instanceHandlers(ctx: ControlContext): Record<string, (input: any) => Promise<unknown>> {
  return {
    RegisterInstance: (i) => registerInstance(ctx, i ?? {}),
    DeregisterInstance: (i) => deregisterInstance(ctx, i ?? {}),
    ListInstances: async (i) => listInstances(ctx, i ?? {}),
    GetInstance: async (i) => getInstance(ctx, i ?? {}),
    DiscoverInstances: async (i) => discoverInstances(ctx, i ?? {}),
    DiscoverInstancesRevision: async (i) => ({ InstancesRevision: discoveredService(ctx, i?.NamespaceName, i?.ServiceName).svc.InstancesRevision ?? 0 }),
    GetInstancesHealthStatus: async (i) => getInstancesHealthStatus(ctx, i ?? {}),
    UpdateInstanceCustomHealthStatus: (i) => updateInstanceCustomHealthStatus(ctx, i ?? {}),
  };
}
