/** ECS resource ARNs (long format) and the resolution of user-supplied identifiers. */
import { partitionOf } from './regions';

export interface Partition {
  region: string;
  accountId: string;
}

export type ResourceType =
  | 'cluster'
  | 'task-definition'
  | 'task'
  | 'container'
  | 'service'
  | 'container-instance'
  | 'capacity-provider'
  | 'task-set'
  | 'service-deployment'
  | 'service-revision';

export function arn(p: Partition, type: ResourceType, resource: string): string {
  return `arn:${partitionOf(p.region)}:ecs:${p.region}:${p.accountId}:${type}/${resource}`;
}

/** An IAM ARN (IAM is global: no region) in the partition of `p`'s region, e.g. `root`, `role/x`. */
export function iamArn(p: Partition, resource: string): string {
  return `arn:${partitionOf(p.region)}:iam::${p.accountId}:${resource}`;
}

export interface ParsedArn {
  /** `aws`, `aws-cn`, `aws-us-gov`, ... */
  partition: string;
  region: string;
  accountId: string;
  type: string;
  /** Everything after `<type>/`, e.g. `mycluster/abc123` for a task. */
  resource: string;
}

const ARN_RE = /^arn:(aws[a-z-]*):ecs:([a-z0-9-]*):(\d*):([a-z-]+)\/(.+)$/;

export function parseArn(s: string): ParsedArn | undefined {
  const m = ARN_RE.exec(s);
  if (!m) return undefined;
  return { partition: m[1]!, region: m[2]!, accountId: m[3]!, type: m[4]!, resource: m[5]! };
}

export const clusterArn = (p: Partition, name: string) => arn(p, 'cluster', name);
export const taskDefinitionArn = (p: Partition, family: string, revision: number) =>
  arn(p, 'task-definition', `${family}:${revision}`);
export const taskArn = (p: Partition, cluster: string, id: string) => arn(p, 'task', `${cluster}/${id}`);
export const containerInstanceArn = (p: Partition, cluster: string, id: string) =>
  arn(p, 'container-instance', `${cluster}/${id}`);
export const serviceArn = (p: Partition, cluster: string, name: string) => arn(p, 'service', `${cluster}/${name}`);
/** The old (short) service ARN form, without the cluster: what ECS names an unknown service by in DescribeServices failures. */
export const shortServiceArn = (p: Partition, name: string) => arn(p, 'service', name);
export const capacityProviderArn = (p: Partition, name: string) => arn(p, 'capacity-provider', name);

/** A `cluster` parameter: name or ARN, `default` when absent. Returns the cluster name. */
export function clusterNameOf(ref: string | undefined): string {
  if (ref === undefined || ref === '') return 'default';
  const a = parseArn(ref);
  if (a && a.type === 'cluster') return a.resource;
  return ref;
}

/**
 * A task or container-instance reference: a 32-hex id, or an ARN (`<type>/<cluster>/<id>` or
 * the legacy `<type>/<id>`). Returns the id and, when the ARN names one, the cluster.
 */
export function idOf(ref: string, type: 'task' | 'container-instance'): { id: string; cluster?: string } {
  const a = parseArn(ref);
  if (a && a.type === type) {
    const parts = a.resource.split('/');
    if (parts.length >= 2) return { id: parts[parts.length - 1]!, cluster: parts[0] };
    return { id: parts[0]! };
  }
  return { id: ref };
}

/** A service reference: name or ARN (`service/<cluster>/<name>` or legacy `service/<name>`). */
export function serviceNameOf(ref: string): { name: string; cluster?: string } {
  const a = parseArn(ref);
  if (a && a.type === 'service') {
    const parts = a.resource.split('/');
    if (parts.length >= 2) return { name: parts[parts.length - 1]!, cluster: parts[0] };
    return { name: parts[0]! };
  }
  return { name: ref };
}

/** A taskDefinition reference: `family`, `family:revision` or an ARN. */
export function taskDefinitionRefOf(ref: string): { family: string; revision?: number } | undefined {
  let s = ref;
  const a = parseArn(ref);
  if (a) {
    if (a.type !== 'task-definition') return undefined;
    s = a.resource;
  }
  const i = s.lastIndexOf(':');
  if (i < 0) return { family: s };
  const rev = Number(s.slice(i + 1));
  if (!Number.isInteger(rev) || rev < 1) return undefined;
  return { family: s.slice(0, i), revision: rev };
}

/**
 * The first ECS ARN among a request's top-level members (strings and lists of strings: cluster,
 * taskDefinition, tasks, services, resourceArn, ...) that is not one of `p`'s: another region
 * (ECS refuses those, "Invalid Region in ARN", rather than resolving the name in its own region),
 * or another account or partition (ECS has no resource-based policies, so IAM denies any call on
 * another account's resources). Nested members (container definitions' environment, say) are
 * values, not references, and are not looked at.
 */
export function foreignArn(input: unknown, p: Partition): { arn: string; differs: 'region' | 'account' } | undefined {
  if (!input || typeof input !== 'object') return undefined;
  const partition = partitionOf(p.region);
  const check = (v: unknown): { arn: string; differs: 'region' | 'account' } | undefined => {
    if (typeof v !== 'string' || !v.startsWith('arn:')) return undefined;
    const a = parseArn(v);
    if (!a) return undefined;
    if (a.region !== p.region) return { arn: v, differs: 'region' };
    if (a.accountId !== p.accountId || a.partition !== partition) return { arn: v, differs: 'account' };
    return undefined;
  };
  for (const v of Object.values(input as Record<string, unknown>)) {
    const f = Array.isArray(v) ? v.map(check).find((x) => x !== undefined) : check(v);
    if (f) return f;
  }
  return undefined;
}
