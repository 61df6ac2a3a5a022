/**
 * Cloud Map namespaces and operations. On AWS, creating and deleting a namespace is asynchronous
 * (the answer is an OperationId to poll with GetOperation); Wharf does the work at once and records
 * the operation as SUCCESS in the same transaction, so a client that polls sees it finished.
 */
import { WharfError } from '../core/errors';
import { StoreConflictError } from '../store/store';
import type { ControlContext } from './context';
import {
  allNamespaces,
  allOperations,
  cloudMapArn,
  findNamespaceByName,
  invalidInput,
  namespaceKey,
  newHostedZoneId,
  newNamespaceId,
  nowSeconds,
  operationOp,
  requireNamespace,
  servicesOf,
  type CloudMapTag,
  type NamespaceRecord,
  type NamespaceType,
  type OperationRecord,
} from './cloudmap-records';

/** A DNS name: dot-separated labels of letters, digits, `-` and `_`, 63 characters at most each. */
const DNS_NAME = /^(?=.{1,253}\.?$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** Cloud Map's default SOA TTL for a private DNS namespace (seconds). */
const DEFAULT_SOA_TTL = 15;

interface CreateNamespaceInput {
  Name?: string;
  CreatorRequestId?: string;
  Description?: string;
  Vpc?: string;
  Tags?: CloudMapTag[];
  Properties?: { DnsProperties?: { SOA?: { TTL?: number } } };
}

async function createNamespace(ctx: ControlContext, type: NamespaceType, input: CreateNamespaceInput): Promise<{ OperationId: string }> {
  const name = (input.Name ?? '').replace(/\.$/, '');
  if (!name) throw invalidInput('Name is required.');
  if (type === 'DNS_PRIVATE') {
    if (!DNS_NAME.test(name)) throw invalidInput(`Namespace name ${input.Name} is not a valid DNS name.`);
    if (!input.Vpc) throw invalidInput('Vpc is required.');
  }
  const existing = findNamespaceByName(ctx, name);
  if (existing) {
    // A retried request (same CreatorRequestId) is answered with the operation that created it.
    if (input.CreatorRequestId && existing.CreatorRequestId === input.CreatorRequestId) {
      const op = [...ctx.state.sdOperations.children('').values()].map((e) => e.value as OperationRecord).find((o) => o.Type === 'CREATE_NAMESPACE' && o.Targets.NAMESPACE === existing.Id);
      if (op) return { OperationId: op.Id };
    }
    throw alreadyExists(existing);
  }
  const id = newNamespaceId();
  const ns: NamespaceRecord = {
    Id: id,
    Arn: cloudMapArn(ctx, `namespace/${id}`),
    Name: name,
    Type: type,
    Description: input.Description,
    CreateDate: nowSeconds(ctx),
    CreatorRequestId: input.CreatorRequestId,
    Tags: input.Tags ?? [],
  };
  if (type === 'DNS_PRIVATE') {
    ns.Vpc = input.Vpc;
    ns.SoaTtl = input.Properties?.DnsProperties?.SOA?.TTL ?? DEFAULT_SOA_TTL;
    ns.HostedZoneId = newHostedZoneId();
  }
  const { id: opId, op } = operationOp(ctx, 'CREATE_NAMESPACE', { NAMESPACE: id });
  try {
    await ctx.state.waitFor(await ctx.store.txn([{ op: 'create', key: namespaceKey(name), value: ns }, op]));
  } catch (e) {
    if (e instanceof StoreConflictError) {
      const winner = findNamespaceByName(ctx, name);
      if (winner) throw alreadyExists(winner);
    }
    throw e;
  }
  return { OperationId: opId };
}

function alreadyExists(ns: NamespaceRecord): WharfError {
  return new WharfError('NamespaceAlreadyExists', `Namespace with name ${ns.Name} already exists.`, { NamespaceId: ns.Id, CreatorRequestId: ns.CreatorRequestId });
}

/** The wire shape of a namespace (GetNamespace; ListNamespaces without CreatorRequestId). */
export function namespaceView(ctx: ControlContext, ns: NamespaceRecord): Record<string, unknown> {
  const properties: Record<string, unknown> = { HttpProperties: { HttpName: ns.Name } };
  if (ns.Type === 'DNS_PRIVATE') properties.DnsProperties = { HostedZoneId: ns.HostedZoneId, SOA: { TTL: ns.SoaTtl } };
  return {
    Id: ns.Id,
    Arn: ns.Arn,
    ResourceOwner: ctx.partition.accountId,
    Name: ns.Name,
    Type: ns.Type,
    Description: ns.Description,
    ServiceCount: servicesOf(ctx, ns.Id).length,
    Properties: properties,
    CreateDate: ns.CreateDate,
    CreatorRequestId: ns.CreatorRequestId,
  };
}

interface Filter {
  Name?: string;
  Values?: string[];
  Condition?: string;
}

/** Whether a value passes a Cloud Map filter (EQ is the default; IN takes several values). */
export function filterMatches(f: Filter, value: string | undefined, allowed: string[]): boolean {
  const cond = f.Condition ?? 'EQ';
  if (!allowed.includes(cond)) throw invalidInput(`Condition ${cond} is not supported for filter ${f.Name}.`);
  const values = f.Values ?? [];
  if (values.length === 0) throw invalidInput(`Filter ${f.Name} needs at least one value.`);
  if (cond === 'EQ' && values.length !== 1) throw invalidInput(`Filter ${f.Name} with condition EQ takes exactly one value.`);
  if (value === undefined) return false;
  if (cond === 'BEGINS_WITH') return values.some((v) => value.startsWith(v));
  return values.includes(value);
}

/** Pages a sorted list with an opaque token (the index of the next item). */
export function page<T>(items: T[], maxResults: number | undefined, nextToken: string | undefined): { items: T[]; NextToken?: string } {
  const max = maxResults ?? 100;
  let start = 0;
  if (nextToken) {
    start = Number.parseInt(Buffer.from(nextToken, 'base64url').toString(), 10);
    if (!Number.isInteger(start) || start < 0) throw invalidInput('The NextToken is not valid.');
  }
  const slice = items.slice(start, start + max);
  return { items: slice, NextToken: start + max < items.length ? Buffer.from(String(start + max)).toString('base64url') : undefined };
}

function listNamespaces(ctx: ControlContext, input: { MaxResults?: number; NextToken?: string; Filters?: Filter[] }) {
  let list = allNamespaces(ctx);
  for (const f of input.Filters ?? []) {
    if (f.Name === 'TYPE') list = list.filter((ns) => filterMatches(f, ns.Type === 'DNS_PRIVATE' ? 'DNS_PRIVATE' : ns.Type, ['EQ', 'IN']));
    else if (f.Name === 'NAME' || f.Name === 'HTTP_NAME') list = list.filter((ns) => filterMatches(f, ns.Name, ['EQ', 'BEGINS_WITH']));
    else if (f.Name === 'RESOURCE_OWNER') list = list.filter((ns) => filterMatches(f, ctx.partition.accountId, ['EQ']));
    else throw invalidInput(`Filter ${f.Name} is not supported.`);
  }
  const p = page(list, input.MaxResults, input.NextToken);
  return {
    Namespaces: p.items.map((ns) => {
      const { CreatorRequestId: _omit, ...summary } = namespaceView(ctx, ns);
      return summary;
    }),
    NextToken: p.NextToken,
  };
}

async function deleteNamespace(ctx: ControlContext, input: { Id?: string }): Promise<{ OperationId: string }> {
  for (let attempt = 0; ; attempt++) {
    const { ns, revision } = requireNamespace(ctx, input.Id ?? '');
    if (servicesOf(ctx, ns.Id).length > 0) {
      throw new WharfError('ResourceInUse', `Namespace ${ns.Id} has associated services and cannot be deleted. Delete the services first.`);
    }
    const { id: opId, op } = operationOp(ctx, 'DELETE_NAMESPACE', { NAMESPACE: ns.Id });
    try {
      // CreateService rewrites the namespace record in its transaction, so a service created since
      // the check above makes this delete conflict rather than orphan the service.
      await ctx.state.waitFor(await ctx.store.txn([{ op: 'delete', key: namespaceKey(ns.Name), expectedRevision: revision }, op]));
      return { OperationId: opId };
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 10) throw e;
      await ctx.state.waitFor(await ctx.store.revision());
    }
  }
}

function getOperation(ctx: ControlContext, input: { OperationId?: string }) {
  const e = ctx.state.sdOperations.get('', input.OperationId ?? '');
  if (!e) throw new WharfError('OperationNotFound', `Operation not found: ${input.OperationId}`);
  const o = e.value as OperationRecord;
  return { Operation: { Id: o.Id, OwnerAccount: ctx.partition.accountId, Type: o.Type, Status: o.Status, CreateDate: o.CreateDate, UpdateDate: o.UpdateDate, Targets: o.Targets } };
}

function listOperations(ctx: ControlContext, input: { MaxResults?: number; NextToken?: string; Filters?: Filter[] }) {
  let ops = allOperations(ctx);
  for (const f of input.Filters ?? []) {
    if (f.Name === 'TYPE') ops = ops.filter((o) => filterMatches(f, o.Type, ['EQ', 'IN']));
    else if (f.Name === 'STATUS') ops = ops.filter((o) => filterMatches(f, o.Status, ['EQ', 'IN']));
    else if (f.Name === 'NAMESPACE_ID') ops = ops.filter((o) => filterMatches(f, o.Targets.NAMESPACE, ['EQ']));
    else if (f.Name === 'SERVICE_ID') ops = ops.filter((o) => filterMatches(f, o.Targets.SERVICE, ['EQ']));
    else throw invalidInput(`Filter ${f.Name} is not supported.`);
  }
  const p = page(ops, input.MaxResults, input.NextToken);
  return { Operations: p.items.map((o) => ({ Id: o.Id, Status: o.Status })), NextToken: p.NextToken };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function namespaceHandlers(ctx: ControlContext): Record<string, (input: any) => Promise<unknown>> {
  return {
    CreatePrivateDnsNamespace: (i) => createNamespace(ctx, 'DNS_PRIVATE', i ?? {}),
    CreateHttpNamespace: (i) => createNamespace(ctx, 'HTTP', i ?? {}),
    GetNamespace: async (i) => ({ Namespace: namespaceView(ctx, requireNamespace(ctx, i?.Id ?? '').ns) }),
    ListNamespaces: async (i) => listNamespaces(ctx, i ?? {}),
    DeleteNamespace: (i) => deleteNamespace(ctx, i ?? {}),
    GetOperation: async (i) => getOperation(ctx, i ?? {}),
    ListOperations: async (i) => listOperations(ctx, i ?? {}),
  };
}
