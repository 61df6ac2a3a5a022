/**
 * Writing what placements change on a container instance (core/resources.ts,
 * InstanceUsageRecord). Every reservation and release goes through `usageOps`, which makes the
 * transaction fail if the instance's registration or its usage changed since the caller read
 * them: the same guarantee as compare-and-swapping the whole instance record, at a fraction of
 * the bytes written per placement.
 */
import type { Resource } from '../core/shapes/ecs';
import { keys, type InstanceUsageRecord } from '../core/resources';
import type { TxnOp } from '../store/store';
import type { ControlContext } from './context';

/**
 * The writes that set an instance's remaining resources, valid only if neither its registration
 * nor its usage changed since the state cache showed them. Throws if the instance is unknown.
 */
export function usageOps(ctx: Pick<ControlContext, 'state'>, cluster: string, id: string, remainingResources: Resource[]): TxnOp[] {
  const reg = ctx.state.instances.get(cluster, id);
  if (!reg) throw new Error(`container instance ${id} is not in cluster ${cluster}`);
  const use = ctx.state.usage.get(cluster, id);
  const key = keys.instanceUsage(cluster, id);
  const value: InstanceUsageRecord = { remainingResources, version: (use?.value.version ?? 0) + 1 };
  return [
    { op: 'check', key: keys.instance(cluster, id), expectedRevision: reg.modRevision },
    use ? { op: 'update', key, value, expectedRevision: use.modRevision } : { op: 'create', key, value },
  ];
}
