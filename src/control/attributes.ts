/**
 * Container instance attributes: the naming rules and the custom-attribute limit (shared with
 * RegisterContainerInstance), and PutAttributes, DeleteAttributes, ListAttributes.
 *
 * Attributes live on the instance record (`attributes`, as DescribeContainerInstances shows
 * them). Built-in ones (`ecs.*`, `com.amazonaws.ecs.*`) come from the agent; every other name is
 * custom, and an instance holds at most 10 custom attributes.
 */
import { idOf, parseArn } from '../core/arn';
import { WharfError, invalidParameter } from '../core/errors';
import { keys, type ContainerInstanceRecord } from '../core/resources';
import { SANDBOX_ATTRIBUTE } from '../core/fargate-pool';
import { isHostPolicyAttribute } from '../core/host-policy-attributes';
import type {
  Attribute,
  DeleteAttributesRequest,
  DeleteAttributesResponse,
  ListAttributesRequest,
  ListAttributesResponse,
  PutAttributesRequest,
  PutAttributesResponse,
} from '../core/shapes/ecs';
import { StoreConflictError, type TxnOp } from '../store/store';
import { requireActiveCluster } from './clusters';
import { committed, type ControlContext } from './context';
import { paginate } from './pagination';

export const MAX_CUSTOM_ATTRIBUTES = 10;
/** At most this many attributes per PutAttributes / DeleteAttributes call. */
export const MAX_ATTRIBUTES_PER_CALL = 10;

// Letters, numbers, hyphens, underscores, forward slashes, back slashes, periods.
const NAME_RE = /^[A-Za-z0-9_./\\-]{1,128}$/;
// Letters, numbers, hyphens, underscores, periods, at signs, slashes, back slashes, colons, spaces.
const VALUE_RE = /^[A-Za-z0-9_.@/\\: -]{1,128}$/;

/**
 * Attributes the agent sets, which do not count against the custom limit and which a
 * re-registration replaces: ECS's, and the host policy's (core/host-policy-attributes.ts).
 */
export function isBuiltinAttribute(name: string): boolean {
  // The Fargate sandbox is the agent's own reading of its engine, sent at every registration.
  return name.startsWith('ecs.') || name.startsWith('com.amazonaws.ecs.') || isHostPolicyAttribute(name) || name === SANDBOX_ATTRIBUTE;
}

export function validateAttributeName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw invalidParameter(
      `Invalid attribute name '${String(name)}': up to 128 letters (uppercase and lowercase), numbers, hyphens, underscores, forward slashes, back slashes, or periods are allowed.`,
    );
  }
  return name;
}

export function validateAttributeValue(name: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !VALUE_RE.test(value) || value !== value.trim()) {
    throw invalidParameter(
      `Invalid value for attribute '${name}': up to 128 letters (uppercase and lowercase), numbers, hyphens, underscores, periods, at signs (@), forward slashes, back slashes, colons, or spaces are allowed, and the value cannot start or end with a space.`,
    );
  }
  return value;
}

/** Name and value only: what an instance record keeps. */
function stored(a: { name: string; value?: string }): Attribute {
  return a.value === undefined ? { name: a.name } : { name: a.name, value: a.value };
}

/** Adds or replaces attributes by name, keeping the order of the existing ones. */
export function mergeAttributes(existing: readonly Attribute[] | undefined, added: readonly Attribute[]): Attribute[] {
  const m = new Map<string, Attribute>();
  for (const a of existing ?? []) m.set(a.name, stored(a));
  for (const a of added) m.set(a.name, stored(a));
  return [...m.values()];
}

function checkCustomLimit(attrs: readonly Attribute[], where: string): void {
  const custom = attrs.filter((a) => !isBuiltinAttribute(a.name)).length;
  if (custom > MAX_CUSTOM_ATTRIBUTES) {
    throw new WharfError(
      'AttributeLimitExceededException',
      `${where} would have ${custom} custom attributes; a resource can have at most ${MAX_CUSTOM_ATTRIBUTES}.`,
    );
  }
}

/** Validates the attributes an agent registers with; returns them as the record keeps them. */
export function registrationAttributes(input: readonly Attribute[] | undefined, existing?: readonly Attribute[]): Attribute[] {
  const added = (input ?? []).map((a) => {
    const name = validateAttributeName(a?.name);
    const value = validateAttributeValue(name, a.value);
    return stored({ name, value });
  });
  const out = mergeAttributes(existing, added);
  checkCustomLimit(out, 'The container instance');
  return out;
}

interface Target {
  id: string;
  arn: string;
}

/** The container instance an attribute names, or TargetNotFoundException. */
function resolveTarget(ctx: ControlContext, cluster: string, a: Attribute): Target {
  if (a.targetType !== undefined && a.targetType !== 'container-instance') {
    throw invalidParameter(`Unsupported targetType '${a.targetType}'; Wharf supports 'container-instance'.`);
  }
  if (typeof a.targetId !== 'string' || a.targetId.length === 0) {
    throw invalidParameter(`Attribute '${a.name}' needs a targetId (a container instance ID or ARN).`);
  }
  const parsed = parseArn(a.targetId);
  if (!parsed && a.targetType === undefined) {
    throw invalidParameter(`targetType is required when targetId '${a.targetId}' is a short ID.`);
  }
  if (parsed && parsed.type !== 'container-instance') throw targetNotFound(a.targetId);
  const ref = idOf(a.targetId, 'container-instance');
  if (ref.cluster !== undefined && ref.cluster !== cluster) throw targetNotFound(a.targetId);
  const e = ctx.state.instances.get(cluster, ref.id);
  if (!e || e.value.status === 'INACTIVE') throw targetNotFound(a.targetId);
  return { id: ref.id, arn: e.value.containerInstanceArn };
}

const targetNotFound = (id: string) =>
  new WharfError('TargetNotFoundException', `Could not find the target '${id}' in the cluster.`);

/**
 * Rewrites several instances of one cluster in one transaction (all or none), retrying when
 * another writer changed one of them in between. `mutate` may throw to refuse the change.
 */
async function updateInstances(
  ctx: ControlContext,
  cluster: string,
  ids: readonly string[],
  mutate: (rec: ContainerInstanceRecord) => ContainerInstanceRecord | undefined,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const ops: TxnOp[] = [];
    for (const id of ids) {
      const key = keys.instance(cluster, id);
      const cur = await ctx.store.get<ContainerInstanceRecord>(key);
      if (!cur || cur.value.status === 'INACTIVE') throw targetNotFound(id);
      const next = mutate(cur.value);
      if (next) ops.push({ op: 'update', key, value: { ...next, version: cur.value.version + 1 }, expectedRevision: cur.modRevision });
    }
    if (ops.length === 0) return;
    try {
      const revision = await ctx.store.txn(ops);
      await committed(ctx, revision);
      return;
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
    }
  }
}

function checkBatch(attrs: unknown): Attribute[] {
  if (!Array.isArray(attrs) || attrs.length === 0) throw invalidParameter('attributes must hold at least one attribute.');
  if (attrs.length > MAX_ATTRIBUTES_PER_CALL) {
    throw invalidParameter(`At most ${MAX_ATTRIBUTES_PER_CALL} attributes can be changed in one call.`);
  }
  return attrs as Attribute[];
}

/**
 * PutAttributes and DeleteAttributes refuse the agent's attributes: placement trusts them (a
 * faked `com.amazonaws.ecs.capability.*` placed a task the host could not run, a faked
 * `ecs.cpu-architecture` would place an arm64 image on x86_64), and the agent owns them.
 */
function refuseAgentAttribute(name: string, operation: 'PutAttributes' | 'DeleteAttributes'): void {
  if (!isBuiltinAttribute(name)) return;
  throw invalidParameter(
    name.startsWith('wharf.')
      ? `Attribute '${name}' is set by Wharf's agent and cannot be changed with ${operation}.`
      : `Attribute '${name}' is set by the container agent and cannot be changed with ${operation}: names beginning with 'ecs.' or 'com.amazonaws.ecs.' are reserved.`,
  );
}

/** Validates a batch and groups it by target instance. */
function byTarget(ctx: ControlContext, cluster: string, attrs: Attribute[], withValues: boolean): Map<string, Attribute[]> {
  const groups = new Map<string, Attribute[]>();
  for (const a of attrs) {
    const name = validateAttributeName(a?.name);
    refuseAgentAttribute(name, withValues ? 'PutAttributes' : 'DeleteAttributes');
    const value = withValues ? validateAttributeValue(name, a.value) : undefined;
    const t = resolveTarget(ctx, cluster, a);
    let g = groups.get(t.id);
    if (!g) groups.set(t.id, (g = []));
    g.push(stored({ name, value }));
  }
  return groups;
}

export async function putAttributes(ctx: ControlContext, input: PutAttributesRequest): Promise<PutAttributesResponse> {
  const attrs = checkBatch(input.attributes);
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  const groups = byTarget(ctx, cluster, attrs, true);
  await updateInstances(ctx, cluster, [...groups.keys()], (rec) => {
    const attributes = mergeAttributes(rec.attributes, groups.get(rec.wharf.id)!);
    checkCustomLimit(attributes, `Container instance ${rec.containerInstanceArn}`);
    return { ...rec, attributes };
  });
  return { attributes: attrs };
}

export async function deleteAttributes(ctx: ControlContext, input: DeleteAttributesRequest): Promise<DeleteAttributesResponse> {
  const attrs = checkBatch(input.attributes);
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  const groups = byTarget(ctx, cluster, attrs, false);
  await updateInstances(ctx, cluster, [...groups.keys()], (rec) => {
    const drop = new Set(groups.get(rec.wharf.id)!.map((a) => a.name));
    const attributes = (rec.attributes ?? []).filter((a) => !drop.has(a.name));
    return attributes.length === (rec.attributes ?? []).length ? undefined : { ...rec, attributes };
  });
  return { attributes: attrs };
}

export async function listAttributes(ctx: ControlContext, input: ListAttributesRequest): Promise<ListAttributesResponse> {
  if (input.targetType !== 'container-instance') {
    throw invalidParameter(`Unsupported targetType '${String(input.targetType)}'; Wharf supports 'container-instance'.`);
  }
  if (input.attributeValue !== undefined && input.attributeName === undefined) {
    throw invalidParameter('attributeValue can only be used together with attributeName.');
  }
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  const found: Attribute[] = [];
  for (const e of ctx.state.instances.children(cluster).values()) {
    const rec = e.value;
    if (rec.status === 'INACTIVE') continue;
    for (const a of rec.attributes ?? []) {
      if (input.attributeName !== undefined && a.name !== input.attributeName) continue;
      if (input.attributeValue !== undefined && a.value !== input.attributeValue) continue;
      const out: Attribute = { name: a.name, targetType: 'container-instance', targetId: rec.containerInstanceArn };
      if (a.value !== undefined) out.value = a.value;
      found.push(out);
    }
  }
  // Attribute names hold no spaces, so "<arn> <name>" orders and identifies each entry.
  const { page, nextToken } = paginate(found, (a) => `${a.targetId} ${a.name}`, input, { default: 100, max: 100, operation: 'ListAttributes' });
  return { attributes: page, nextToken };
}
