/**
 * ECS's ListServicesByNamespace: the ECS services, of every cluster, whose `serviceRegistries`
 * name a Cloud Map service in the namespace (given by name or ARN). Service Connect, the other
 * way a service joins a namespace, is not implemented in Wharf, so only registries count.
 */
import { WharfError, invalidParameter } from '../core/errors';
import type { ListServicesByNamespaceRequest, ListServicesByNamespaceResponse } from '../core/shapes/ecs';
import type { ControlContext } from './context';
import { findNamespace, findNamespaceByName, servicesOf } from './cloudmap-records';
import { paginate } from './pagination';

export async function listServicesByNamespace(ctx: ControlContext, input: ListServicesByNamespaceRequest): Promise<ListServicesByNamespaceResponse> {
  if (!input.namespace) throw invalidParameter('namespace is required.');
  const ns = input.namespace.startsWith('arn:') ? findNamespace(ctx, input.namespace)?.ns : findNamespaceByName(ctx, input.namespace);
  if (!ns) throw new WharfError('NamespaceNotFoundException', 'The specified namespace was not found.');
  const registryArns = new Set(servicesOf(ctx, ns.Id).map((s) => s.Arn));
  const arns: string[] = [];
  for (const e of ctx.state.services.all()) {
    const s = e.value;
    if (s.status !== 'ACTIVE') continue;
    if ((s.serviceRegistries ?? []).some((r) => r.registryArn !== undefined && registryArns.has(r.registryArn))) arns.push(s.serviceArn);
  }
  const { page, nextToken } = paginate(arns, (a) => a, input, { default: 10, max: 100, operation: 'ListServicesByNamespace' });
  return { serviceArns: page, nextToken };
}
