/**
 * The AWS Cloud Map operations Wharf serves (JSON 1.1, target prefix Route53AutoNaming_v20170314,
 * SigV4 name `servicediscovery`): the subset ECS services' `serviceRegistries` need, enough that
 * `aws servicediscovery` and the SDKs work unchanged. Private DNS namespaces are answered by
 * Wharf's DNS server (src/discovery/); public DNS namespaces are refused.
 */
import { WharfError } from '../core/errors';
import { StoreConflictError } from '../store/store';
import type { ControlContext } from './context';
import { instanceHandlers } from './cloudmap-instances';
import { namespaceHandlers } from './cloudmap-namespaces';
import { findNamespace, findService, namespaceKey, serviceKey, type CloudMapTag } from './cloudmap-records';
import { serviceDiscoveryServiceHandlers } from './cloudmap-services';

export { CLOUDMAP_SIGNING_NAME, CLOUDMAP_TARGET_PREFIX } from './cloudmap-records';

function resourceNotFound(arn: string): WharfError {
  return new WharfError('ResourceNotFoundException', `Resource not found: ${arn}`);
}

/** The namespace or service an ARN names, with its key, for the tag operations. */
function taggable(ctx: ControlContext, arn: string): { key: string; revision: number; value: { Tags: CloudMapTag[] } } {
  if (/:namespace\//.test(arn)) {
    const f = findNamespace(ctx, arn);
    if (f && f.ns.Arn === arn) return { key: namespaceKey(f.ns.Name), revision: f.revision, value: f.ns };
  } else if (/:service\//.test(arn)) {
    const f = findService(ctx, arn);
    if (f && f.svc.Arn === arn) return { key: serviceKey(f.svc.NamespaceId, f.svc.Name), revision: f.revision, value: f.svc };
  }
  throw resourceNotFound(arn);
}

async function changeTags(ctx: ControlContext, arn: string, change: (tags: CloudMapTag[]) => CloudMapTag[]): Promise<Record<string, never>> {
  for (let attempt = 0; ; attempt++) {
    const t = taggable(ctx, arn);
    const tags = change(t.value.Tags ?? []);
    if (tags.length > 50) throw new WharfError('InvalidInput', 'A resource can have at most 50 tags.');
    try {
      await ctx.state.waitFor(await ctx.store.update(t.key, { ...t.value, Tags: tags }, t.revision));
      return {};
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
      await ctx.state.waitFor(await ctx.store.revision());
    }
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function cloudMapHandlers(ctx: ControlContext): Record<string, (input: any) => Promise<unknown>> {
  return {
    ...namespaceHandlers(ctx),
    ...serviceDiscoveryServiceHandlers(ctx),
    ...instanceHandlers(ctx),
    TagResource: (i: { ResourceARN?: string; Tags?: CloudMapTag[] }) =>
      changeTags(ctx, i?.ResourceARN ?? '', (tags) => {
        const byKey = new Map(tags.map((t) => [t.Key, t.Value]));
        for (const t of i.Tags ?? []) byKey.set(t.Key, t.Value);
        return [...byKey].map(([Key, Value]) => ({ Key, Value }));
      }),
    UntagResource: (i: { ResourceARN?: string; TagKeys?: string[] }) => changeTags(ctx, i?.ResourceARN ?? '', (tags) => tags.filter((t) => !(i.TagKeys ?? []).includes(t.Key))),
    ListTagsForResource: async (i: { ResourceARN?: string }) => ({ Tags: taggable(ctx, i?.ResourceARN ?? '').value.Tags ?? [] }),
  };
}
