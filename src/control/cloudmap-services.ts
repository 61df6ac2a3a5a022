/**
 * Cloud Map services: a name inside a namespace, with the DNS records its instances get
 * (DnsConfig) and how their health is decided. Unlike namespaces, CreateService and DeleteService
 * are synchronous on AWS too; UpdateService is asynchronous there (an UPDATE_SERVICE operation),
 * and done at once here, its operation written SUCCESS in the same transaction.
 */
import { WharfError } from '../core/errors';
import { StoreConflictError } from '../store/store';
import type { ControlContext } from './context';
import { filterMatches, page } from './cloudmap-namespaces';
import {
  allServices,
  cloudMapArn,
  instancesOf,
  invalidInput,
  namespaceKey,
  newServiceId,
  nowSeconds,
  operationOp,
  requireNamespace,
  requireService,
  serviceKey,
  servicesOf,
  type CloudMapServiceRecord,
  type CloudMapTag,
  type DnsRecordSetting,
  type NamespaceRecord,
} from './cloudmap-records';

interface CreateServiceInput {
  Name?: string;
  NamespaceId?: string;
  CreatorRequestId?: string;
  Description?: string;
  DnsConfig?: { NamespaceId?: string; RoutingPolicy?: 'MULTIVALUE' | 'WEIGHTED'; DnsRecords?: DnsRecordSetting[] };
  HealthCheckConfig?: CloudMapServiceRecord['HealthCheckConfig'];
  HealthCheckCustomConfig?: CloudMapServiceRecord['HealthCheckCustomConfig'];
  Tags?: CloudMapTag[];
  Type?: 'HTTP';
}

/** The DnsConfig rules Cloud Map documents for CreateService. */
function checkDnsConfig(ns: NamespaceRecord, input: CreateServiceInput): CloudMapServiceRecord['DnsConfig'] {
  const dc = input.DnsConfig;
  if (!dc) return undefined;
  if (ns.Type === 'HTTP') throw invalidInput('DnsConfig is not allowed for a service in an HTTP namespace.');
  if (input.Type === 'HTTP') throw invalidInput('DnsConfig is not allowed for a service of type HTTP.');
  const records = dc.DnsRecords ?? [];
  if (records.length === 0) throw invalidInput('DnsConfig.DnsRecords must name at least one record.');
  const types = records.map((r) => r.Type);
  if (new Set(types).size !== types.length) throw invalidInput('DnsConfig.DnsRecords may name each record type once.');
  const routing = dc.RoutingPolicy ?? 'MULTIVALUE';
  if (types.includes('CNAME')) {
    if (types.length > 1) throw invalidInput('A CNAME record cannot be combined with other record types.');
    if (routing !== 'WEIGHTED') throw invalidInput('A CNAME record requires the WEIGHTED routing policy.');
    if (input.HealthCheckConfig) throw invalidInput('A health check cannot be used with a CNAME record.');
  }
  if (types.includes('SRV') && types.includes('CNAME')) throw invalidInput('SRV and CNAME records cannot be combined.');
  return { RoutingPolicy: routing, DnsRecords: records.map((r) => ({ Type: r.Type, TTL: r.TTL })) };
}

async function createService(ctx: ControlContext, input: CreateServiceInput) {
  const name = input.Name ?? '';
  const nsId = input.NamespaceId ?? input.DnsConfig?.NamespaceId;
  if (!nsId) throw invalidInput('NamespaceId is required.');
  if (input.HealthCheckConfig && input.HealthCheckCustomConfig) throw invalidInput('HealthCheckConfig and HealthCheckCustomConfig cannot both be specified.');
  for (let attempt = 0; ; attempt++) {
    const { ns, revision: nsRevision } = requireNamespace(ctx, nsId);
    if (input.HealthCheckConfig && ns.Type === 'DNS_PRIVATE') throw invalidInput('HealthCheckConfig is not supported in a private DNS namespace; use HealthCheckCustomConfig.');
    const dnsConfig = checkDnsConfig(ns, input);
    const existing = servicesOf(ctx, ns.Id).find((s) => s.Name.toLowerCase() === name.toLowerCase());
    if (existing) {
      if (input.CreatorRequestId && existing.CreatorRequestId === input.CreatorRequestId) return { Service: serviceView(ctx, existing) };
      throw alreadyExists(existing);
    }
    const id = newServiceId();
    const svc: CloudMapServiceRecord = {
      Id: id,
      Arn: cloudMapArn(ctx, `service/${id}`),
      Name: name,
      NamespaceId: ns.Id,
      Description: input.Description,
      Type: dnsConfig ? 'DNS_HTTP' : 'HTTP',
      DnsConfig: dnsConfig,
      HealthCheckConfig: input.HealthCheckConfig,
      HealthCheckCustomConfig: input.HealthCheckCustomConfig && { FailureThreshold: input.HealthCheckCustomConfig.FailureThreshold ?? 1 },
      CreateDate: nowSeconds(ctx),
      CreatorRequestId: input.CreatorRequestId,
      Tags: input.Tags ?? [],
    };
    try {
      // Rewriting the namespace (unchanged) makes a racing DeleteNamespace conflict.
      await ctx.state.waitFor(await ctx.store.txn([
        { op: 'update', key: namespaceKey(ns.Name), value: ns, expectedRevision: nsRevision },
        { op: 'create', key: serviceKey(ns.Id, name), value: svc },
      ]));
      return { Service: serviceView(ctx, svc) };
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 10) throw e;
      await ctx.state.waitFor(await ctx.store.revision());
    }
  }
}

interface UpdateServiceInput {
  Id?: string;
  Service?: {
    Description?: string;
    DnsConfig?: { DnsRecords?: DnsRecordSetting[] };
    HealthCheckConfig?: CloudMapServiceRecord['HealthCheckConfig'];
  };
}

/** Record types as Cloud Map lists them in its messages: `[A, SRV]`. */
const typeList = (records: { Type: string }[]) => `[${records.map((r) => r.Type).join(', ')}]`;

/**
 * UpdateService changes what Cloud Map lets it change: the TTLs of the records the service has
 * (their types cannot change: delete and create the service for that), and its description. A
 * service keeps its HealthCheckCustomConfig (UpdateService cannot add, change or remove one);
 * HealthCheckConfig, Route 53's checks, has no place in a private DNS namespace, as in
 * CreateService. A member left out keeps its value. Services of HTTP namespaces cannot be updated.
 * The DNS server reads the new TTLs with its next question.
 */
async function updateService(ctx: ControlContext, input: UpdateServiceInput) {
  const change = input.Service ?? {};
  for (let attempt = 0; ; attempt++) {
    const { svc, revision } = requireService(ctx, input.Id ?? '');
    const { ns } = requireNamespace(ctx, svc.NamespaceId);
    if (ns.Type === 'HTTP') throw invalidInput(`Service ${svc.Id} belongs to the HTTP namespace ${ns.Id}: the settings of a service in an HTTP namespace cannot be updated.`);
    if (change.HealthCheckConfig) throw invalidInput('HealthCheckConfig is not supported in a private DNS namespace; use HealthCheckCustomConfig.');
    let dnsConfig = svc.DnsConfig;
    if (change.DnsConfig) {
      const records = change.DnsConfig.DnsRecords ?? [];
      const existing = svc.DnsConfig?.DnsRecords ?? [];
      const sorted = (list: { Type: string }[]) => list.map((r) => r.Type).sort().join(',');
      if (sorted(records) !== sorted(existing)) {
        throw invalidInput(`The record types in the request must be the same as those present in the existing service. Records in the existing service are ${typeList(existing)}, but the records in the request are ${typeList(records)}. The record types of a service cannot be changed.`);
      }
      // Same types as the service's, which names each once: TTLs change, nothing else.
      dnsConfig = { RoutingPolicy: svc.DnsConfig!.RoutingPolicy, DnsRecords: existing.map((r) => ({ Type: r.Type, TTL: records.find((x) => x.Type === r.Type)!.TTL })) };
    }
    const updated: CloudMapServiceRecord = { ...svc, DnsConfig: dnsConfig, Description: change.Description ?? svc.Description };
    const { id: opId, op } = operationOp(ctx, 'UPDATE_SERVICE', { SERVICE: svc.Id });
    try {
      await ctx.state.waitFor(await ctx.store.txn([{ op: 'update', key: serviceKey(svc.NamespaceId, svc.Name), value: updated, expectedRevision: revision }, op]));
      return { OperationId: opId };
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
      await ctx.state.waitFor(await ctx.store.revision());
    }
  }
}

function alreadyExists(s: CloudMapServiceRecord): WharfError {
  return new WharfError('ServiceAlreadyExists', `Service with name ${s.Name} already exists in namespace ${s.NamespaceId}.`, { ServiceId: s.Id, ServiceArn: s.Arn, CreatorRequestId: s.CreatorRequestId });
}

export function serviceView(ctx: ControlContext, s: CloudMapServiceRecord): Record<string, unknown> {
  return {
    Id: s.Id,
    Arn: s.Arn,
    ResourceOwner: ctx.partition.accountId,
    Name: s.Name,
    NamespaceId: s.NamespaceId,
    Description: s.Description,
    InstanceCount: instancesOf(ctx, s.Id).length,
    DnsConfig: s.DnsConfig,
    Type: s.Type,
    HealthCheckConfig: s.HealthCheckConfig,
    HealthCheckCustomConfig: s.HealthCheckCustomConfig,
    CreateDate: s.CreateDate,
    CreatorRequestId: s.CreatorRequestId,
    CreatedByAccount: ctx.partition.accountId,
  };
}

function listServices(ctx: ControlContext, input: { MaxResults?: number; NextToken?: string; Filters?: { Name?: string; Values?: string[]; Condition?: string }[] }) {
  let list = allServices(ctx);
  for (const f of input.Filters ?? []) {
    if (f.Name === 'NAMESPACE_ID') list = list.filter((s) => filterMatches(f, s.NamespaceId, ['EQ', 'IN']));
    else if (f.Name === 'RESOURCE_OWNER') list = list.filter(() => filterMatches(f, ctx.partition.accountId, ['EQ']));
    else throw invalidInput(`Filter ${f.Name} is not supported.`);
  }
  const p = page(list, input.MaxResults, input.NextToken);
  return {
    Services: p.items.map((s) => {
      const { CreatorRequestId: _a, NamespaceId: _b, ...summary } = serviceView(ctx, s);
      return summary;
    }),
    NextToken: p.NextToken,
  };
}

async function deleteService(ctx: ControlContext, input: { Id?: string }) {
  const { svc, revision } = requireService(ctx, input.Id ?? '');
  if (instancesOf(ctx, svc.Id).length > 0) {
    throw new WharfError('ResourceInUse', `Service ${svc.Id} has registered instances and cannot be deleted. Deregister the instances first.`);
  }
  const { ns } = requireNamespace(ctx, svc.NamespaceId);
  try {
    // RegisterInstance rewrites the service record, so an instance registered since the check
    // above makes this conflict.
    await ctx.state.waitFor(await ctx.store.delete(serviceKey(ns.Id, svc.Name), revision));
  } catch (e) {
    if (e instanceof StoreConflictError) throw new WharfError('ResourceInUse', `Service ${svc.Id} changed while it was being deleted; try again.`);
    throw e;
  }
  return {};
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function serviceDiscoveryServiceHandlers(ctx: ControlContext): Record<string, (input: any) => Promise<unknown>> {
  return {
    CreateService: (i) => createService(ctx, i ?? {}),
    GetService: async (i) => ({ Service: serviceView(ctx, requireService(ctx, i?.Id ?? '').svc) }),
    ListServices: async (i) => listServices(ctx, i ?? {}),
    DeleteService: (i) => deleteService(ctx, i ?? {}),
    UpdateService: (i) => updateService(ctx, i ?? {}),
  };
}
