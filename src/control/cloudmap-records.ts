/**
 * AWS Cloud Map (service discovery) as Wharf keeps it: the records, their keys, lookups through
 * the state cache, ids and ARNs, and Cloud Map's own errors. The operations are in
 * cloudmap-namespaces.ts, cloudmap-services.ts and cloudmap-instances.ts; the DNS server that
 * answers for DNS namespaces is in src/discovery/.
 *
 * Keys (per region, like everything else):
 *   sdnamespaces/<url-encoded lowercase name>            one per name, so a duplicate name fails
 *                                                         the create atomically
 *   sdservices/<namespace id>/<url-encoded lowercase name> one per name within a namespace
 *   sdinstances/<service id>/<url-encoded instance id>
 *   sdoperations/<operation id>
 * Lookups by id scan the (small) tables in the cache.
 */
import { randomBytes } from 'node:crypto';
import { WharfError } from '../core/errors';
import { partitionOf } from '../core/regions';
import { epochSeconds } from '../lib';
import type { ControlContext } from './context';

export const CLOUDMAP_TARGET_PREFIX = 'Route53AutoNaming_v20170314';
export const CLOUDMAP_SIGNING_NAME = 'servicediscovery';

export interface CloudMapTag {
  Key: string;
  Value: string;
}

export type NamespaceType = 'DNS_PRIVATE' | 'HTTP';

export interface NamespaceRecord {
  Id: string;
  Arn: string;
  Name: string;
  Type: NamespaceType;
  Description?: string;
  /** Private DNS only: the SOA TTL and the VPC (not checked against VPC records). */
  SoaTtl?: number;
  Vpc?: string;
  HostedZoneId?: string;
  CreateDate: number;
  CreatorRequestId?: string;
  Tags: CloudMapTag[];
}

export interface DnsRecordSetting {
  Type: 'A' | 'AAAA' | 'SRV' | 'CNAME';
  TTL: number;
}

export interface CloudMapServiceRecord {
  Id: string;
  Arn: string;
  Name: string;
  NamespaceId: string;
  Description?: string;
  Type: 'HTTP' | 'DNS_HTTP' | 'DNS';
  DnsConfig?: { RoutingPolicy: 'MULTIVALUE' | 'WEIGHTED'; DnsRecords: DnsRecordSetting[] };
  HealthCheckConfig?: { Type: string; ResourcePath?: string; FailureThreshold?: number };
  HealthCheckCustomConfig?: { FailureThreshold?: number };
  CreateDate: number;
  CreatorRequestId?: string;
  Tags: CloudMapTag[];
  /**
   * DiscoverInstances' InstancesRevision: one more for every RegisterInstance and
   * DeregisterInstance of the service (written in their transaction), unchanged by health changes,
   * as Cloud Map documents it.
   */
  InstancesRevision?: number;
}

export interface CloudMapInstanceRecord {
  Id: string;
  ServiceId: string;
  Attributes: Record<string, string>;
  CreatorRequestId?: string;
  /** HEALTHY unless the service has a custom health check and the instance was set UNHEALTHY. */
  HealthStatus: 'HEALTHY' | 'UNHEALTHY';
}

export interface OperationRecord {
  Id: string;
  Type: 'CREATE_NAMESPACE' | 'DELETE_NAMESPACE' | 'UPDATE_SERVICE' | 'REGISTER_INSTANCE' | 'DEREGISTER_INSTANCE';
  Status: 'SUCCESS';
  CreateDate: number;
  UpdateDate: number;
  Targets: Partial<Record<'NAMESPACE' | 'SERVICE' | 'INSTANCE', string>>;
}

export const namespaceKey = (name: string) => `sdnamespaces/${encodeURIComponent(name.toLowerCase())}`;
export const serviceKey = (namespaceId: string, name: string) => `sdservices/${namespaceId}/${encodeURIComponent(name.toLowerCase())}`;
export const instanceKey = (serviceId: string, instanceId: string) => `sdinstances/${serviceId}/${encodeURIComponent(instanceId)}`;
export const operationKey = (id: string) => `sdoperations/${id}`;

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
function randomAlnum(n: number, alphabet = ALNUM): string {
  return [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** `ns-` and `srv-` ids: 16 lowercase letters and digits, as Cloud Map's. */
export const newNamespaceId = () => `ns-${randomAlnum(16)}`;
export const newServiceId = () => `srv-${randomAlnum(16)}`;
/** Operation ids look like Cloud Map's: 32 characters, a dash, 8 more. */
export const newOperationId = () => `${randomAlnum(32)}-${randomAlnum(8)}`;
/** Route 53 hosted zone ids: `Z` and uppercase letters and digits. */
export const newHostedZoneId = () => `Z${randomAlnum(20, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')}`;

export function cloudMapArn(ctx: ControlContext, resource: string): string {
  return `arn:${partitionOf(ctx.partition.region)}:servicediscovery:${ctx.partition.region}:${ctx.partition.accountId}:${resource}`;
}

export const nowSeconds = (ctx: ControlContext) => epochSeconds(ctx.clock.now());

export const invalidInput = (message: string) => new WharfError('InvalidInput', message);

export function namespaceNotFound(id: string): WharfError {
  return new WharfError('NamespaceNotFound', `Namespace not found: ${id}`);
}
export function serviceNotFound(id: string): WharfError {
  return new WharfError('ServiceNotFound', `Service not found: ${id}`);
}
export function instanceNotFound(id: string, serviceId: string): WharfError {
  return new WharfError('InstanceNotFound', `Instance ${id} not found in service ${serviceId}`);
}

/** `ns-…` or a namespace ARN (Cloud Map accepts both wherever it takes an Id). */
function idOf(idOrArn: string, kind: 'namespace' | 'service'): string {
  const m = /^arn:[^:]+:servicediscovery:[^:]*:[^:]*:(namespace|service)\/(.+)$/.exec(idOrArn);
  if (!m) return idOrArn;
  return m[1] === kind ? m[2]! : '';
}

/** Entries in the order they were created (the store's create revision), which lists follow. */
function byCreation<T>(entries: Iterable<{ value: unknown; createRevision: number }>): T[] {
  return [...entries].sort((a, b) => a.createRevision - b.createRevision).map((e) => e.value as T);
}

export function allNamespaces(ctx: ControlContext): NamespaceRecord[] {
  return byCreation(ctx.state.sdNamespaces.children('').values());
}

export function allOperations(ctx: ControlContext): OperationRecord[] {
  return byCreation(ctx.state.sdOperations.children('').values());
}

export function findNamespace(ctx: ControlContext, idOrArn: string): { ns: NamespaceRecord; revision: number } | undefined {
  const id = idOf(idOrArn, 'namespace');
  for (const e of ctx.state.sdNamespaces.children('').values()) {
    const ns = e.value as NamespaceRecord;
    if (ns.Id === id) return { ns, revision: e.modRevision };
  }
  return undefined;
}

export function findNamespaceByName(ctx: ControlContext, name: string): NamespaceRecord | undefined {
  return ctx.state.sdNamespaces.get('', encodeURIComponent(name.toLowerCase()))?.value as NamespaceRecord | undefined;
}

export function requireNamespace(ctx: ControlContext, idOrArn: string): { ns: NamespaceRecord; revision: number } {
  const found = findNamespace(ctx, idOrArn);
  if (!found) throw namespaceNotFound(idOrArn);
  return found;
}

export function servicesOf(ctx: ControlContext, namespaceId: string): CloudMapServiceRecord[] {
  return [...ctx.state.sdServices.children(namespaceId).values()].map((e) => e.value as CloudMapServiceRecord);
}

export function allServices(ctx: ControlContext): CloudMapServiceRecord[] {
  return byCreation(ctx.state.sdServices.all());
}

export function findService(ctx: ControlContext, idOrArn: string): { svc: CloudMapServiceRecord; revision: number } | undefined {
  const id = idOf(idOrArn, 'service');
  for (const e of ctx.state.sdServices.all()) {
    const svc = e.value as CloudMapServiceRecord;
    if (svc.Id === id) return { svc, revision: e.modRevision };
  }
  return undefined;
}

export function requireService(ctx: ControlContext, idOrArn: string): { svc: CloudMapServiceRecord; revision: number } {
  const found = findService(ctx, idOrArn);
  if (!found) throw serviceNotFound(idOrArn);
  return found;
}

export function instancesOf(ctx: ControlContext, serviceId: string): { inst: CloudMapInstanceRecord; revision: number }[] {
  return [...ctx.state.sdInstances.children(serviceId).values()].map((e) => ({ inst: e.value as CloudMapInstanceRecord, revision: e.modRevision }));
}

export function findInstance(ctx: ControlContext, serviceId: string, instanceId: string): { inst: CloudMapInstanceRecord; revision: number } | undefined {
  const e = ctx.state.sdInstances.get(serviceId, encodeURIComponent(instanceId));
  return e ? { inst: e.value as CloudMapInstanceRecord, revision: e.modRevision } : undefined;
}

/** A finished operation, written in the same transaction as the change it reports. */
export function operationOp(ctx: ControlContext, type: OperationRecord['Type'], targets: OperationRecord['Targets']): { id: string; op: { op: 'create'; key: string; value: OperationRecord } } {
  const now = nowSeconds(ctx);
  const id = newOperationId();
  return { id, op: { op: 'create', key: operationKey(id), value: { Id: id, Type: type, Status: 'SUCCESS', CreateDate: now, UpdateDate: now, Targets: targets } } };
}
